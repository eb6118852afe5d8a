"""The FOI clock (FOIA s.10, s.1(3)): twenty working days of the whole United Kingdom, stopped for
clarification (restarting from day one) and for an unpaid fees notice. Hand-worked examples first
(each day counted by hand in its comment), then properties across years of every nation's holidays."""

from __future__ import annotations

from datetime import date, timedelta

import holidays
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.foi_clock import AWAITING_CLARIFICATION, AWAITING_FEE, RUNNING, Span, UkWorkingDays, foi_clock

UK = UkWorkingDays()
ENGLAND = UkWorkingDays(nations=("ENG",))


def due(received: date, **kw: object) -> date | None:
    return foi_clock(UK, received=received, **kw).due  # type: ignore[arg-type]


# --- hand-worked ------------------------------------------------------------------------------


def test_a_request_just_before_christmas_skips_christmas_boxing_day_new_year_and_scotlands_2_january() -> None:
    # Received Wed 23 Dec 2026. Thu 24 (1); Fri 25 Christmas; Mon 28 Boxing Day (substitute); Tue 29
    # (2), Wed 30 (3), Thu 31 (4); Fri 1 Jan New Year; Mon 4 Jan is Scotland's 2 January holiday
    # (2 Jan is a Saturday); Tue 5 – Fri 8 (8); 11–15 (13); 18–22 (18); Mon 25 (19), Tue 26 (20).
    assert due(date(2026, 12, 23)) == date(2027, 1, 26)
    # England's calendar alone counts Mon 4 Jan, a day early: the FOI count is the union's.
    assert foi_clock(ENGLAND, received=date(2026, 12, 23)).due == date(2027, 1, 25)


def test_st_andrews_day_is_not_a_working_day_for_foi_though_it_is_in_england() -> None:
    # Received Fri 27 Nov 2026. Mon 30 Nov is St Andrew's Day (Scotland). Tue 1 – Fri 4 Dec (4);
    # 7–11 (9); 14–18 (14); 21–24 (18); Christmas, Boxing Day (observed Mon 28); Tue 29 (19), Wed 30 (20).
    assert due(date(2026, 11, 27)) == date(2026, 12, 30)
    assert foi_clock(ENGLAND, received=date(2026, 11, 27)).due == date(2026, 12, 29)


def test_the_twelfth_of_july_and_scotlands_august_holiday_both_stop_the_count() -> None:
    # Received Fri 9 Jul 2027. Mon 12 Jul: Battle of the Boyne (Northern Ireland). Tue 13 – Fri 16
    # (4); 19–23 (9); 26–30 (14); Mon 2 Aug: Scotland's summer holiday; Tue 3 – Fri 6 (18); Mon 9 (19),
    # Tue 10 Aug (20). In England alone: 12 Jul (1) … Fri 6 Aug (20).
    assert due(date(2027, 7, 9)) == date(2027, 8, 10)
    assert foi_clock(ENGLAND, received=date(2027, 7, 9)).due == date(2027, 8, 6)


def test_a_clarification_starts_the_twenty_days_again_from_the_day_it_arrives() -> None:
    # Received Mon 1 Feb 2027; clarification sought Wed 3 Feb (the clock stops); it arrives Mon 8 Mar.
    # From 8 Mar: 9–12 (4); 15, 16 (6); Wed 17 St Patrick's Day (NI); 18, 19 (8); 22–25 (12); Fri 26
    # Good Friday; Mon 29 Easter Monday; 30, 31 (14); Thu 1, Fri 2 Apr (16); 5–8 Apr (20).
    asked = foi_clock(UK, received=date(2027, 2, 1), clarifications=[Span(date(2027, 2, 3))])
    assert asked.status == AWAITING_CLARIFICATION and asked.due is None
    answered = foi_clock(UK, received=date(2027, 2, 1), clarifications=[Span(date(2027, 2, 3), date(2027, 3, 8))])
    assert answered.status == RUNNING
    assert answered.counted_from == date(2027, 3, 8)
    assert answered.due == date(2027, 4, 8)


def test_the_days_a_fees_notice_is_unpaid_are_disregarded_the_day_it_was_given_and_paid_included() -> None:
    # Received Mon 1 Feb 2027. Tue 2 – Thu 4 (3); fees notice Fri 5 Feb, paid Wed 10 Feb: 5, 8, 9 and 10
    # are disregarded; Thu 11, Fri 12 (5); 15–19 (10); 22–26 (15); 1–5 Mar (20). Without it: Mon 1 Mar.
    assert due(date(2027, 2, 1)) == date(2027, 3, 1)
    unpaid = foi_clock(UK, received=date(2027, 2, 1), fees=[Span(date(2027, 2, 5))])
    assert unpaid.status == AWAITING_FEE and unpaid.due is None
    assert due(date(2027, 2, 1), fees=[Span(date(2027, 2, 5), date(2027, 2, 10))]) == date(2027, 3, 5)


def test_a_public_interest_extension_names_the_new_date_and_keeps_the_statutory_one() -> None:
    clock = foi_clock(UK, received=date(2027, 2, 1), extended_to=date(2027, 3, 29))
    assert clock.statutory_due == date(2027, 3, 1)
    assert clock.due == date(2027, 3, 29)


# --- properties -------------------------------------------------------------------------------

days = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))
NATION_LISTS = {n: holidays.country_holidays("GB", subdiv=n) for n in ("ENG", "WLS", "SCT", "NIR")}


@settings(max_examples=300, deadline=None)
@given(received=days)
def test_the_due_date_is_a_working_day_in_every_nation_twenty_working_days_on(received: date) -> None:
    found = due(received)
    assert found is not None
    assert found.weekday() < 5
    for nation, listed in NATION_LISTS.items():
        assert found not in listed, (nation, found)
    assert UK.working_days_between(received, found) == 20
    # Every day in between that is skipped is a weekend or some nation's bank holiday.
    skipped = [
        received + timedelta(days=n)
        for n in range(1, (found - received).days)
        if not UK.is_working_day(received + timedelta(days=n))
    ]
    assert all(d.weekday() >= 5 or any(d in h for h in NATION_LISTS.values()) for d in skipped)


@settings(max_examples=300, deadline=None)
@given(received=days)
def test_the_uk_count_is_never_earlier_than_englands_and_later_only_for_another_nations_holiday(
    received: date,
) -> None:
    uk, england = due(received), foi_clock(ENGLAND, received=received).due
    assert uk is not None and england is not None
    assert uk >= england
    others = [
        received + timedelta(days=n)
        for n in range(1, (uk - received).days + 1)
        if UK.holidays_on(received + timedelta(days=n)).keys() - {"ENG", "WLS"}
        and (received + timedelta(days=n)).weekday() < 5
        and not ENGLAND.holidays_on(received + timedelta(days=n))
    ]
    assert (uk == england) == (not others)


@settings(max_examples=300, deadline=None)
@given(received=days, asked_after=st.integers(0, 25), answered_after=st.integers(0, 90))
def test_a_clarification_restarts_the_count_from_day_one_whenever_it_was_sought(
    received: date, asked_after: int, answered_after: int
) -> None:
    asked = received + timedelta(days=asked_after)
    arrived = asked + timedelta(days=answered_after)
    clock = foi_clock(UK, received=received, clarifications=[Span(asked, arrived)])
    assert clock.counted_from == arrived
    assert clock.due == due(arrived)  # exactly as if the request had arrived that day
    assert foi_clock(UK, received=received, clarifications=[Span(asked)]).status == AWAITING_CLARIFICATION


@settings(max_examples=300, deadline=None)
@given(received=days, notice_after=st.integers(1, 40), unpaid_for=st.integers(0, 60))
def test_a_paid_fee_moves_the_due_date_by_the_working_days_it_stood_unpaid(
    received: date, notice_after: int, unpaid_for: int
) -> None:
    notice = received + timedelta(days=notice_after)
    paid = notice + timedelta(days=unpaid_for)
    plain = due(received)
    assert plain is not None
    with_fee = due(received, fees=[Span(notice, paid)])
    if notice > plain:  # a notice given after the due date changes nothing
        assert with_fee == plain
        return
    disregarded = sum(1 for n in range((paid - notice).days + 1) if UK.is_working_day(notice + timedelta(days=n)))
    assert with_fee == UK.add_working_days(plain, disregarded)
    # Unpaid, the clock stands still; paid a day later, the answer is never due sooner.
    assert foi_clock(UK, received=received, fees=[Span(notice)]).status == AWAITING_FEE
    later = due(received, fees=[Span(notice, paid + timedelta(days=1))])
    assert later is not None and with_fee is not None and later >= with_fee


@settings(max_examples=200, deadline=None)
@given(
    received=days,
    answered_after=st.integers(1, 60),
    notice_after=st.integers(0, 30),
    unpaid_for=st.integers(0, 30),
)
def test_a_fee_after_a_clarification_counts_from_the_clarifications_arrival(
    received: date, answered_after: int, notice_after: int, unpaid_for: int
) -> None:
    arrived = received + timedelta(days=answered_after)
    notice = arrived + timedelta(days=notice_after)
    fee = Span(notice, notice + timedelta(days=unpaid_for))
    both = foi_clock(UK, received=received, clarifications=[Span(received, arrived)], fees=[fee])
    assert both.due == due(arrived, fees=[fee])
