"""`concordat health ROLE`, run as the container's health check runs it: a process of its own with the
role's CONCORDAT_* settings, one line on stdout, exit 0 when healthy and 1 when not."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from concordat import bootstrap
from concordat.settings import Settings
from tests.deploy.cases import make_partnership, run_views


def health(*args: str, **settings: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCORDAT_")}
    env.update({f"CONCORDAT_{k.upper()}": v for k, v in settings.items()})
    done = subprocess.run(
        [sys.executable, "-m", "concordat", "health", *args], env=env, capture_output=True, text=True, timeout=60
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, (done.stdout, done.stderr)  # one line, never a traceback
    return done.returncode, lines[0]


def refused_port() -> socket.socket:
    """A socket bound to a port that never listens: connecting to it is refused at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


def test_projections_are_healthy_when_the_store_answers_and_the_views_keep_up(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=postgres_url)
    app = bootstrap.open_cases(settings)
    make_partnership(app)
    newest = app.max_notification_id()
    code, line = health("projections", "--max-lag", "5", database_url=postgres_url, data_dir=str(tmp_path))
    assert code == 1
    assert line.startswith("projections unhealthy: ")
    assert f"case_list lag {newest}" in line and "more than 5 events behind" in line

    run_views(settings, app)
    code, line = health("projections", "--max-lag", "5", database_url=postgres_url, data_dir=str(tmp_path))
    assert (code, line) == (
        0,
        f"projections ok: store reachable ({newest} events); case_list lag 0, decisions lag 0, public_health lag 0",
    )


def test_projections_are_unhealthy_when_the_store_does_not_answer(tmp_path: Path) -> None:
    with refused_port() as s:
        url = f"postgresql://concordat@127.0.0.1:{s.getsockname()[1]}/concordat"
        code, line = health("projections", "--timeout", "3", database_url=url, data_dir=str(tmp_path))
    assert code == 1
    assert line.startswith("projections unhealthy: ")
    assert "store" in line


async def test_the_worker_is_healthy_when_temporal_and_the_store_answer(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    target = time_skipping_env.client.service_client.config.target_host
    code, line = health("worker", temporal_address=target, data_dir=str(tmp_path))
    assert (code, line) == (
        0,
        f"worker ok: temporal {target} namespace default reachable; store reachable (0 events); no sweep yet",
    )


def test_the_worker_is_unhealthy_without_temporal(tmp_path: Path) -> None:
    with refused_port() as s:
        address = f"127.0.0.1:{s.getsockname()[1]}"
        code, line = health("worker", "--timeout", "5", temporal_address=address, data_dir=str(tmp_path))
    assert code == 1
    assert line.startswith(f"worker unhealthy: Temporal unreachable at {address}")


class _Answer(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def web_stub(status: int) -> Iterator[str]:
    """A server answering GET /healthz with `status`, standing in for `concordat serve`."""
    handler = type("Answer", (_Answer,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_web_role_is_healthy_when_healthz_answers_200(tmp_path: Path) -> None:
    with web_stub(200) as address:
        code, line = health("web", http_address=address, data_dir=str(tmp_path))
    assert (code, line) == (0, f"web ok: GET http://{address}/healthz answered 200")


def test_the_web_role_is_unhealthy_when_healthz_fails_or_nothing_listens(tmp_path: Path) -> None:
    with web_stub(503) as address:
        code, line = health("web", http_address=address, data_dir=str(tmp_path))
    assert (code, line) == (1, f"web unhealthy: GET http://{address}/healthz answered 503")
    with refused_port() as s:
        port = s.getsockname()[1]
        code, line = health("web", http_address=f"0.0.0.0:{port}", data_dir=str(tmp_path))
    assert code == 1
    assert line.startswith(f"web unhealthy: GET http://127.0.0.1:{port}/healthz failed")


def test_an_unknown_role_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "concordat", "health", "scheduler"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "scheduler" in done.stderr
