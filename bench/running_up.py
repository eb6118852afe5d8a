"""A real `concordat up` for a benchmark: started in a fresh data dir on free ports of 127.0.0.1,
with people signed in the way the README makes them (the first administrator at the shell, the
others by the administrator), and stopped at the end."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PASSWORD = "a long enough password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Up:
    """What a benchmark needs of a running engine: its environment (for `concordat …` commands),
    the API's base URL, the Temporal server it runs on, the web app's pid (to profile it), and a
    token for each person made."""

    env: dict[str, str]
    api: str
    temporal_address: str
    web_pid: int
    data: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str, stdin: str | None = None, token: str | None = None) -> str:
        return cli({**self.env, "CONCORDAT_TOKEN": token} if token else self.env, *args, stdin=stdin)


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """`concordat ARGS` with `env`: its standard output, or the benchmark stops with its error."""
    done = subprocess.run(
        [sys.executable, "-m", "concordat", *args],
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"concordat {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@contextmanager
def running_up(people: dict[str, str], *, workers: int = 1) -> Iterator[Up]:
    """`concordat up` with `people` ({id: role}) made and each given a token (`Up.tokens`)."""
    data = Path(tempfile.mkdtemp(prefix="concordat-bench-up-"))
    http = f"127.0.0.1:{free_port()}"
    temporal = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCORDAT_")}
    env.update(
        CONCORDAT_DATA_DIR=str(data),
        CONCORDAT_TEMPORAL_ADDRESS=temporal,
        CONCORDAT_TEMPORAL_UI_PORT=str(free_port()),
        CONCORDAT_HTTP_ADDRESS=http,
        CONCORDAT_CREDENTIALS=str(data / "credentials.json"),
    )
    argv = [sys.executable, "-m", "concordat", "up"] + (["--workers", str(workers)] if workers != 1 else [])
    up = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ready = threading.Event()
    web_pid: list[int] = []
    said: list[str] = []

    def follow() -> None:
        for line in up.stdout:  # type: ignore[union-attr]
            said.append(line)
            if found := re.match(r"web\s+pid (\d+)", line):
                web_pid.append(int(found.group(1)))
            if line.startswith("ready"):
                ready.set()

    threading.Thread(target=follow, daemon=True).start()
    try:
        if not ready.wait(120) or not web_pid:
            raise SystemExit("concordat up did not become ready:\n" + "".join(said[-20:]))
        engine = Up(env=env, api=f"http://{http}/api/v1", temporal_address=temporal, web_pid=web_pid[0], data=data)
        engine.cli("user", "add", "root", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
        engine.cli("login", "root", "--password-stdin", stdin=PASSWORD + "\n")
        for person, role in people.items():
            engine.cli("user", "add", person, "--role", role)
            engine.tokens[person] = json.loads(engine.cli("token", "create", person, "--json"))["token"]
        yield engine
    finally:
        up.terminate()
        up.wait(timeout=60)
