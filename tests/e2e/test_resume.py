"""`concordat resume`: Temporal has lost its state (a new cluster, a restore), the store has not. Every
live case gets its workflow back, closed cases stay closed, and running it twice changes nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from concordat import bootstrap
from concordat.engine import task_queue
from concordat.settings import Settings
from domain.actor import Actor
from tests.e2e.conftest import Engine, _env, free_port, running_engine

JO = Actor.parse("jcu_lead:jo")
PAT = Actor.parse("party_rep:PCC:pat")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """`concordat up` whose workers do not sweep (CONCORDAT_WATCH_SECONDS=0): a worker's sweep would
    give the orphaned cases below their workflows before the test looks."""
    tmp = tmp_path_factory.mktemp("resume")
    with running_engine(tmp, {**_env(tmp, free_port()), "CONCORDAT_WATCH_SECONDS": "0"}) as running:
        yield running


async def _status(address: str, reference: str) -> tuple[WorkflowExecutionStatus | None, str | None]:
    client = await Client.connect(address)
    try:
        described = await client.get_workflow_handle(reference).describe()
    except RPCError:
        return None, None
    return described.status, described.run_id


def status(engine: Engine, reference: str) -> tuple[WorkflowExecutionStatus | None, str | None]:
    return asyncio.run(_status(engine.env["CONCORDAT_TEMPORAL_ADDRESS"], reference))


def test_resume_gives_each_live_case_its_workflow_once(engine: Engine) -> None:
    # Cases written to the store with no workflow, as after Temporal's state was lost.
    cases = bootstrap.open_cases(Settings(data_dir=Path(engine.env["CONCORDAT_DATA_DIR"])))
    live = cases.start_proposal(
        actor=JO,
        title="Orphaned",
        kind="procurement",
        value_pence=100_000,
        parties=["PCC"],
        public_health=False,
        command_id="r1",
    ).reference
    closed = cases.start_proposal(
        actor=JO,
        title="Withdrawn",
        kind="procurement",
        value_pence=100_000,
        parties=["PCC"],
        public_health=False,
        command_id="r2",
    ).reference
    cases.withdraw(closed, actor=JO, command_id="r3")
    dispute = cases.raise_dispute(
        actor=PAT, fields={"against": ["CCC"], "subject": "Orphaned too"}, command_id="r4"
    ).reference
    assert status(engine, live) == (None, None)

    first = json.loads(engine.ok("resume", "--json", who="admin:root"))
    assert first["live"] == 2 and first["cases"] >= 3
    # Started a moment ago: their workflows may simply not be started yet, so nothing is recorded.
    assert (first["started"], first["interrupted"]) == (2, 0)
    assert status(engine, live)[0] == WorkflowExecutionStatus.RUNNING
    assert status(engine, dispute)[0] == WorkflowExecutionStatus.RUNNING
    assert status(engine, closed) == (None, None)
    runs = {ref: status(engine, ref)[1] for ref in (live, dispute)}

    assert json.loads(engine.ok("resume", "--json", who="admin:root")) == {**first, "started": 0}
    assert {ref: status(engine, ref)[1] for ref in (live, dispute)} == runs  # the same runs, not new ones
    out = engine.ok("decide", live, "--stage", "jcu", "--outcome", "approve", who="lead_director:dan")
    assert "approved" in out


async def _start_legacy(address: str, workflow_type: str, reference: str, task_queue: str) -> None:
    client = await Client.connect(address)
    await client.start_workflow(workflow_type, {"reference": reference}, id=reference, task_queue=task_queue)


async def _type_of(address: str, reference: str) -> tuple[str, WorkflowExecutionStatus | None]:
    described = await (await Client.connect(address)).get_workflow_handle(reference).describe()
    return described.workflow_type, described.status


def test_resume_migrate_moves_cases_running_under_old_workflow_types_to_case_workflow(engine: Engine) -> None:
    settings = Settings(data_dir=Path(engine.env["CONCORDAT_DATA_DIR"]))
    address = engine.env["CONCORDAT_TEMPORAL_ADDRESS"]
    cases = bootstrap.open_cases(settings)
    proposal = cases.start_proposal(
        actor=JO,
        title="Started last month",
        kind="procurement",
        value_pence=100_000,
        parties=["PCC"],
        public_health=False,
        command_id="m1",
    ).reference
    dispute = cases.raise_dispute(
        actor=PAT, fields={"against": ["CCC"], "subject": "Older still"}, command_id="m2"
    ).reference
    # As a previous release left them: a ProposalWorkflow (whose code is gone) and a DisputeWorkflow.
    queue = task_queue(settings, cases)  # the store's own queue, where its worker listens
    asyncio.run(_start_legacy(address, "ProposalWorkflow", proposal, queue))
    asyncio.run(_start_legacy(address, "DisputeWorkflow", dispute, queue))
    assert asyncio.run(_type_of(address, proposal)) == ("ProposalWorkflow", WorkflowExecutionStatus.RUNNING)

    moved = json.loads(engine.ok("resume", "--migrate", "--json", who="admin:root"))
    assert moved["migrated"] >= 2
    for ref in (proposal, dispute):
        assert asyncio.run(_type_of(address, ref)) == ("CaseWorkflow", WorkflowExecutionStatus.RUNNING)
    assert json.loads(engine.ok("resume", "--migrate", "--json", who="admin:root"))["migrated"] == 0  # once only
    out = engine.ok("decide", proposal, "--stage", "jcu", "--outcome", "approve", who="lead_director:dan")
    assert "approved" in out


async def _start_stray(address: str, reference: str, task_queue: str) -> None:
    """A workflow on the store's queue of a type this release does not have: Temporal keeps it running
    (its tasks fail and are retried), as it would a workflow whose case is not in the store."""
    client = await Client.connect(address)
    await client.start_workflow("NoSuchWorkflow", {"reference": reference}, id=reference, task_queue=task_queue)


async def _terminate(address: str, reference: str) -> None:
    await (await Client.connect(address)).get_workflow_handle(reference).terminate(reason="the test is done")


def test_resume_counts_running_workflows_that_have_no_live_case(engine: Engine) -> None:
    settings = Settings(data_dir=Path(engine.env["CONCORDAT_DATA_DIR"]))
    address = engine.env["CONCORDAT_TEMPORAL_ADDRESS"]
    queue = task_queue(settings, bootstrap.open_cases(settings))
    before = json.loads(engine.ok("resume", "--json", who="admin:root"))["workflows_without_case"]
    stray = "PRO-2026-0999"  # numbered nowhere: no such case in the store
    asyncio.run(_start_stray(address, stray, queue))
    try:
        found = json.loads(engine.ok("resume", "--json", who="admin:root"))
        assert found["workflows_without_case"] == before + 1
        assert status(engine, stray)[0] == WorkflowExecutionStatus.RUNNING  # counted, not ended: an operator's call
        plain = engine.ok("resume", who="admin:root")
        assert f"{before + 1} workflow{' runs' if before == 0 else 's run'} with no live case" in plain
    finally:
        asyncio.run(_terminate(address, stray))
    assert json.loads(engine.ok("resume", "--json", who="admin:root"))["workflows_without_case"] == before
