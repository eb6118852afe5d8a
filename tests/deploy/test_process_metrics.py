"""The long-running roles serve their metrics on CONCORDAT_METRICS_ADDRESS, as the containers run them:
the projection runner the case metrics and the views' lag, the worker Temporal's SDK metrics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from concordat import bootstrap
from concordat.settings import Settings
from tests.deploy.cases import make_partnership

DEADLINE_SECONDS = 60


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@contextmanager
def role(command: str, **settings: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCORDAT_")}
    env.update({f"CONCORDAT_{k.upper()}": v for k, v in settings.items()})
    process = subprocess.Popen(
        [sys.executable, "-m", "concordat", command],
        env=env,  # noqa: S603
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        assert code == 0, process.stderr.read().decode() if process.stderr else code


def scrape_until(
    address: str,
    process: subprocess.Popen[bytes],
    done: Callable[[dict[tuple[str, frozenset[tuple[str, str]]], float]], bool],
) -> dict:
    """Scrape the process's metrics until `done` holds of them (the process is starting, or catching up)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    found: dict = {}
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else "exited"
        try:
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as answer:  # noqa: S310
                text = answer.read().decode()
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)  # the server is not listening yet
            continue
        found = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        if done(found):
            return found
        time.sleep(0.2)  # the runner is still catching up
    raise AssertionError(f"the metrics at {address} never showed what was expected: {sorted(found)[:20]}")


def lags(found: dict) -> dict[str, float]:
    return {dict(labels)["view"]: v for (name, labels), v in found.items() if name == "concordat_projection_lag_events"}


def test_the_projection_runner_serves_the_case_metrics_and_its_lag(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url="")
    app = bootstrap.open_cases(settings)
    make_partnership(app)
    address = free_address()
    with role("projections", data_dir=str(settings.data_dir), metrics_address=address) as process:
        found = scrape_until(address, process, lambda f: set(lags(f).values()) == {0})
    assert len(lags(found)) == 3
    assert found[("concordat_store_notifications", frozenset())] == app.max_notification_id()
    open_now = sum(v for (name, _), v in found.items() if name == "concordat_cases_open")
    assert open_now == 4


async def test_the_worker_serves_temporals_sdk_metrics(time_skipping_env: WorkflowEnvironment, tmp_path: Path) -> None:
    target = time_skipping_env.client.service_client.config.target_host
    address = free_address()
    with role(
        "worker",
        data_dir=str(tmp_path / "data"),
        temporal_address=target,
        metrics_address=address,
        task_queue="metrics-worker",
    ) as process:
        found = scrape_until(address, process, lambda f: any(n == "temporal_worker_start_total" for n, _ in f))
    (labels,) = [dict(labels) for name, labels in found if name == "temporal_worker_start_total"]
    assert labels["task_queue"] == "metrics-worker" and labels["service"] == "concordat-worker"
