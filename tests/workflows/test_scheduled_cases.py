"""A schedule's firing (`ScheduledCaseWorkflow`) on Temporal's time-skipping test server, with the real
worker, activities and application on a fresh SQLite store.

The time-skipping server does not implement Schedules (CreateSchedule is "unimplemented"), so the
schedules themselves are tested on the real dev server (tests/e2e/test_schedules.py); here the firing
workflow runs at the instants a schedule would start it: that a firing opens its case on time with its
deadline and escalation, and that a repeated firing for the same instant opens nothing new."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from tests import proving
from workflows.case import CaseWorkflow
from workflows.contracts import ActInput, ActorRef, ScheduledFiring
from workflows.schedules import ScheduledCaseWorkflow

AUDITOR = Actor.parse("auditor:audrey")
LONDON_9AM = time(9, 0)


@dataclass
class Firings:
    env: WorkflowEnvironment
    app: CaseService
    queue: str

    async def fire(self, schedule: str, at: datetime) -> str:
        """What the schedule does at `at`: start the firing workflow (its id is Temporal's, one per run)."""
        result: str = await self.env.client.execute_workflow(
            ScheduledCaseWorkflow.run,
            ScheduledFiring(schedule=schedule, scheduled_at=at),
            id=f"schedule-{schedule}-{uuid.uuid4()}",
            task_queue=self.queue,
        )
        return result

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    def cases(self, prefix: str) -> list[str]:
        return list(self.app.references((prefix,)))


@pytest.fixture
async def firings(time_skipping_env: WorkflowEnvironment, sqlite_settings: Settings) -> AsyncIterator[Firings]:
    app = bootstrap.open_cases(sqlite_settings)
    queue = f"tq-{uuid.uuid4()}"
    parts = bootstrap.build_worker(time_skipping_env.client, app, queue, command_key=proving.TEST_COMMAND_KEY)
    async with parts.worker:
        yield Firings(time_skipping_env, app, queue)
    parts.executor.shutdown()


async def test_a_repeated_firing_for_the_same_instant_opens_nothing_new(firings: Firings) -> None:
    at = await firings.now()
    first = await firings.fire("work_plan_review_ccc", at)
    again = await firings.fire("work_plan_review_ccc", at)
    assert first == again
    assert firings.cases("REV") == [first]
    assert [h.event for h in firings.app.history(first, actor=AUDITOR)] == ["Opened"]


async def test_a_review_is_escalated_when_its_deadline_passes_undone(firings: Firings) -> None:
    reference = await firings.fire("work_plan_review_ccg", await firings.now())
    view = firings.app.state(reference)
    assert view.details["owner"] == "party_rep:CPCCG"
    handle = firings.env.client.get_workflow_handle(reference)  # the case's own workflow, started by the firing
    assert view.deadline is not None
    await firings.env.sleep(view.deadline + timedelta(minutes=1) - await firings.now())
    state = await handle.query(CaseWorkflow.state)
    assert state.status == "open"
    events = [h.event for h in firings.app.history(reference, actor=AUDITOR)]
    assert events == ["Opened", "ReminderSent", "Overdue"]
    assert [a.roles for a in firings.app.state(reference).actions] == [["party_rep:CPCCG", "lead_director"]]


async def test_a_six_monthly_review_opens_on_time_across_a_year(firings: Firings) -> None:
    """The instants are the ones Temporal computes for the policy's cron `0 9 1 1,7 *` in Europe/London
    (tests/e2e/test_schedules.py checks them against the dev server's `next_action_times`)."""
    cal = firings.app.rules.calendar
    today = cal.local_date(await firings.now())
    year = today.year + 1
    opened = []
    for day in (date(year, 1, 1), date(year, 7, 1)):
        at = cal.at(day, LONDON_9AM)
        await firings.env.sleep(at - await firings.now())
        opened.append(await firings.fire("work_plan_review_ccc", at))
    assert firings.cases("REV") == opened
    views = [firings.app.state(r) for r in opened]
    assert [v.details["scheduled_at"] for v in views] == [
        cal.at(date(year, 1, 1), LONDON_9AM).isoformat(),
        cal.at(date(year, 7, 1), LONDON_9AM).isoformat(),
    ]
    # Due on the twentieth working day after each firing: after New Year's Day (a bank holiday) and
    # in July (none), counted by the partnership's calendar.
    assert [v.details["due"] for v in views] == [
        cal.add_working_days(date(year, 1, 1), 20).isoformat(),
        cal.add_working_days(date(year, 7, 1), 20).isoformat(),
    ]
    assert views[0].started_at >= cal.at(date(year, 1, 1), LONDON_9AM)


async def test_a_report_attaches_its_figures_and_is_closed_by_its_owner(firings: Firings) -> None:
    reference = await firings.fire("jcu_programme_board_report", await firings.now())
    assert reference.startswith("RPT-")
    view = firings.app.state(reference)
    assert view.details["figures"]["cases"]["open_by_kind"] == {}
    handle = firings.env.client.get_workflow_handle(reference)
    act = ActInput(
        actor=ActorRef(id="jo", role="jcu_lead"),
        action="record_done",
        fields={"document_ref": "JCU/PB/2027-02", "note": "Tabled"},
    )
    state = await proving.send(handle, act, at=await firings.now())
    assert state.status == "done"
    assert (await handle.result())["status"] == "done"  # untyped handle: the result as JSON
    described = await handle.describe()
    assert described.workflow_type == CaseWorkflow.__name__  # the workflow every case runs
