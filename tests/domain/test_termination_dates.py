"""Dates of service and dates of effect against the rules, for any dates (hypothesis).

MOU, Termination: "at least six months' notice in writing … ideally … year-end". governance.md: six
months are calendar months (the same day six months on; the month's last day where that day does
not exist); the date of service may be recorded up to 10 working days late (policy), never before
the partnership began (1 June 2015), never in the future, never so that the effective date has
passed; reminders fall on working days.

The expected answers are worked out here from first principles (`calendar.monthrange`, a walk over
the days with England's bank holidays from the `holidays` library), not by the code under test.
Dates are drawn with a bias to month ends and 29 February.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta

import holidays
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain.actor import Actor
from domain.application import CaseService
from domain.errors import InvalidInputError, NoticeTooShortError
from domain.policy import Policy

CY = Actor.parse("party_rep:CCC:cy")
BEGAN = date(2015, 6, 1)
WINDOW = 10
ENGLAND = holidays.country_holidays("GB", subdiv="ENG", years=range(2014, 2034))


def working(day: date) -> bool:
    return day.weekday() < 5 and day not in ENGLAND


def months_on(day: date, months: int) -> date:
    """The same day `months` calendar months on (or back), or that month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def working_days_between(after: date, upto: date) -> int:
    """Working days d with after < d <= upto."""
    return sum(1 for n in range(1, (upto - after).days + 1) if working(after + timedelta(days=n)))


MONTH_ENDS = [date(y, m, calendar.monthrange(y, m)[1]) for y in range(2014, 2031) for m in range(1, 13)] + [
    date(y, 2, 29) for y in (2016, 2020, 2024, 2028)
]
days = st.one_of(st.dates(date(2014, 12, 1), date(2030, 12, 31)), st.sampled_from(MONTH_ENDS))


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.load()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    served_on=days,
    late=st.integers(min_value=-3, max_value=25),
    ask=st.sampled_from(["none", "year_end", "explicit"]),
    shift=st.integers(min_value=-40, max_value=500),
)
@example(served_on=date(2027, 8, 31), late=0, ask="none", shift=0)  # → 29 February 2028
@example(served_on=date(2026, 8, 31), late=1, ask="explicit", shift=-1)  # 27 February: too short
@example(served_on=date(2015, 5, 31), late=1, ask="none", shift=0)  # the day before the partnership
@example(served_on=date(2024, 2, 29), late=14, ask="year_end", shift=0)
def test_service_and_effective_dates_follow_the_rules(
    policy: Policy, served_on: date, late: int, ask: str, shift: int
) -> None:
    today = served_on + timedelta(days=late)
    app = CaseService(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"},
        policy=policy,
        clock=lambda: datetime.combine(today, time(10), tzinfo=UTC),
    )
    earliest = months_on(served_on, 6)
    fields: dict[str, object] = {"letter_ref": "CCC/LEGAL/1", "served_on": served_on.isoformat()}
    if ask == "year_end":
        fields["year_end"] = True
    elif ask == "explicit":
        fields["effective"] = (earliest + timedelta(days=shift)).isoformat()

    def serve():  # noqa: ANN202
        return app.serve_notice(actor=CY, fields=fields, command_id="c1")

    if served_on > today:
        with pytest.raises(InvalidInputError, match="is in the future"):
            serve()
        return
    if served_on < BEGAN:
        with pytest.raises(InvalidInputError, match="before the partnership began on 2015-06-01"):
            serve()
        return
    if working_days_between(served_on, today) > WINDOW:
        with pytest.raises(InvalidInputError, match="too long ago"):
            serve()
        return
    if ask == "explicit" and shift < 0:
        with pytest.raises(NoticeTooShortError, match=f"the earliest allowed date is {earliest.isoformat()}"):
            serve()
        return
    notice = serve()
    effective = date.fromisoformat(notice.details["effective"])
    if ask == "year_end":
        assert (effective.month, effective.day) == (3, 31)
        assert effective >= earliest and effective - timedelta(days=366) < earliest
    elif ask == "explicit":
        assert effective == earliest + timedelta(days=shift)
    else:
        assert effective == earliest
    # Six months' notice at least, and always still to come when it is recorded.
    assert effective >= months_on(served_on, 6) > today
    assert notice.details["served_on"] == served_on.isoformat()
    zone = app.rules.calendar.zone
    for timer in notice.timers:
        local = timer.at.astimezone(zone)
        if timer.name == "mature":
            assert (local.date(), local.time()) == (effective, time(0))
            continue
        months = int(timer.name.removeprefix("remind:").removesuffix("m"))
        target = months_on(effective, -months)
        day = local.date()
        # On a working day: the target day, or the last working day before it.
        assert working(day) and day <= target
        assert all(not working(day + timedelta(days=n)) for n in range(1, (target - day).days + 1))
        assert day > served_on and timer.at > notice.started_at
    # Every reminder the policy asks for is there unless its day was before service or recording.
    names = {t.name for t in notice.timers}
    for months in policy.termination.reminder_months_before:
        target = months_on(effective, -months)
        if target > today + timedelta(days=7):
            assert f"remind:{months}m" in names
