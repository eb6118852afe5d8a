"""The policy's review and report cycles as Temporal Schedules on the real dev server (Temporal's
time-skipping test server does not implement Schedules), with the real worker and activities on a
fresh SQLite store: created from the policy idempotently, an operator's pause kept across a restart,
the six-monthly cadence Temporal computes, a missed firing caught up once, and a paused schedule
firing nothing."""

from __future__ import annotations

import asyncio
import time as clock
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pytest
from temporalio.client import (
    ScheduleBackfill,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.testing import WorkflowEnvironment

from concordat import binaries, bootstrap, schedules
from concordat.settings import Settings
from domain.application import CaseService
from tests import proving
from workflows.contracts import ScheduledFiring
from workflows.schedules import ScheduledCaseWorkflow


@dataclass
class Running:
    env: WorkflowEnvironment
    app: CaseService
    queue: str

    async def sync(self) -> schedules.Synced:
        return await schedules.sync(self.env.client, self.app.policy, self.queue)

    def handle(self, name: str) -> object:
        return self.env.client.get_schedule_handle(schedules.schedule_id(name))

    def cases(self, prefix: str = "REV") -> list[str]:
        return list(self.app.references((prefix,)))

    async def until(self, done: object, what: str, seconds: float = 30) -> None:
        """Wait for `done()` (a firing runs on another task); fail naming `what` if it never holds."""
        deadline = clock.monotonic() + seconds
        while not done():  # type: ignore[operator]
            if clock.monotonic() > deadline:
                raise AssertionError(f"not within {seconds}s: {what}")
            await asyncio.sleep(0.2)


@pytest.fixture
async def running(sqlite_settings: Settings) -> AsyncIterator[Running]:
    path = binaries.find("temporal")
    assert path is not None, "the temporal CLI is not installed: run `uv sync`"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=path, data_converter=bootstrap.data_converter(Settings())
    )
    app = bootstrap.open_cases(sqlite_settings)
    queue = f"tq-{uuid.uuid4()}"
    parts = bootstrap.build_worker(env.client, app, queue, command_key=proving.TEST_COMMAND_KEY)
    try:
        async with parts.worker:
            yield Running(env, app, queue)
    finally:
        parts.executor.shutdown()
        app.close()
        await env.shutdown()


async def test_schedules_are_created_once_and_an_operators_pause_survives_a_restart(running: Running) -> None:
    first = await running.sync()
    assert sorted(first.created) == sorted(running.app.policy.schedules) and not first.updated
    await running.env.client.get_schedule_handle(schedules.schedule_id("annual_report")).pause(note="held by ops")
    again = await running.sync()  # the worker starting again: nothing new, the pause kept
    assert not again.created and sorted(again.updated) == sorted(running.app.policy.schedules)
    ours = [s.id async for s in await running.env.client.list_schedules() if s.id.startswith(schedules.PREFIX)]
    assert len(ours) in (0, len(running.app.policy.schedules))  # the dev server's list may lag; never more
    d = await running.env.client.get_schedule_handle(schedules.schedule_id("annual_report")).describe()
    assert d.schedule.state.paused and d.schedule.state.note == "held by ops"
    listed = {r["name"]: r for r in await schedules.listing(running.env.client, running.app.policy)}
    assert listed["annual_report"]["paused"] and not listed["mou_annual_review"]["paused"]


async def test_the_work_plan_review_fires_on_1_january_and_1_july_at_nine_in_london(running: Running) -> None:
    await running.sync()
    d = await running.env.client.get_schedule_handle(schedules.schedule_id("work_plan_review_ccc")).describe()
    now = datetime.now(UTC)
    within_a_year = [t for t in d.info.next_action_times if t <= now + timedelta(days=366)]
    cal = running.app.rules.calendar
    expected = sorted(
        cal.at(date(year, month, 1), time(9, 0))
        for year in (now.year, now.year + 1)
        for month in (1, 7)
        if now < cal.at(date(year, month, 1), time(9, 0)) <= now + timedelta(days=366)
    )
    assert within_a_year == expected and len(expected) == 2


async def test_a_missed_firing_is_caught_up_once_whatever_the_repeats(running: Running) -> None:
    """A firing missed while everything was down comes back as a backfill over the window (Temporal's
    catch-up starts it the same way): twice over, it opens one case."""
    await running.sync()
    handle = running.env.client.get_schedule_handle(schedules.schedule_id("work_plan_review_ccc"))
    cal = running.app.rules.calendar
    today = cal.local_date(datetime.now(UTC))
    missed = cal.at(date(today.year, 7, 1) if today.month >= 7 else date(today.year - 1, 7, 1), time(9, 0))
    window = ScheduleBackfill(
        start_at=missed - timedelta(hours=1),
        end_at=missed + timedelta(hours=1),
        overlap=ScheduleOverlapPolicy.ALLOW_ALL,
    )
    await handle.backfill(window)
    await handle.backfill(window)  # Temporal names the run by schedule and instant: this one it drops

    async def settled() -> bool:
        d = await handle.describe()
        return d.info.num_actions >= 1 and not d.info.running_actions

    deadline = clock.monotonic() + 30
    while not await settled():
        assert clock.monotonic() < deadline, "the backfilled firing did not run"
        await asyncio.sleep(0.2)
    # The same instant started under another run's name (a catch-up after the run's history was
    # removed, a hand-made backfill): the store's receipt for the instant opens nothing new.
    again = await running.env.client.execute_workflow(
        ScheduledCaseWorkflow.run,
        ScheduledFiring(schedule="work_plan_review_ccc", scheduled_at=missed),
        id=f"schedule-work_plan_review_ccc-again-{uuid.uuid4()}",
        task_queue=running.queue,
    )
    (reference,) = running.cases("REV")
    assert again == reference
    assert running.app.state(reference).details["scheduled_at"] == missed.isoformat()


async def test_a_paused_schedule_fires_nothing_until_resumed(running: Running) -> None:
    await running.sync()
    name = "work_plan_review_ccg"
    handle = running.env.client.get_schedule_handle(schedules.schedule_id(name))

    def every_second(given: ScheduleUpdateInput) -> ScheduleUpdate:  # the cadence, quickened for the test
        s = given.description.schedule
        s.spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))])
        return ScheduleUpdate(schedule=s)

    await handle.pause(note="paused by test")
    await handle.update(every_second)
    started = clock.monotonic()
    await asyncio.sleep(3)  # three instants it would have fired at
    assert (await handle.describe()).info.num_actions == 0 and running.cases("REV") == []
    assert clock.monotonic() - started >= 3
    await handle.unpause(note="resumed by test")
    await running.until(lambda: len(running.cases("REV")) >= 1, "a resumed schedule opens a case")
