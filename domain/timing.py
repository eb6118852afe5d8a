"""Deadlines and reminders of a timed stage, computed on the working-day calendar (shared by the
case kinds whose stages count working days)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from domain.case import Rules
from domain.errors import PolicyError
from domain.policy import Deadline


@dataclass(frozen=True)
class StageTimes:
    deadline: datetime
    reminder_at: datetime | None


def with_reminder(rules: Rules, deadline: datetime, opened: datetime, lead_working_days: int) -> StageTimes:
    reminder = rules.calendar.reminder_before(deadline, lead_working_days) if lead_working_days else None
    # A reminder due before the stage even opened would be noise: the opening is the notice.
    return StageTimes(deadline, reminder if reminder and reminder > opened else None)


def deadline_for(rules: Rules, deadline: Deadline, opened: datetime, *, after: date | None = None) -> datetime:
    """A stage's deadline: close of business on the Nth working day after it opened, or on the
    forum's next meeting (strictly after `after`, when given, e.g. for a deferral)."""
    cal = rules.calendar
    if deadline.working_days is not None:
        return cal.deadline_after(opened, deadline.working_days)
    forum = deadline.next_meeting or ""
    start = max(after or cal.local_date(opened), cal.local_date(opened))
    return cal.close_of_business_on(cal.next_meeting(rules.policy.meetings[forum], start, forum))


def stage_times(
    rules: Rules, deadline: Deadline, opened: datetime, lead_working_days: int, *, after: date | None = None
) -> StageTimes:
    return with_reminder(rules, deadline_for(rules, deadline, opened, after=after), opened, lead_working_days)


def working_day_times(rules: Rules, deadline: Deadline, opened: datetime, lead_working_days: int) -> StageTimes:
    if deadline.working_days is None:
        msg = "this stage's deadline must be a number of working days, not a meeting"
        raise PolicyError(msg)
    return with_reminder(rules, rules.calendar.deadline_after(opened, deadline.working_days), opened, lead_working_days)
