"""Helpers of the fault tests run under `concordat up` itself: its children, found by the pids it
prints, and the CLI run against it while something is broken."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable

from tests.e2e.conftest import Engine

WAIT_SECONDS = 120


def pid_of(engine: Engine, name: str) -> int:
    """The latest pid `up` printed for its child `name` (at start, or when it restarted it)."""
    found = [int(m.group(1)) for line in engine.lines if (m := re.match(rf"{name}\s+pid (\d+)", line))]
    assert found, "\n".join(engine.lines)
    return found[-1]


def until(condition: Callable[[], bool], what: str, engine: Engine, timeout: float = WAIT_SECONDS) -> None:
    """Poll another process's progress up to `timeout` seconds; fail naming it, with `up`'s output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)  # polling another process, not papering over a race in ours
    raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n" + "\n".join(engine.lines))


def cli(engine: Engine, *args: str, who: str, token: str) -> subprocess.Popen[str]:
    """The CLI as `who`, started (not awaited): a command in flight while the test breaks something."""
    return subprocess.Popen(
        [sys.executable, "-m", "concordat", *args, "--as", who],
        env={**engine.env, "CONCORDAT_TOKEN": token},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def repeat_id(stderr: str) -> str:
    """The command id an unknown outcome tells the caller to repeat the command with."""
    found = re.search(r"repeat it with --command-id (\S+)", stderr)
    assert found, stderr
    return found.group(1)
