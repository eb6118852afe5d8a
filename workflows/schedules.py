"""`ScheduledCaseWorkflow`: one firing of a review or report schedule (`[schedules.NAME]` in the policy).

A Temporal Schedule (`concordat/schedules.py` creates it from the policy) starts this workflow at
each instant its spec names. The workflow asks the activity `open_scheduled_case` to open the
schedule's case, with the command id `schedule:<name>:<scheduled instant>`: a repeated firing for the
same instant (a retry, a catch-up after a restart, a backfill over a firing already done) finds the
store's receipt and opens nothing new. It then starts the case's own `CaseWorkflow` (workflow id =
the case reference; already running is fine) as a child left running when this workflow ends, so the
case's deadline, reminder and escalation run like any other case's.

The scheduled instant is the input's when given (tests, backfills by hand), else Temporal's search
attribute `TemporalScheduledStartTime`, which a schedule sets on each workflow it starts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from workflows.case import CaseWorkflow
    from workflows.contracts import OPEN_SCHEDULED_CASE, CaseInput, CaseState, OpenScheduledInput, ScheduledFiring

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


# A firing's workflow id starts with this (Temporal adds the instant): it opens its case and ends.
FIRING_ID_PREFIX = "schedule-"


@workflow.defn
class ScheduledCaseWorkflow:
    @workflow.run
    async def run(self, firing: ScheduledFiring) -> str:
        at = firing.scheduled_at or self._scheduled_instant()
        state: CaseState = await workflow.execute_activity(
            OPEN_SCHEDULED_CASE,
            OpenScheduledInput(
                schedule=firing.schedule,
                scheduled_at=at,
                command_id=f"schedule:{firing.schedule}:{at.isoformat()}",
                at=workflow.now(),
            ),
            result_type=CaseState,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RETRY,
        )
        if state.actions or state.timers:
            try:
                await workflow.start_child_workflow(
                    CaseWorkflow.run,
                    CaseInput(reference=state.reference, state=state),
                    id=state.reference,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                )
            except WorkflowAlreadyStartedError:
                pass  # a repeated firing: the case's workflow runs already
        return state.reference

    @staticmethod
    def _scheduled_instant() -> datetime:
        found = workflow.info().typed_search_attributes.get(SCHEDULED_START)
        return found if found is not None else workflow.info().start_time
