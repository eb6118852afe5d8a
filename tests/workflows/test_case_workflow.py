"""Proposals under CaseWorkflow on Temporal's time-skipping test server, with the real worker,
activities and application on a fresh SQLite store. A month of deadlines passes in well under a second."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.refusals import RefusalLog
from tests import proving
from tests.domain.support import MINUTES
from workers.activities import case_state
from workflows.case import CaseWorkflow
from workflows.contracts import ActInput, ActorRef, CaseInput, CaseState

HISTORIES = Path(__file__).parent / "histories"
LEAD = Actor.parse("jcu_lead:jo")
DAN = ActorRef(id="dan", role="lead_director")
SAM = ActorRef(id="sam", role="secretary:board")
PAT = ActorRef(id="pat", role="secretary:programme_board")


@dataclass
class Running:
    env: WorkflowEnvironment
    app: CaseService
    task_queue: str

    async def send(self, handle: WorkflowHandle[Any, Any], act: ActInput, command_id: str | None = None) -> CaseState:
        """A command as the CLI sends it: signed, at the test server's (skipped) time."""
        return await proving.send(handle, act, command_id=command_id, at=await self.env.get_current_time())

    @property
    def client(self) -> Client:
        return self.env.client

    async def start(self, **fields: object) -> WorkflowHandle:
        values = {
            "title": "Community paediatrics pathway",
            "kind": "pathway_change",
            "value_pence": 12_000_000,
            "parties": ["PCC", "CCC"],
            "public_health": False,
            **fields,
        }
        now = await self.env.get_current_time()
        state = self.app.start_proposal(actor=LEAD, command_id=str(uuid.uuid4()), at=now, **values)
        return await self.client.start_workflow(
            CaseWorkflow.run,
            CaseInput(reference=state.reference, state=case_state(state)),
            id=state.reference,
            task_queue=self.task_queue,
        )

    async def keep(self, handle: WorkflowHandle, name: str) -> None:
        """With CONCORDAT_RECORD_HISTORIES=1, store this run's history for test_replay.py."""
        if os.environ.get("CONCORDAT_RECORD_HISTORIES") == "1":
            history = await handle.fetch_history()
            (HISTORIES / f"{name}.json").write_text(history.to_json())

    def events(self, reference: str) -> list[str]:
        return [h.event for h in self.app.history(reference, actor=Actor("audrey", "auditor"))]


@pytest.fixture
async def running(time_skipping_env: WorkflowEnvironment, sqlite_settings: Settings) -> AsyncIterator[Running]:
    app = bootstrap.open_cases(sqlite_settings)
    task_queue = f"tq-{uuid.uuid4()}"
    parts = bootstrap.build_worker(time_skipping_env.client, app, task_queue, command_key=proving.TEST_COMMAND_KEY)
    async with parts.worker:
        yield Running(time_skipping_env, app, task_queue)
    parts.executor.shutdown()


def decision(actor: ActorRef, stage: str, outcome: str, **fields: str) -> ActInput:
    """A decision, minuted (forum decisions name their minutes) unless the test gives its own."""
    return ActInput(
        actor=actor, action="decide", fields={"stage": stage, "outcome": outcome, "minutes_ref": MINUTES, **fields}
    )


async def test_the_delegated_authority_route_ends_at_the_jcu(running: Running) -> None:
    handle = await running.start(value_pence=10_000_000)
    state = await running.send(handle, decision(DAN, "jcu", "approve", minutes_ref="JCU-1"))
    assert state.status == "approved"
    result = await handle.result()
    assert result.status == "approved"
    assert running.events(handle.id) == ["Started", "Decided"]
    await running.keep(handle, "proposal_approved_at_the_jcu")


async def test_a_missed_board_deadline_escalates_to_the_programme_board_after_a_reminder(running: Running) -> None:
    handle = await running.start()
    state = await running.send(handle, decision(DAN, "jcu", "refer"))
    assert state.stage == "board"
    board_deadline = state.deadline
    assert board_deadline is not None
    # Let the board meeting pass with no decision: time skips while we wait for the escalation.
    await running.env.sleep(board_deadline - await running.env.get_current_time() + timedelta(minutes=1))
    now_state = await handle.query(CaseWorkflow.state)
    assert ["secretary:programme_board"] in [a.roles for a in now_state.actions if a.stage == "board"]
    assert running.events(handle.id) == ["Started", "Decided", "ReminderSent", "Escalated"]
    reminder = running.app.history(handle.id, actor=Actor("audrey", "auditor"))[2]
    assert reminder.at < board_deadline
    assert reminder.changes["recipient_role"] == "secretary:board"
    # The Programme Board extends the deadline: the workflow waits on the new one.
    state = await running.send(handle, decision(PAT, "board", "extend"))
    assert state.deadline is not None and state.deadline > board_deadline
    await running.keep(handle, "proposal_escalated_after_a_reminder_then_extended")


async def test_a_wrong_role_is_refused_nothing_is_written_and_the_refusal_is_on_the_record(running: Running) -> None:
    handle = await running.start(value_pence=30_000_000)
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await running.send(handle, decision(SAM, "jcu", "refer"), command_id="wrong-role")
    assert "lead_director decides there" in str(caught.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await running.send(handle, decision(DAN, "jcu", "approve"), command_id="beyond-authority")
    assert "outcome 'approve' is not allowed at jcu" in str(caught.value.cause)
    assert running.events(handle.id) == ["Started"]
    refused = {r.command_id: r for r in RefusalLog(running.app).entries()}
    assert refused["wrong-role"].actor == "secretary:board:sam" and refused["wrong-role"].door == "cli"
    assert refused["wrong-role"].rule == "NotYourForumError" and refused["wrong-role"].proven
    assert refused["beyond-authority"].rule == "OutcomeNotAllowedError"
    assert refused["beyond-authority"].reference == handle.id
    await running.keep(handle, "proposal_update_refused_by_validator")


async def test_a_withdrawn_proposal_ends_its_workflow(running: Running) -> None:
    handle = await running.start()
    await running.send(handle, decision(DAN, "jcu", "refer"))
    state = await running.send(handle, ActInput(actor=ActorRef(id="jo", role="jcu_lead"), action="withdraw"))
    assert state.status == "withdrawn"
    assert (await handle.result()).status == "withdrawn"
    await running.keep(handle, "proposal_withdrawn_at_the_board")


async def test_beyond_authority_the_parties_bodies_decide_in_parallel_and_the_workflow_waits_for_all(
    running: Running,
) -> None:
    handle = await running.start(parties=["PCC", "CCC", "CPCCG"], value_pence=90_000_000, kind="service_commissioning")
    steps = [
        (DAN, "jcu", "refer"),
        (SAM, "board", "recommend"),
        (PAT, "programme_board", "recommend"),
        (ActorRef(id="pia", role="secretary:pcc_decision"), "pcc_decision", "approve"),
        (ActorRef(id="cat", role="secretary:cmet"), "cmet", "recommend_approval"),
        (ActorRef(id="gus", role="secretary:governing_body"), "governing_body", "approve"),
    ]
    for actor, stage, outcome in steps:
        state = await running.send(handle, decision(actor, stage, outcome))
    assert (state.status, state.stage) == ("open", "ccc_decision")
    # Every open branch has its own clock: the workflow keeps timers for each.
    assert {t.name.split(":")[0] for t in state.timers} == {"remind", "escalate"}
    state = await running.send(
        handle, decision(ActorRef(id="cal", role="secretary:ccc_decision"), "ccc_decision", "approve")
    )
    assert state.status == "approved"
    assert (await handle.result()).status == "approved"
    await running.keep(handle, "proposal_approved_by_every_partys_body")


async def test_the_workflow_answers_a_query_with_the_stage_and_deadline(running: Running) -> None:
    handle = await running.start()
    state = await handle.query(CaseWorkflow.state)
    assert (state.stage, state.deadline) == ("jcu", running.app.state(handle.id).deadline)


async def test_a_forged_command_writes_nothing_and_is_on_the_refusal_log(running: Running) -> None:
    """Anyone who can reach Temporal can send an update of the same name and shape as a real one; the
    worker acts only on one signed with the command key, for this case, command id and actor."""
    handle = await running.start(value_pence=1_000)
    other = await running.start(value_pence=1_000)
    now = await running.env.get_current_time()
    approve = decision(DAN, "jcu", "approve")
    genuine = proving.signed(approve, handle.id, "genuine", at=now)
    attempts = {
        "unsigned": approve,
        "other-key": proving.signed(approve, handle.id, "other-key", key=b"k" * 32, at=now),
        "other-actor": genuine.model_copy(update={"actor": ActorRef(id="mallory", role="lead_director")}),
        # A captured proof replayed under a new command id (the id is signed: it cannot be changed).
        "other-command-id": genuine.model_copy(update={"command_id": "other-command-id"}),
        "stale": proving.signed(approve, handle.id, "stale", at=now - timedelta(days=1)),
    }
    for command_id, act in attempts.items():
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            await handle.execute_update(CaseWorkflow.act, act, id=command_id)
        assert caught.value.cause.type == "ForgedCommandError", command_id  # type: ignore[attr-defined]
        assert "nothing was written" in str(caught.value.cause)
    moved = proving.signed(approve, handle.id, "moved", at=now)  # a proof for one case, sent to another
    with pytest.raises(WorkflowUpdateFailedError):
        await other.execute_update(CaseWorkflow.act, moved, id="moved")
    assert running.events(handle.id) == ["Started"]
    assert running.events(other.id) == ["Started"]
    refused = {r.command_id: r for r in RefusalLog(running.app).entries()}
    # Each refusal is on the log under the command id the command carried (the altered actor kept
    # the genuine command's id, which it cannot change without breaking the signature either).
    recorded_as = {**{a: a for a in attempts}, "other-actor": "genuine", "moved": "moved"}
    for attempt, command_id in recorded_as.items():
        assert refused[command_id].rule == "ForgedCommandError", attempt
        assert refused[command_id].door == "temporal" and not refused[command_id].proven
    assert refused["genuine"].actor == "unproven:lead_director:mallory"
    # The genuine command still works: the proof is all that was missing.
    state = await handle.execute_update(CaseWorkflow.act, genuine, id="genuine", result_type=CaseState)
    assert state.status == "approved"
