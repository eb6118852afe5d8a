"""The policy's review and report cycles as Temporal Schedules (`[schedules.NAME]`; docs/policy.md).

`sync` creates each schedule, or updates one that exists, from the policy: the worker and `up` call
it when they start, so a changed policy reaches Temporal at the next start and a restart changes
nothing that is already right. A schedule's pause (and its note) is the operator's and survives the
update. Schedules the policy no longer names are deleted. Schedule id `concordat-schedule-NAME`.

Each firing starts `ScheduledCaseWorkflow` (`workflows/schedules.py`), which opens the case with the
command id `schedule:NAME:<scheduled instant>`: a firing repeated for the same instant opens nothing
new. Overlap SKIP: while one firing's workflow runs, another is not started beside it. A firing
missed while Temporal or every worker was down is started when they are back, if that is within the
schedule's `catchup_window_days`; a firing older than that is dropped (a late review is better opened
by hand than many at once).

`trigger` fires a schedule now (`concordat schedules trigger`, an administrator's, recorded first on
`domain.cycles.ScheduleControl`): Temporal fires it for the instant the trigger arrives, even while
the schedule is paused, so each trigger is a new instant and would open a new case; the record
refuses a second trigger within a minute of the last (a report is one duty for its period).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowFailureError,
)
from temporalio.exceptions import FailureError
from temporalio.service import RPCError, RPCStatusCode

from domain.errors import InvalidInputError
from domain.policy import Policy, ScheduleRule
from workflows.contracts import ScheduledFiring
from workflows.schedules import FIRING_ID_PREFIX, ScheduledCaseWorkflow

PREFIX = "concordat-schedule-"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def schedule_id(name: str) -> str:
    return PREFIX + name


def spec_of(policy: Policy, rule: ScheduleRule) -> ScheduleSpec:
    p = policy.partnership
    zone_start = (
        datetime.combine(rule.start_on, p.start_of_business, tzinfo=_zone(policy)).astimezone(UTC)
        if rule.start_on
        else None
    )
    end = datetime.combine(rule.end_on, time(23, 59), tzinfo=_zone(policy)).astimezone(UTC) if rule.end_on else None
    if rule.every_days is not None:
        every = timedelta(days=rule.every_days)
        anchor = zone_start or datetime.combine(p.started_on, p.start_of_business, tzinfo=_zone(policy)).astimezone(UTC)
        offset = (anchor - EPOCH) % every  # phase: a firing falls on start_on (or the partnership's start)
        return ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=every, offset=offset)], start_at=zone_start, end_at=end
        )
    return ScheduleSpec(cron_expressions=[rule.cron], time_zone_name=p.timezone, start_at=zone_start, end_at=end)


def _zone(policy: Policy) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(policy.partnership.timezone)


def schedule_of(
    policy: Policy, name: str, rule: ScheduleRule, task_queue: str, state: ScheduleState | None
) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ScheduledCaseWorkflow.run,
            ScheduledFiring(schedule=name),
            id=f"{FIRING_ID_PREFIX}{name}",
            task_queue=task_queue,
        ),
        spec=spec_of(policy, rule),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP,
            catchup_window=timedelta(days=rule.catchup_window_days),
        ),
        state=state or ScheduleState(note=f"from the policy's [schedules.{name}]"),
    )


@dataclass
class Synced:
    created: list[str]
    updated: list[str]
    deleted: list[str]


async def sync(client: Client, policy: Policy, task_queue: str) -> Synced:
    """Create or update every schedule the policy names; delete ours it no longer names."""
    done = Synced([], [], [])
    for name, rule in policy.schedules.items():
        try:
            await client.create_schedule(schedule_id(name), schedule_of(policy, name, rule, task_queue, None))
            done.created.append(name)
        except ScheduleAlreadyRunningError:

            def updated(given: ScheduleUpdateInput, name: str = name, rule: ScheduleRule = rule) -> ScheduleUpdate:
                kept = given.description.schedule.state
                return ScheduleUpdate(schedule=schedule_of(policy, name, rule, task_queue, kept))

            await client.get_schedule_handle(schedule_id(name)).update(updated)
            done.updated.append(name)
    async for listed in await client.list_schedules():
        if listed.id.startswith(PREFIX) and listed.id.removeprefix(PREFIX) not in policy.schedules:
            await client.get_schedule_handle(listed.id).delete()
            done.deleted.append(listed.id.removeprefix(PREFIX))
    return done


async def listing(client: Client, policy: Policy, firings: int = 3) -> list[dict[str, Any]]:
    """Each schedule of the policy as Temporal holds it: its next firings, paused or not (and why)."""
    found = []
    for name, rule in policy.schedules.items():
        row: dict[str, Any] = {
            "name": name,
            "opens": rule.opens,
            "title": rule.title,
            "owner": rule.owner,
            "every": rule.cron or f"every {rule.every_days} days",
            "deadline_working_days": rule.deadline_working_days,
        }
        try:
            d = await client.get_schedule_handle(schedule_id(name)).describe()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            found.append({**row, "created": False, "paused": False, "note": "", "next": [], "recent": []})
            continue
        found.append(
            {
                **row,
                "created": True,
                "paused": d.schedule.state.paused,
                "note": d.schedule.state.note or "",
                "next": [t.isoformat() for t in d.info.next_action_times[:firings]],
                "recent": [a.scheduled_at.isoformat() for a in d.info.recent_actions[-firings:]],
            }
        )
    return found


def check_name(policy: Policy, name: str) -> None:
    if name not in policy.schedules:
        raise InvalidInputError(
            f"no schedule is named {name!r}; schedules: {', '.join(policy.schedules) or 'none (see [schedules] in the policy)'}"
        )


async def pause(client: Client, name: str, note: str) -> None:
    await client.get_schedule_handle(schedule_id(name)).pause(note=note)


async def resume(client: Client, name: str, note: str) -> None:
    await client.get_schedule_handle(schedule_id(name)).unpause(note=note)


@dataclass
class Fired:
    """A firing by hand as seen from the outside: the workflow Temporal started for it and the case
    it opened (or why none was seen)."""

    workflow_id: str | None
    reference: str | None
    problem: str | None


async def started_firings(client: Client, name: str) -> set[str]:
    """The workflow ids of the schedule's recent firings (also: the schedule exists in Temporal)."""
    try:
        d = await client.get_schedule_handle(schedule_id(name)).describe()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        raise InvalidInputError(
            f"{name} is not in Temporal yet: start a worker (`concordat up` or `concordat worker`), which "
            "creates the policy's schedules"
        ) from None
    return {
        a.action.workflow_id
        for a in d.info.recent_actions
        if isinstance(a.action, ScheduleActionExecutionStartWorkflow)
    }


async def fired_since(client: Client, name: str, at: datetime) -> bool:
    """Whether a firing of the schedule started at or after `at`: a trigger recorded then reached
    Temporal (a repeated command asks this before firing again)."""
    d = await client.get_schedule_handle(schedule_id(name)).describe()
    return any(
        a.started_at >= at for a in d.info.recent_actions if isinstance(a.action, ScheduleActionExecutionStartWorkflow)
    )


async def trigger(
    client: Client, name: str, before: set[str], seen_within: float = 10, opened_within: float = 60
) -> Fired:
    """Fire the schedule now (Temporal fires it even while paused, with the schedule's overlap policy:
    skipped while a firing of it still runs), then wait for the case the firing opens. `before`: the
    firings there were (`started_firings`), so the new one is told apart."""
    handle = client.get_schedule_handle(schedule_id(name))
    await handle.trigger()
    deadline = asyncio.get_running_loop().time() + seen_within
    new: ScheduleActionExecutionStartWorkflow | None = None
    while new is None:
        d = await handle.describe()
        new = next(
            (
                a.action
                for a in reversed(d.info.recent_actions)
                if isinstance(a.action, ScheduleActionExecutionStartWorkflow) and a.action.workflow_id not in before
            ),
            None,
        )
        if new is None:
            if asyncio.get_running_loop().time() > deadline:
                return Fired(None, None, "no firing started (another firing of it still runs: overlaps are skipped)")
            await asyncio.sleep(0.2)
    run = client.get_workflow_handle(new.workflow_id, run_id=new.first_execution_run_id)
    try:
        reference = await asyncio.wait_for(run.result(), opened_within)
    except TimeoutError:
        return Fired(new.workflow_id, None, "its case is not open yet: is a worker running? (`concordat cycles list`)")
    except WorkflowFailureError as err:
        cause: BaseException = err
        while isinstance(cause, WorkflowFailureError | FailureError) and cause.cause is not None:
            cause = cause.cause  # the workflow's failure ← the activity's ← the domain's refusal
        return Fired(new.workflow_id, None, f"the firing failed: {getattr(cause, 'message', cause)}")
    return Fired(new.workflow_id, str(reference), None)
