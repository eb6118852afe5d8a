"""The engine under test: `concordat up` started on free ports with a data dir of its own, and the
CLI run against it as a person would."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.people import Tokens, settings_of

START_TIMEOUT = 90


_GIVEN: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free port on 127.0.0.1 below the kernel's ephemeral range: a port the OS hands out for
    `bind(0)` can be handed out again, once closed, to the next process that asks, and Temporal's
    dev server asks for several as it starts, after the test chose its ports (seen: `up`'s web
    port taken). Ports below that range are never handed out so."""
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        if port in _GIVEN:  # this session gave it already: its holder may not have bound it yet
            continue
        _GIVEN.add(port)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # all tried were taken: the OS's choice, as before
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Engine:
    """`who` in `run`, `ok` and `refused` is the person the command is for, ROLE:ID: the person is
    signed in (their token in CONCORDAT_TOKEN) and acts in that role (`--as ROLE:ID`), as a real user
    would after `concordat login`. The directory is seeded for them by an administrator, `root`."""

    env: dict[str, str]
    process: subprocess.Popen[str]
    lines: list[str]
    people: Tokens | None = None

    @property
    def web(self) -> str:
        """The web app's base URL."""
        return f"http://{self.env['CONCORDAT_HTTP_ADDRESS']}"

    def run(
        self, *args: str, who: str | None = None, stdin: str | None = None, token: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The CLI as `who` (ROLE:ID, signed in with a token of their own); or with `token`; or with
        nobody signed in."""
        argv = [sys.executable, "-m", "concordat", *args] + (["--as", who] if who else [])
        env = dict(self.env)
        if who and token is None:
            token = self.token_of(who)
        if token:
            env["CONCORDAT_TOKEN"] = token
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, input=stdin)

    def token_of(self, who: str) -> str:
        """A token of the person `who` names (ROLE:ID), made in the directory with that role granted."""
        if self.people is None:
            self.people = Tokens(settings_of(self.env))
        return self.people(who)

    def ok(self, *args: str, who: str | None = None, stdin: str | None = None) -> str:
        done = self.run(*args, who=who, stdin=stdin)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def refused(self, *args: str, who: str | None = None, code: int = 1) -> str:
        done = self.run(*args, who=who)
        assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr  # one clear line, never a traceback
        return lines[0]


def _env(tmp: Path, port: int) -> dict[str, str]:
    # A cipher key set for the test run is kept: the engine then encrypts its store and Temporal's
    # payloads. So is the tests' policy (tests/conftest.py: the shipped one without the councils'
    # procedure, unless a test names another).
    kept = ("CONCORDAT_CIPHER_KEY", "CONCORDAT_POLICY_FILE")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCORDAT_") or k in kept}
    env.update(
        CONCORDAT_DATA_DIR=str(tmp / "data"),
        CONCORDAT_TEMPORAL_ADDRESS=f"127.0.0.1:{port}",
        CONCORDAT_TEMPORAL_UI_PORT=str(free_port()),
        CONCORDAT_HTTP_ADDRESS=f"127.0.0.1:{free_port()}",
    )
    return env


@contextmanager
def running_engine(tmp: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> Iterator[Engine]:
    """`concordat up` (with `args`) on free ports (or with `env`), ready; stopped with Ctrl-C (SIGINT) afterwards."""
    env = env or _env(tmp, free_port())
    process = subprocess.Popen(
        [sys.executable, "-m", "concordat", "up", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    settled = threading.Event()  # ready, or `up` gave up (its output ended)

    def read() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line.rstrip("\n"))
            if line.startswith("ready"):
                settled.set()
        settled.set()

    threading.Thread(target=read, daemon=True).start()
    if not settled.wait(START_TIMEOUT) or not any(line.startswith("ready") for line in lines):
        process.kill()
        process.wait()
        pytest.fail("concordat up did not become ready:\n" + "\n".join(lines))
    try:
        yield Engine(env, process, lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with running_engine(tmp_path_factory.mktemp("e2e")) as running:
        yield running
