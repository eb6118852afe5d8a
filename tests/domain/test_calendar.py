from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.calendar import WorkingDayCalendar
from domain.case import Rules
from domain.errors import PolicyError
from domain.policy import MeetingPattern, Policy
from domain.timing import with_reminder

POLICY = Policy.load()


@pytest.fixture
def cal(policy: Policy) -> WorkingDayCalendar:
    return WorkingDayCalendar(policy)


def test_working_days_skip_weekends_and_englands_bank_holidays(cal: WorkingDayCalendar) -> None:
    # Wed 23 Dec 2026 + 3: Thu 24, then Christmas (Fri), the weekend, Boxing Day observed (Mon 28),
    # so Tue 29 and Wed 30.
    assert cal.add_working_days(date(2026, 12, 23), 3) == date(2026, 12, 30)
    assert cal.add_working_days(date(2026, 12, 30), -3) == date(2026, 12, 23)
    assert not cal.is_working_day(date(2026, 8, 31))  # summer bank holiday, England only


def test_a_deadline_is_close_of_business_in_london_whatever_the_season(cal: WorkingDayCalendar) -> None:
    summer = cal.deadline_after(datetime(2026, 6, 1, 9, tzinfo=UTC), 10)
    assert summer == datetime(2026, 6, 15, 16, 0, tzinfo=UTC)  # 17:00 BST
    winter = cal.deadline_after(datetime(2026, 11, 24, 9, tzinfo=UTC), 10)
    assert winter == datetime(2026, 12, 8, 17, 0, tzinfo=UTC)  # 17:00 GMT


def test_a_reminder_falls_at_start_of_business_three_working_days_before(cal: WorkingDayCalendar) -> None:
    deadline = datetime(2026, 12, 8, 17, 0, tzinfo=UTC)
    assert cal.reminder_before(deadline, 3) == datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def test_board_meetings_recur_every_other_month_on_the_second_tuesday(policy: Policy) -> None:
    board = policy.meetings["board"]
    assert board.first_after(date(2026, 11, 10)) == date(2027, 1, 12)
    assert board.first_after(date(2027, 1, 12)) == date(2027, 3, 9)


def test_a_cancelled_meeting_moves_business_to_the_next_one() -> None:
    pattern = MeetingPattern(
        starts=date(2026, 1, 13),
        rule="FREQ=MONTHLY;INTERVAL=2;BYDAY=+2TU",
        cancelled=[date(2027, 1, 12)],
        extra=[date(2027, 2, 2)],
    )
    assert pattern.first_after(date(2026, 12, 1)) == date(2027, 2, 2)
    assert pattern.first_after(date(2027, 2, 2)) == date(2027, 3, 9)


def test_a_pattern_that_has_ended_is_a_policy_error_naming_the_forum() -> None:
    ended = MeetingPattern(starts=date(2026, 1, 13), rule="FREQ=MONTHLY;INTERVAL=2;COUNT=2")
    with pytest.raises(PolicyError, match=r"no board meeting after 2026-04-01.*\[meetings.board\]"):
        WorkingDayCalendar.next_meeting(ended, date(2026, 4, 1), "board")


def test_working_days_left_skip_christmas_and_count_back_when_overdue(cal: WorkingDayCalendar) -> None:
    # Christmas 2026 is a Friday; Boxing Day's substitute holiday is Monday 28 December.
    assert cal.working_days_until(date(2026, 12, 21), date(2026, 12, 29)) == 4
    assert cal.working_days_until(date(2026, 12, 29), date(2026, 12, 21)) == -4
    assert cal.working_days_until(date(2026, 12, 24), date(2026, 12, 24)) == 0
    assert cal.working_days_until(date(2026, 12, 24), date(2026, 12, 28)) == 0  # nothing workable between


def test_a_meeting_pattern_answers_the_same_from_memory() -> None:
    pattern = MeetingPattern(
        starts=date(2026, 1, 13), rule="FREQ=MONTHLY;INTERVAL=2;BYDAY=+2TU", cancelled=[date(2026, 3, 10)]
    )
    first = [pattern.first_after(date(2026, 2, 1)) for _ in range(3)]
    assert first == [date(2026, 5, 12)] * 3  # March's cancelled: May, every time


@given(
    opened=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2029, 12, 31)).map(
        lambda d: d.replace(tzinfo=UTC)
    ),
    working_days=st.integers(min_value=1, max_value=60),
    lead=st.integers(min_value=1, max_value=10),
)
@settings(max_examples=300, deadline=None)
def test_a_stages_reminder_always_falls_on_a_working_day_at_start_of_business(
    opened: datetime, working_days: int, lead: int
) -> None:
    """What the outbox mails is due on a working day: the reminder of every working-day deadline (the
    staged routes' and the disputes'), whatever day the stage opened, bank holidays included."""
    rules = Rules.from_policy(POLICY)
    times = with_reminder(rules, rules.calendar.deadline_after(opened, working_days), opened, lead)
    if times.reminder_at is not None:
        local = times.reminder_at.astimezone(rules.calendar.zone)
        assert rules.calendar.is_working_day(local.date()), local
        assert local.time() == rules.calendar.start_of_business
