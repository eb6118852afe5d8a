"""A command whose outcome nobody knew ends known when it is repeated with the same command id.

The store stops answering the worker after it has committed a decision (the connection dies before
the activity can report it): the activity fails until its deadline, the workflow reloads the case
from the store and answers "the store did not answer in time … repeat it with the same command id".
Repeating it then must finish it (finding the decision already stored), not be answered with the
failure Temporal remembers for the first update. On Temporal's time-skipping test server, with the
real worker, activities and application on a SQLite store; the fault is injected at the activity's
door to the store, after the store's own commit."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from concordat import bootstrap
from concordat.engine import CommandRefusedError, send_update
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from tests import proving
from workers.activities import CaseActivities, case_state
from workflows.case import ALL_WORKFLOWS, UPDATE_ACTIVITY_DEADLINE, CaseWorkflow
from workflows.contracts import ACT_ON_CASE, ActInput, ActOnCaseInput, ActorRef, CaseInput, CaseState

LEAD = Actor.parse("jcu_lead:jo")
DAN = ActorRef(id="dan", role="lead_director")
AUDREY = Actor("audrey", "auditor")


class FlakyStore(CaseActivities):
    """The real activities; while `down`, the answer to a command is lost after the store commits it."""

    def __init__(self, app: CaseService) -> None:
        super().__init__(app, command_key=proving.TEST_COMMAND_KEY)
        self.down = False
        self.calls: list[str] = []
        self.lost = threading.Event()  # an answer was lost (the store had committed it)

    @activity.defn(name=ACT_ON_CASE)
    def act_on_case(self, input: ActOnCaseInput) -> CaseState:
        self.calls.append(input.command_id)
        state = super().act_on_case(input)
        if self.down:
            self.lost.set()
            raise OperationalError("server closed the connection unexpectedly")
        return state


@dataclass
class Running:
    env: WorkflowEnvironment
    app: CaseService
    settings: Settings
    store: FlakyStore

    async def start(self) -> Any:
        now = await self.env.get_current_time()
        state = self.app.start_proposal(
            actor=LEAD,
            command_id=str(uuid.uuid4()),
            at=now,
            title="Community paediatrics pathway",
            kind="pathway_change",
            value_pence=12_000_000,
            parties=["PCC", "CCC"],
            public_health=False,
        )
        await self.env.client.start_workflow(
            CaseWorkflow.run,
            CaseInput(reference=state.reference, state=case_state(state)),
            id=state.reference,
            task_queue=self.settings.task_queue,
        )
        return state

    async def decide(self, reference: str, command_id: str) -> CaseState:
        """As the doors send it (`concordat.commands`): signed, through `engine.send_update`."""
        act = ActInput(actor=DAN, action="decide", fields={"stage": "jcu", "outcome": "refer"})
        signed = proving.signed(act, reference, command_id, at=await self.env.get_current_time())
        return await send_update(self.env.client, self.settings, self.app, reference, signed, command_id)

    def events(self, reference: str) -> list[str]:
        return [h.event for h in self.app.history(reference, actor=AUDREY)]


@pytest.fixture
async def running(time_skipping_env: WorkflowEnvironment, sqlite_settings: Settings) -> AsyncIterator[Running]:
    settings = sqlite_settings.model_copy(update={"task_queue": f"tq-{uuid.uuid4()}"})
    app = bootstrap.open_cases(settings)
    store = FlakyStore(app)
    executor = ThreadPoolExecutor(max_workers=4)
    worker = Worker(
        time_skipping_env.client,
        task_queue=settings.task_queue,
        workflows=ALL_WORKFLOWS,
        activities=store.all(),
        activity_executor=executor,
    )
    async with worker:
        yield Running(time_skipping_env, app, settings, store)
    executor.shutdown()


async def test_a_command_whose_outcome_was_unknown_is_finished_by_repeating_it(running: Running) -> None:
    case = await running.start()
    running.store.down = True
    attempt = asyncio.ensure_future(running.decide(case.reference, "decide-1"))
    # The first answer lost, then the activity retries until the update's deadline (minutes): the test
    # server skips that time. Skipping before the update reached the worker would skip nothing of it.
    assert await asyncio.to_thread(running.store.lost.wait, 60), "the decision never reached the worker"
    await running.env.sleep(UPDATE_ACTIVITY_DEADLINE + timedelta(minutes=1))
    with pytest.raises(CommandRefusedError) as unknown:
        await asyncio.wait_for(attempt, 60)  # a hang fails here, not at CI's time limit
    assert unknown.value.kind == "StoreUnavailable"
    assert "repeat it with the same command id" in str(unknown.value)
    # The decision was committed before the answer was lost; the workflow reloaded the case from the
    # store, so it waits on the board, not on the JCU.
    assert running.events(case.reference) == ["Started", "Decided"]
    assert (await running.env.client.get_workflow_handle(case.reference).query(CaseWorkflow.state)).stage == "board"

    running.store.down = False
    state = await running.decide(case.reference, "decide-1")  # the same command id
    assert state.stage == "board"
    assert running.events(case.reference) == ["Started", "Decided"]  # found stored, not recorded twice
    assert running.store.calls[-1] == "decide-1"  # the repeat reached the worker under the command id
