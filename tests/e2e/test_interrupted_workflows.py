"""A case's workflow ended outside the engine's control — terminated through Temporal (its UI or CLI
need no sign-in), or missing after Temporal lost its state — while the case is live: `concordat
resume`, and the worker every CONCORDAT_WATCH_SECONDS, record it once on the case (`WorkflowInterrupted`
in `concordat history`) and start the workflow again, after which the case takes decisions as before."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from tests.e2e.conftest import Engine, _env, free_port, running_engine

WATCH_TIMEOUT = 60


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """`concordat up` whose workers do not sweep: here only `concordat resume` does."""
    tmp = tmp_path_factory.mktemp("interrupted")
    with running_engine(tmp, {**_env(tmp, free_port()), "CONCORDAT_WATCH_SECONDS": "0"}) as running:
        yield running


def start(engine: Engine, title: str) -> str:
    return engine.ok(
        "proposal", "start", "--title", title, "--kind", "procurement", "--value", "1000", "--parties", "PCC",
        who="jcu_lead:jo",
    ).split()[0]  # fmt: skip


async def _terminate(address: str, reference: str, reason: str) -> str:
    """What anyone who reaches Temporal can do, with Temporal's own client (no codec, no sign-in)."""
    handle = (await Client.connect(address)).get_workflow_handle(reference)
    run_id = (await handle.describe()).run_id
    await handle.terminate(reason=reason)
    return run_id


async def _describe(address: str, reference: str) -> tuple[WorkflowExecutionStatus | None, str]:
    described = await (await Client.connect(address)).get_workflow_handle(reference).describe()
    return described.status, described.run_id


def terminate(engine: Engine, reference: str, reason: str) -> str:
    run_id = asyncio.run(_terminate(engine.env["CONCORDAT_TEMPORAL_ADDRESS"], reference, reason))
    assert describe(engine, reference) == (WorkflowExecutionStatus.TERMINATED, run_id)
    return run_id


def describe(engine: Engine, reference: str) -> tuple[WorkflowExecutionStatus | None, str]:
    return asyncio.run(_describe(engine.env["CONCORDAT_TEMPORAL_ADDRESS"], reference))


def interruptions(engine: Engine, reference: str) -> list[dict[str, Any]]:
    history = json.loads(engine.ok("history", reference, "--json", who="auditor:audrey"))
    return [e for e in history if e["event"] == "WorkflowInterrupted"]


def test_a_terminated_workflow_is_recorded_once_and_restarted_by_resume(engine: Engine) -> None:
    ref = start(engine, "Terminated from the UI")
    run_id = terminate(engine, ref, "tidying up the UI")

    first = json.loads(engine.ok("resume", "--json", who="admin:root"))
    assert first["interrupted"] == 1 and first["started"] == 1
    [recorded] = interruptions(engine, ref)
    assert recorded["changes"]["how"] == "terminated"
    assert recorded["changes"]["workflow_status"] == "TERMINATED"
    assert recorded["changes"]["reason"] == "tidying up the UI"
    assert recorded["changes"]["run_id"] == run_id
    assert (recorded["actor_role"], recorded["actor_id"], recorded["workflow_id"]) == ("system", "concordat", ref)
    status, new_run = describe(engine, ref)
    assert status == WorkflowExecutionStatus.RUNNING and new_run != run_id

    again = json.loads(engine.ok("resume", "--json", who="admin:root"))
    assert (again["interrupted"], again["started"]) == (0, 0)
    assert len(interruptions(engine, ref)) == 1  # twice run: recorded once
    assert describe(engine, ref) == (WorkflowExecutionStatus.RUNNING, new_run)

    shown = json.loads(engine.ok("show", ref, "--json", who="auditor:audrey"))
    assert (shown["status"], shown["stage"]) == ("open", "jcu")  # the record changed nothing of the case
    out = engine.ok("decide", ref, "--stage", "jcu", "--outcome", "refer", who="lead_director:dan")
    assert "board" in out
    assert "WorkflowInterrupted" in engine.ok("history", ref, who="auditor:audrey")  # the text table too


def test_a_workflow_temporal_lost_is_recorded_once_and_restarted_by_resume(engine: Engine) -> None:
    # A case the store has had for a day, whose workflow Temporal no longer knows (its state was lost).
    cases = bootstrap.open_cases(Settings(data_dir=Path(engine.env["CONCORDAT_DATA_DIR"])))
    ref = cases.start_proposal(
        actor=Actor.parse("jcu_lead:jo"),
        title="Lost with Temporal's state",
        kind="procurement",
        value_pence=100_000,
        parties=["PCC"],
        public_health=False,
        command_id="lost-1",
        at=datetime.now(UTC) - timedelta(days=1),
    ).reference
    cases.close()

    assert json.loads(engine.ok("resume", "--json", who="admin:root"))["interrupted"] == 1
    [recorded] = interruptions(engine, ref)
    assert (recorded["changes"]["how"], recorded["changes"]["workflow_status"]) == ("missing", "NOT_FOUND")
    assert describe(engine, ref)[0] == WorkflowExecutionStatus.RUNNING
    assert json.loads(engine.ok("resume", "--json", who="admin:root"))["interrupted"] == 0
    assert len(interruptions(engine, ref)) == 1
    assert "board" in engine.ok("decide", ref, "--stage", "jcu", "--outcome", "refer", who="lead_director:dan")


def test_the_worker_notices_a_terminated_workflow_on_its_own(tmp_path: Path) -> None:
    with running_engine(tmp_path, {**_env(tmp_path, free_port()), "CONCORDAT_WATCH_SECONDS": "1"}) as watched:
        ref = start(watched, "Terminated while the worker watches")
        run_id = terminate(watched, ref, "someone with Temporal's CLI")
        deadline = time.monotonic() + WATCH_TIMEOUT
        while not interruptions(watched, ref):  # the worker sweeps every second; wait for it, within a bound
            assert time.monotonic() < deadline, "the worker did not record the terminated workflow"
        while describe(watched, ref)[0] != WorkflowExecutionStatus.RUNNING:
            assert time.monotonic() < deadline, "the worker did not start the workflow again"
        [recorded] = interruptions(watched, ref)
        assert recorded["changes"]["run_id"] == run_id
        assert "board" in watched.ok("decide", ref, "--stage", "jcu", "--outcome", "refer", who="lead_director:dan")
        assert len(interruptions(watched, ref)) == 1
