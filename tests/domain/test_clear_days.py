"""Clear days: the day of publication and the day of the meeting or decision never count (LGA 1972
s.100B for agendas; the 2012 Executive Arrangements Regulations for the forward plan and notices).
Hand-worked examples first, then the arithmetic's properties around weekends and bank holidays."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.calendar import WorkingDayCalendar
from domain.policy import Policy

CAL = WorkingDayCalendar(Policy.load())
# Spans several Christmases, Easters and the summer bank holidays.
days = st.dates(min_value=date(2026, 1, 1), max_value=date(2029, 12, 31))
counts = st.integers(min_value=0, max_value=40)


def test_an_agenda_for_tuesday_12_january_is_published_by_wednesday_6_january() -> None:
    # 5 clear days: Thu 7, Fri 8, Sat 9, Sun 10, Mon 11 (the 6th and the 12th do not count).
    assert CAL.latest_publication(date(2027, 1, 12), 5) == date(2027, 1, 6)
    assert CAL.clear_days_between(date(2027, 1, 6), date(2027, 1, 12)) == 5
    assert CAL.clear_days_between(date(2027, 1, 7), date(2027, 1, 12)) == 4


def test_a_key_decision_on_the_forward_plan_from_6_january_may_be_taken_on_4_february() -> None:
    # 28 clear days: 7 January to 3 February inclusive.
    assert CAL.earliest_after_notice(date(2027, 1, 6), 28) == date(2027, 2, 4)
    assert CAL.clear_days_between(date(2027, 1, 6), date(2027, 2, 3)) == 27


def test_a_call_in_period_from_christmas_eve_runs_over_christmas_boxing_day_and_new_year() -> None:
    # Published Thu 24 Dec 2026. Not counted: Fri 25 (Christmas), the weekend, Mon 28 (Boxing Day,
    # substitute), Fri 1 Jan, the weekend. Counted: Tue 29, Wed 30, Thu 31, Mon 4, Tue 5.
    assert CAL.end_of_clear_working_days(date(2026, 12, 24), 5) == date(2027, 1, 5)
    assert CAL.clear_working_days_between(date(2026, 12, 24), date(2027, 1, 6)) == 5


def test_a_notice_published_on_the_friday_before_a_bank_holiday_monday_starts_counting_on_tuesday() -> None:
    # Fri 22 May 2026; Mon 25 May is the spring bank holiday: Tue 26 … Mon 1 June.
    assert CAL.end_of_clear_working_days(date(2026, 5, 22), 5) == date(2026, 6, 1)


@pytest.mark.parametrize(
    ("published", "event", "clear"),
    [((2026, 3, 2), (2026, 3, 2), 0), ((2026, 3, 2), (2026, 3, 3), 0), ((2026, 3, 5), (2026, 3, 2), 0)],
)
def test_no_clear_days_between_the_same_or_adjacent_days_or_backwards(published, event, clear) -> None:  # noqa: ANN001
    assert CAL.clear_days_between(date(*published), date(*event)) == clear


@given(days, counts)
def test_the_earliest_day_after_notice_leaves_exactly_the_clear_days_and_a_day_sooner_does_not(
    published: date, n: int
) -> None:
    earliest = CAL.earliest_after_notice(published, n)
    assert CAL.clear_days_between(published, earliest) == n
    assert (
        earliest - timedelta(days=1) == published
        or CAL.clear_days_between(published, earliest - timedelta(days=1)) == n - 1
    )


@given(days, counts)
def test_the_latest_publication_leaves_exactly_the_clear_days_and_a_day_later_does_not(event: date, n: int) -> None:
    latest = CAL.latest_publication(event, n)
    assert CAL.clear_days_between(latest, event) == n
    assert CAL.clear_days_between(latest + timedelta(days=1), event) == max(n - 1, 0)


@given(days, st.integers(min_value=1, max_value=30))
def test_clear_working_days_end_on_a_working_day_with_exactly_that_many_between(published: date, n: int) -> None:
    end = CAL.end_of_clear_working_days(published, n)
    assert CAL.is_working_day(end)
    # The period ends at close of business on `end`: the next day is the first that leaves n clear.
    assert CAL.clear_working_days_between(published, end + timedelta(days=1)) == n
    assert CAL.clear_working_days_between(published, end) == n - 1


@given(days, days)
def test_clear_working_days_never_exceed_clear_days_and_skip_every_weekend(a: date, b: date) -> None:
    published, event = min(a, b), max(a, b)
    working = CAL.clear_working_days_between(published, event)
    clear = CAL.clear_days_between(published, event)
    assert working <= clear
    weekend_days = sum(1 for n in range(1, (event - published).days) if (published + timedelta(days=n)).weekday() >= 5)
    assert working <= clear - weekend_days


@given(days, st.integers(min_value=1, max_value=30))
def test_a_notice_published_on_a_day_off_counts_as_from_the_working_day_before(published: date, n: int) -> None:
    nxt = published + timedelta(days=1)
    if not CAL.is_working_day(nxt):
        assert CAL.end_of_clear_working_days(published, n) == CAL.end_of_clear_working_days(nxt, n)
