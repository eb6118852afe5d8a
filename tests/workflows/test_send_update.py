"""How a door's command reaches a case's workflow (`engine.send_update`): as a plain update when the
workflow is running (the cheap way), and, when it is not (never started, lost, or ended outside the
engine) while the case is live, by starting it with the update, so the command is still taken. A
closed case is refused before Temporal is asked, and no workflow is started for it.

On Temporal's time-skipping test server, with the real worker, activities and application on SQLite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from concordat import bootstrap
from concordat.engine import ensure_workflow, send_update
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.errors import CaseClosedError
from tests import proving
from workers.activities import CaseActivities
from workflows.case import ALL_WORKFLOWS, CaseWorkflow
from workflows.contracts import ActInput, ActorRef, CaseState

LEAD = Actor.parse("jcu_lead:jo")
DAN = ActorRef(id="dan", role="lead_director")
AUDREY = Actor("audrey", "auditor")


@dataclass
class Running:
    env: WorkflowEnvironment
    app: CaseService
    settings: Settings

    def start(self) -> Any:
        """A proposal in the store only: its workflow is not started."""
        return self.app.start_proposal(
            actor=LEAD,
            command_id=str(uuid.uuid4()),
            title="Community paediatrics pathway",
            kind="pathway_change",
            value_pence=12_000_000,
            parties=["PCC", "CCC"],
            public_health=False,
        )

    async def decide(self, reference: str) -> CaseState:
        """As the doors send it (`concordat.commands`): signed, through `engine.send_update`."""
        command_id = str(uuid.uuid4())
        act = ActInput(actor=DAN, action="decide", fields={"stage": "jcu", "outcome": "refer"})
        signed = proving.signed(act, reference, command_id, at=await self.env.get_current_time())
        return await send_update(self.env.client, self.settings, self.app, reference, signed, command_id)

    async def run_of(self, reference: str) -> tuple[WorkflowExecutionStatus | None, str]:
        described = await self.env.client.get_workflow_handle(reference).describe()
        return described.status, described.run_id

    def events(self, reference: str) -> list[str]:
        return [h.event for h in self.app.history(reference, actor=AUDREY)]


@pytest.fixture
async def running(time_skipping_env: WorkflowEnvironment, sqlite_settings: Settings) -> AsyncIterator[Running]:
    settings = sqlite_settings.model_copy(update={"task_queue": f"tq-{uuid.uuid4()}"})
    app = bootstrap.open_cases(settings)
    executor = ThreadPoolExecutor(max_workers=4)
    worker = Worker(
        time_skipping_env.client,
        task_queue=settings.task_queue,
        workflows=ALL_WORKFLOWS,
        activities=CaseActivities(app, command_key=proving.TEST_COMMAND_KEY).all(),
        activity_executor=executor,
    )
    async with worker:
        yield Running(time_skipping_env, app, settings)
    executor.shutdown()


async def test_a_decision_goes_to_the_running_workflow_of_the_case(running: Running) -> None:
    case = running.start()
    await ensure_workflow(running.env.client, running.settings, case, running.app)
    before = await running.run_of(case.reference)

    state = await running.decide(case.reference)

    assert state.stage == "board"
    assert running.events(case.reference) == ["Started", "Decided"]
    assert await running.run_of(case.reference) == before  # the same run took it
    handle = running.env.client.get_workflow_handle(case.reference)
    assert (await handle.query(CaseWorkflow.state)).stage == "board"


async def test_a_live_case_whose_workflow_was_never_started_takes_the_decision_and_gets_its_workflow(
    running: Running,
) -> None:
    case = running.start()
    with pytest.raises(RPCError) as missing:
        await running.run_of(case.reference)
    assert missing.value.status == RPCStatusCode.NOT_FOUND

    state = await running.decide(case.reference)

    assert state.stage == "board"
    assert running.events(case.reference) == ["Started", "Decided"]
    status, _ = await running.run_of(case.reference)
    assert status == WorkflowExecutionStatus.RUNNING
    handle = running.env.client.get_workflow_handle(case.reference)
    assert (await handle.query(CaseWorkflow.state)).stage == "board"


async def test_a_live_case_whose_workflow_was_terminated_takes_the_decision_in_a_new_run(running: Running) -> None:
    case = running.start()
    await ensure_workflow(running.env.client, running.settings, case, running.app)
    _, first = await running.run_of(case.reference)
    await running.env.client.get_workflow_handle(case.reference).terminate(reason="someone with Temporal's CLI")

    state = await running.decide(case.reference)

    assert state.stage == "board"
    assert running.events(case.reference) == ["Started", "Decided"]
    status, run = await running.run_of(case.reference)
    assert (status, run != first) == (WorkflowExecutionStatus.RUNNING, True)


async def test_a_closed_case_is_refused_without_starting_a_workflow(running: Running) -> None:
    case = running.start()
    running.app.withdraw(case.reference, actor=LEAD, command_id=str(uuid.uuid4()))

    with pytest.raises(CaseClosedError):
        await running.decide(case.reference)

    with pytest.raises(RPCError) as missing:
        await running.run_of(case.reference)
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    assert running.events(case.reference) == ["Started", "Withdrawn"]
