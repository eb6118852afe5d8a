"""`concordat resume`: Temporal has lost its state (a new cluster, a restore), the store has not. Every
live case gets its workflow back, closed cases stay closed, and running it twice changes nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from tests.e2e.conftest import Engine

JO = Actor.parse("jcu_lead:jo")
PAT = Actor.parse("party_rep:PCC:pat")


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
    live = cases.start_proposal(actor=JO, title="Orphaned", kind="procurement", value_pence=100_000,
                                parties=["PCC"], public_health=False, command_id="r1").reference
    closed = cases.start_proposal(actor=JO, title="Withdrawn", kind="procurement", value_pence=100_000,
                                  parties=["PCC"], public_health=False, command_id="r2").reference
    cases.withdraw(closed, actor=JO, command_id="r3")
    dispute = cases.raise_dispute(actor=PAT, fields={"against": ["CCC"], "subject": "Orphaned too"},
                                  command_id="r4").reference
    assert status(engine, live) == (None, None)

    first = json.loads(engine.ok("resume", "--json"))
    assert first["live"] == 2 and first["cases"] >= 3
    assert status(engine, live)[0] == WorkflowExecutionStatus.RUNNING
    assert status(engine, dispute)[0] == WorkflowExecutionStatus.RUNNING
    assert status(engine, closed) == (None, None)
    runs = {ref: status(engine, ref)[1] for ref in (live, dispute)}

    assert json.loads(engine.ok("resume", "--json")) == first
    assert {ref: status(engine, ref)[1] for ref in (live, dispute)} == runs  # the same runs, not new ones
    out = engine.ok("decide", live, "--stage", "jcu", "--outcome", "approve", who="lead_director:dan")
    assert "approved" in out


