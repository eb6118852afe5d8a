"""Working days in England, and the instants the rules derive from them.

Deadlines in working days skip weekends and England's bank holidays, taken from the maintained
`holidays` library (never a hand-written list). Instants are stored in UTC; the calendar works in the
partnership's own time zone (Europe/London), so a deadline is "close of business on the Nth working
day" there, whatever the season.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from domain.errors import PolicyError
from domain.policy import MeetingPattern, Policy

if TYPE_CHECKING:
    import holidays


class WorkingDayCalendar:
    def __init__(self, policy: Policy) -> None:
        p = policy.partnership
        self.zone = ZoneInfo(p.timezone)
        self.close_of_business = p.close_of_business
        self.start_of_business = p.start_of_business
        self._country, self._subdivision = p.holiday_country, p.holiday_subdivision

    @cached_property
    def _holidays(self) -> holidays.HolidayBase:
        """The bank holidays, loaded when a day is first asked about: loading them imports every
        country `holidays` knows (most of a second), which reading a case never needs."""
        import holidays

        return holidays.country_holidays(self._country, subdiv=self._subdivision)

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()

    def at(self, day: date, clock: time) -> datetime:
        """The UTC instant of a local wall-clock time on a day (zoneinfo resolves DST)."""
        return datetime.combine(day, clock, tzinfo=self.zone).astimezone(UTC)

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self._holidays

    def holiday_name(self, day: date) -> str | None:
        return self._holidays.get(day)

    def add_working_days(self, day: date, count: int) -> date:
        """The `count`th working day after `day` (the day itself never counts)."""
        step = 1 if count >= 0 else -1
        remaining = abs(count)
        while remaining:
            day += timedelta(days=step)
            if self.is_working_day(day):
                remaining -= 1
        return day

    def working_days_until(self, today: date, day: date) -> int:
        """Working days from `today` to `day`: how many working days after today up to and including
        it; negative (the working days since) when it has passed; 0 when due today."""
        if day >= today:
            return sum(1 for n in range(1, (day - today).days + 1) if self.is_working_day(today + timedelta(days=n)))
        return -sum(1 for n in range(0, (today - day).days) if self.is_working_day(day + timedelta(days=n)))

    def deadline_after(self, opened: datetime, working_days: int) -> datetime:
        """Close of business on the `working_days`th working day after the day a stage opened."""
        day = self.add_working_days(self.local_date(opened), working_days)
        return self.at(day, self.close_of_business)

    def close_of_business_on(self, day: date) -> datetime:
        return self.at(day, self.close_of_business)

    def reminder_before(self, deadline: datetime, working_days: int) -> datetime:
        """Start of business `working_days` working days before the deadline's day."""
        day = self.add_working_days(self.local_date(deadline), -working_days)
        return self.at(day, self.start_of_business)

    # --- clear days (LGA 1972 s.100B; the 2012 Executive Arrangements Regulations) ------------
    #
    # "Clear days" leave out both ends: the day a notice is published and the day of the meeting or
    # decision. Calendar clear days count every day between (an agenda 5 clear days before a meeting;
    # a forward-plan entry 28 clear days before a key decision); clear *working* days count only the
    # working days between (the call-in period: 5 clear working days after a decision notice).

    @staticmethod
    def clear_days_between(published: date, event: date) -> int:
        """How many whole days lie strictly between `published` and `event` (0 when they are the same
        day or adjacent, or `event` is before `published`)."""
        return max((event - published).days - 1, 0)

    @staticmethod
    def latest_publication(event: date, clear_days: int) -> date:
        """The last day a notice may be published and still leave `clear_days` clear days before
        `event`."""
        return event - timedelta(days=clear_days + 1)

    @staticmethod
    def earliest_after_notice(published: date, clear_days: int) -> date:
        """The first day a meeting or decision may fall after a notice published on `published` that
        needs `clear_days` clear days."""
        return published + timedelta(days=clear_days + 1)

    def clear_working_days_between(self, published: date, event: date) -> int:
        """How many working days lie strictly between `published` and `event`."""
        return sum(1 for n in range(1, (event - published).days) if self.is_working_day(published + timedelta(days=n)))

    def end_of_clear_working_days(self, published: date, clear_days: int) -> date:
        """The last of `clear_days` clear working days after `published` (a notice published on a
        Friday before a bank-holiday Monday starts counting on Tuesday); the period ends at the close
        of business that day."""
        return self.add_working_days(published, clear_days)

    @staticmethod
    def next_meeting(pattern: MeetingPattern, after: date, forum: str) -> date:
        """The first meeting of `forum` strictly after `after`."""
        day = pattern.first_after(after)
        if day is None:
            msg = f"the policy lists no {forum} meeting after {after.isoformat()}; extend [meetings.{forum}]"
            raise PolicyError(msg)
        return day
