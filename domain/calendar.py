"""Working days in England, and the instants the rules derive from them.

Deadlines in working days skip weekends and England's bank holidays, taken from the maintained
`holidays` library (never a hand-written list). Instants are stored in UTC; the calendar works in the
partnership's own time zone (Europe/London), so a deadline is "close of business on the Nth working
day" there, whatever the season.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from domain.errors import PolicyError
from domain.policy import MeetingPattern, Policy


class WorkingDayCalendar:
    def __init__(self, policy: Policy) -> None:
        p = policy.partnership
        self.zone = ZoneInfo(p.timezone)
        self.close_of_business = p.close_of_business
        self.start_of_business = p.start_of_business
        self._holidays = holidays.country_holidays(p.holiday_country, subdiv=p.holiday_subdivision)

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

    @staticmethod
    def next_meeting(pattern: MeetingPattern, after: date, forum: str) -> date:
        """The first meeting of `forum` strictly after `after`."""
        day = pattern.first_after(after)
        if day is None:
            msg = f"the policy lists no {forum} meeting after {after.isoformat()}; extend [meetings.{forum}]"
            raise PolicyError(msg)
        return day
