"""An activity retried after its commit stores one event, not two (Temporal's test server, the real
activity and store; only the crash is staged: the first attempt raises after the commit)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from tests import proving
from workers.activities import CaseActivities, case_state
from workflows.case import CaseWorkflow
from workflows.contracts import ACT_ON_CASE, ActInput, ActOnCaseInput, ActorRef, CaseInput, CaseState


class CrashAfterCommit(CaseActivities):
    """The real activities, but the first attempt of each decision dies after the store commits."""

    attempts: list[int]

    @activity.defn(name=ACT_ON_CASE)
    def act_on_case(self, input: ActOnCaseInput) -> CaseState:
        state = super().act_on_case(input)
        self.attempts.append(activity.info().attempt)
        if activity.info().attempt == 1:
            raise ConnectionError("worker lost its connection after the commit")
        return state


async def test_an_activity_retried_after_its_commit_stores_one_event(
    time_skipping_env: WorkflowEnvironment, sqlite_settings: Settings
) -> None:
    app = bootstrap.open_cases(sqlite_settings)
    acts = CrashAfterCommit(app, command_key=proving.TEST_COMMAND_KEY)
    acts.attempts = []
    state = app.start_proposal(
        actor=Actor.parse("jcu_lead:jo"),
        command_id=str(uuid.uuid4()),
        title="t",
        kind="procurement",
        value_pence=1_000,
        parties=["PCC"],
        public_health=False,
        at=await time_skipping_env.get_current_time(),
    )
    queue = f"tq-{uuid.uuid4()}"
    with ThreadPoolExecutor(4) as pool:
        async with Worker(
            time_skipping_env.client,
            task_queue=queue,
            workflows=[CaseWorkflow],
            activities=acts.all(),
            activity_executor=pool,
        ):
            handle = await time_skipping_env.client.start_workflow(
                CaseWorkflow.run,
                CaseInput(reference=state.reference, state=case_state(state)),
                id=state.reference,
                task_queue=queue,
            )
            result = await proving.send(
                handle,
                ActInput(
                    actor=ActorRef(id="dan", role="lead_director"),
                    action="decide",
                    fields={"stage": "jcu", "outcome": "approve"},
                ),
                at=await time_skipping_env.get_current_time(),
            )
    assert acts.attempts == [1, 2]  # it really was retried
    assert result.status == "approved"
    history = app.history(state.reference, actor=Actor.parse("auditor:audrey"))
    assert [h.event for h in history] == ["Started", "Decided"]
