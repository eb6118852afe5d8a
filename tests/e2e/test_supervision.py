"""`concordat up` supervises its children: one that dies is started again after a back-off, with a
line saying which and why, and the engine serves commands again without an operator. Only Ctrl-C
(or SIGTERM) stops it."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from concordat import up
from concordat.settings import Settings
from tests.e2e.conftest import Engine, running_engine

WAIT_SECONDS = 60


def _pid(lines: list[str], name: str) -> int:
    """The latest pid `up` printed for the child `name` (at start, or when it restarted it)."""
    found = [int(m.group(1)) for line in lines if (m := re.match(rf"{name}\s+pid (\d+)", line))]
    assert found, "\n".join(lines)
    return found[-1]


def _until(condition: object, what: str, lines: list[str]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)  # polling another process's output
    raise AssertionError(f"{what} did not happen:\n" + "\n".join(lines))


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _start_and_decide(engine: Engine, title: str) -> None:
    ref = engine.ok(
        "proposal", "start", "--title", title, "--kind", "procurement", "--value", "1000",
        "--parties", "PCC", who="jcu_lead:jo",
    ).strip()  # fmt: skip
    shown = engine.ok("decide", ref, "--stage", "jcu", "--outcome", "approve", who="lead_director:dan")
    assert "approved" in shown


def test_a_killed_worker_and_web_app_are_started_again_and_commands_flow(tmp_path: Path) -> None:
    with running_engine(tmp_path) as engine:
        _start_and_decide(engine, "Before")
        for name in ("worker", "web"):
            first = _pid(engine.lines, name)
            os.kill(first, signal.SIGKILL)
            _until(lambda name=name, first=first: _pid(engine.lines, name) != first, f"{name} restarted", engine.lines)
            said = [line for line in engine.lines if line.startswith(f"concordat: {name} exited (-9)")]
            assert said and "killed by SIGKILL; starting it again in 1 s" in said[-1], "\n".join(engine.lines)
        assert engine.process.poll() is None  # `up` is still running: only Ctrl-C stops it
        _until(lambda: _healthy(engine.web), "the web app answers again", engine.lines)
        _start_and_decide(engine, "After")  # the new worker takes the decision
        engine.process.send_signal(signal.SIGINT)
        assert engine.process.wait(timeout=60) == 0


def test_a_child_that_keeps_failing_is_restarted_with_a_growing_back_off_and_its_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url="")
    failing = [sys.executable, "-c", "import sys; print('worker.no_store error=\"database gone\"'); sys.exit(75)"]
    children = [up._spawn("worker", failing, settings, dict(os.environ))]
    supervisor = up.Supervisor(children, settings, dict(os.environ))
    children[0].process.wait()
    now = time.monotonic()
    delays = []
    for _ in range(4):
        supervisor.tick(now)  # notices the exit, schedules the restart
        delays.append(children[0].restart_at - now)  # type: ignore[operator]
        now = children[0].restart_at  # type: ignore[assignment]
        supervisor.tick(now)  # starts it again
        children[0].process.wait()
    assert delays == [1.0, 2.0, 4.0, 8.0]
    assert children[0].restarts == 4
    said = capsys.readouterr()
    assert said.err.count("concordat: worker exited (75)") == 4
    assert "database gone; starting it again in 8 s" in said.err
    assert "restarted (4)" in said.out
