"""One store, one queue: a second store pointed at a running engine's Temporal is refused, by `up
--temporal` and by a worker, in one line naming both stores; the engine's own cases carry on."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from concordat import bootstrap
from concordat.engine import bind_store
from concordat.settings import Settings
from domain.store import store_id
from tests.e2e.conftest import Engine, _env, free_port


def other_store(tmp_path: Path, running: Engine) -> dict[str, str]:
    env = _env(tmp_path, free_port())
    env["CONCORDAT_TEMPORAL_ADDRESS"] = running.env["CONCORDAT_TEMPORAL_ADDRESS"]
    return env


def test_up_refuses_a_temporal_that_serves_another_store_naming_both(engine: Engine, tmp_path: Path) -> None:
    env = other_store(tmp_path, engine)
    address = engine.env["CONCORDAT_TEMPORAL_ADDRESS"]
    done = subprocess.run(
        [sys.executable, "-m", "concordat", "up", "--temporal", address],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    (line,) = done.stderr.strip().splitlines()
    ours = Path(engine.env["CONCORDAT_DATA_DIR"]).resolve() / "events.sqlite"
    theirs = Path(env["CONCORDAT_DATA_DIR"]).resolve() / "events.sqlite"
    assert f"serves another store, SQLite {ours}" in line and f"not this one, SQLite {theirs}" in line
    assert "CONCORDAT_TEMPORAL_NAMESPACE" in line
    assert not any(" pid " in out for out in done.stdout.splitlines())  # nothing was started
    ref = engine.ok(
        "proposal", "start", "--title", "Still served", "--kind", "procurement", "--value", "1000",
        "--parties", "PCC", who="jcu_lead:jo",
    ).strip()  # fmt: skip
    engine.ok("decide", ref, "--stage", "jcu", "--outcome", "approve", who="lead_director:dan")


def test_a_worker_of_another_store_refuses_to_start(engine: Engine, tmp_path: Path) -> None:
    env = other_store(tmp_path, engine)
    env["CONCORDAT_TASK_QUEUE"] = "shared-by-mistake"  # even a queue named the same everywhere is safe
    done = subprocess.run(
        [sys.executable, "-m", "concordat", "worker"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert "serves another store" in done.stderr and str(Path(env["CONCORDAT_DATA_DIR"]).resolve()) in done.stderr


def test_the_store_that_bound_the_namespace_is_welcome_again(engine: Engine) -> None:
    settings = Settings(
        data_dir=Path(engine.env["CONCORDAT_DATA_DIR"]), temporal_address=engine.env["CONCORDAT_TEMPORAL_ADDRESS"]
    )
    cases = bootstrap.open_cases(settings)

    async def bind() -> None:
        client = await bootstrap.connect(settings)
        await bind_store(client, settings, cases, bootstrap.describe_store(settings))

    asyncio.run(bind())  # no refusal: a second worker of the same store joins
    store_line = next(line for line in engine.lines if line.startswith("store "))
    assert store_id(cases) in store_line and f"task queue concordat-{store_id(cases)}" in store_line
    assert os.path.exists(settings.data_dir / "events.sqlite")
