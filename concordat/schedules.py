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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
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
