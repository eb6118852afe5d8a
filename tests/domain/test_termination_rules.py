"""Termination notices and the partnership (MOU, Termination; governance.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from domain.actor import Actor
from domain.application import CaseService
from domain.errors import (
    CaseClosedError,
    DeadlineNotReachedError,
    InvalidInputError,
    NotAllowedError,
    NoticeTooShortError,
)
from domain.policy import Policy
from tests.domain.support import AUDREY, T0, cid

PAT = Actor.parse("party_rep:PCC:pat")
CY = Actor.parse("party_rep:CCC:cy")
GIL = Actor.parse("party_rep:CPCCG:gil")


def serve(app: CaseService, actor: Actor = CY, **fields: object):
    return app.serve_notice(actor=actor, fields={"letter_ref": "CCC/LEGAL/2026/17", **fields}, command_id=cid())


def fire(app: CaseService, ref: str, timer: str, at: datetime):
    return app.fire_timer(ref, timer=timer, command_id=cid(), at=at)


def test_notice_takes_effect_six_calendar_months_after_service(app: CaseService) -> None:
    n = serve(app)
    assert n.reference == "TRM-2026-0001"
    assert (n.details["served_on"], n.details["effective"]) == ("2026-11-24", "2027-05-24")
    # Reminders three months and one month before, on a working day (24 April 2027 is a Saturday:
    # the one-month reminder goes out on Friday the 23rd); maturity at the start of the day (BST).
    assert [(t.name, t.at) for t in n.timers] == [
        ("remind:3m", datetime(2027, 2, 24, 9, 0, tzinfo=UTC)),
        ("remind:1m", datetime(2027, 4, 23, 8, 0, tzinfo=UTC)),
        ("mature", datetime(2027, 5, 23, 23, 0, tzinfo=UTC)),
    ]


@pytest.mark.parametrize(
    ("served_on", "effective"),
    [("2026-08-31", "2027-02-28"), ("2027-08-31", "2028-02-29"), ("2026-03-31", "2026-09-30")],
)
def test_six_months_on_is_the_months_last_day_where_the_day_does_not_exist(
    policy: Policy, served_on: str, effective: str
) -> None:
    recorded = datetime.combine(date.fromisoformat(served_on) + timedelta(days=1), time(10), tzinfo=UTC)
    app = CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=policy, clock=lambda: recorded)
    assert serve(app, served_on=served_on).details["effective"] == effective


def test_year_end_takes_the_first_31_march_on_or_after_six_months(app: CaseService) -> None:
    assert serve(app, year_end=True).details["effective"] == "2028-03-31"  # earliest is 24 May 2027
    app2 = CaseService(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"},
        policy=app.policy,
        clock=lambda: datetime(2026, 10, 1, 10, 0, tzinfo=UTC),
    )
    assert serve(app2, served_on="2026-09-30", year_end=True).details["effective"] == "2027-03-31"


def test_a_date_earlier_than_six_months_is_refused_naming_the_earliest(app: CaseService) -> None:
    with pytest.raises(NoticeTooShortError, match="the earliest allowed date is 2027-05-24"):
        serve(app, effective="2027-05-23")
    assert serve(app, effective="2027-05-24").details["effective"] == "2027-05-24"


@pytest.mark.parametrize(
    ("actor", "fields", "error", "message"),
    [
        (Actor.parse("lead_director:dan"), {}, NotAllowedError, "party_rep:<party> serves it"),
        (CY, {"letter_ref": ""}, InvalidInputError, "letter-ref"),
        (CY, {"served_on": "2026-11-25"}, InvalidInputError, "is in the future"),
        (CY, {"effective": "2027-06-01", "year_end": True}, InvalidInputError, "not both"),
        (CY, {"effective": "soon"}, InvalidInputError, "effective"),
    ],
)
def test_a_malformed_notice_is_refused_and_writes_nothing(app: CaseService, actor, fields, error, message) -> None:
    with pytest.raises(error, match=message):
        app.serve_notice(actor=actor, fields={"letter_ref": "L", **fields}, command_id=cid())
    assert app.max_notification_id() == 0


def test_maturity_takes_the_party_out_and_not_a_moment_before(app: CaseService) -> None:
    n = serve(app)
    mature = n.timers[-1].at
    with pytest.raises(DeadlineNotReachedError):
        fire(app, n.reference, "mature", mature - timedelta(seconds=1))
    done = fire(app, n.reference, "mature", mature)
    assert done.status == "matured"
    p = app.partnership_view(actor=AUDREY)
    assert p["members"] == ["PCC", "CPCCG"] and p["ended_on"] is None
    assert p["departures"][0]["party"] == "CCC"


def test_with_fewer_than_two_members_left_the_partnership_ends(app: CaseService) -> None:
    first = serve(app)
    fire(app, first.reference, "mature", first.timers[-1].at)
    second = serve(app, actor=GIL, letter_ref="CCG/2026/3")
    fire(app, second.reference, "mature", second.timers[-1].at)
    p = app.partnership_view(actor=AUDREY)
    assert p["members"] == ["PCC"] and p["ended_on"] is not None
    with pytest.raises(CaseClosedError, match="the partnership has ended"):
        serve(app, actor=PAT)


def test_the_serving_party_may_withdraw_before_it_takes_effect(app: CaseService) -> None:
    n = serve(app)
    with pytest.raises(NotAllowedError, match="allowed: party_rep:CCC"):
        app.act(n.reference, actor=PAT, action="withdraw", fields={}, command_id=cid())
    w = app.act(n.reference, actor=CY, action="withdraw", fields={"note": "Budget settled"}, command_id=cid())
    assert (w.status, w.timers) == ("withdrawn", [])
    with pytest.raises(CaseClosedError):
        fire(app, n.reference, "mature", datetime(2027, 6, 1, tzinfo=UTC))
    assert app.partnership_view(actor=AUDREY)["members"] == ["PCC", "CCC", "CPCCG"]


def test_consent_on_a_notice_is_refused_pointing_to_an_agreement(app: CaseService) -> None:
    n = serve(app)
    assert [a.name for a in n.actions] == ["withdraw"]
    stored = app.max_notification_id()
    with pytest.raises(InvalidInputError, match="mutual consent is an agreement of its own"):
        app.act(n.reference, actor=PAT, action="consent", fields={"effective": "2026-11-24"}, command_id=cid())
    assert app.max_notification_id() == stored


# --- the date of service (governance.md: recorded a little late, never before the partnership began,
# never in the future, never so that the effective date has passed) -----------------------------------


def at_ten(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(10), tzinfo=UTC)


def service_on(policy: Policy, today: str) -> CaseService:
    return CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=policy, clock=lambda: at_ten(today))


def test_a_notice_may_be_recorded_up_to_ten_working_days_after_service(app: CaseService) -> None:
    # Tuesday 10 November 2026: its tenth working day after is Tuesday 24 November (today).
    late = serve(app, served_on="2026-11-10")
    assert (late.details["served_on"], late.details["effective"]) == ("2026-11-10", "2027-05-10")
    assert late.started_at == T0


def test_a_notice_served_longer_ago_than_the_window_is_refused(app: CaseService) -> None:
    with pytest.raises(InvalidInputError) as err:
        serve(app, served_on="2026-11-09")
    assert str(err.value) == (
        "--served-on 2026-11-09 is too long ago: a notice may be recorded at most 10 working days after it "
        "was served (this one by 2026-11-23; today is 2026-11-24)"
    )
    with pytest.raises(InvalidInputError, match="before the partnership began"):
        serve(app, served_on="1900-01-01", effective="1900-07-01")
    with pytest.raises(InvalidInputError, match="too long ago"):
        serve(app, served_on="2025-06-01")
    assert app.max_notification_id() == 0


def test_the_window_counts_working_days_not_bank_holidays(policy: Policy) -> None:
    # Served Wednesday 23 December 2026: Christmas Day, Boxing Day (its substitute, Monday 28th), New
    # Year's Day and two weekends are not working days, so its tenth working day after is Monday 11
    # January 2027 (ten calendar days would end on 2 January).
    app = service_on(policy, "2027-01-11")
    assert serve(app, served_on="2026-12-23").details["served_on"] == "2026-12-23"
    with pytest.raises(InvalidInputError, match="by 2027-01-11; today is 2027-01-12"):
        serve(service_on(policy, "2027-01-12"), served_on="2026-12-23")


def test_no_notice_is_served_before_the_partnership_began(policy: Policy) -> None:
    app = service_on(policy, "2015-06-03")
    with pytest.raises(InvalidInputError) as err:
        serve(app, served_on="2015-05-29")
    assert str(err.value) == (
        "--served-on 2015-05-29 is before the partnership began on 2015-06-01; notice can only be served by a member"
    )
    assert app.max_notification_id() == 0
    assert serve(app, served_on="2015-06-01").details["effective"] == "2015-12-01"


def test_a_notice_whose_effective_date_has_come_is_refused(policy: Policy) -> None:
    # A partnership whose policy gives one month's notice and a long window for recording it.
    text = policy.source_text.replace("notice_months = 6", "notice_months = 1").replace(
        "late_recording_working_days = 10", "late_recording_working_days = 60"
    )
    short = Policy.from_bytes(text.encode("utf-8"), "short notice")
    app = service_on(short, "2026-11-24")
    with pytest.raises(InvalidInputError) as err:
        serve(app, served_on="2026-09-30")
    assert str(err.value) == (
        "a notice served on 2026-09-30 takes effect on 2026-10-30, which has already come (today is 2026-11-24); "
        "a notice is recorded before it takes effect"
    )
    with pytest.raises(InvalidInputError, match="takes effect on 2026-11-24, which has already come"):
        serve(app, served_on="2026-10-24", effective="2026-11-24")
    assert app.max_notification_id() == 0
    assert serve(app, served_on="2026-10-26").details["effective"] == "2026-11-26"


def test_no_reminder_falls_before_the_notice_was_recorded(policy: Policy) -> None:
    text = policy.source_text.replace("notice_months = 6", "notice_months = 2").replace(
        "late_recording_working_days = 10", "late_recording_working_days = 60"
    )
    app = service_on(Policy.from_bytes(text.encode("utf-8"), "long window"), "2026-11-24")
    n = serve(app, served_on="2026-09-01", effective="2027-01-15")  # 3 months before: 15 October, gone
    assert [t.name for t in n.timers] == ["remind:1m", "mature"]


def test_a_party_with_notice_pending_cannot_serve_another(app: CaseService) -> None:
    first = serve(app)
    with pytest.raises(InvalidInputError, match=f"already has notice pending: {first.reference}"):
        serve(app)
