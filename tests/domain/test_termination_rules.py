"""Termination notices and the partnership (MOU, Termination; governance.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

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
    # Reminders three months and one month before; maturity at the start of the day (BST).
    assert [(t.name, t.at) for t in n.timers] == [
        ("remind:3m", datetime(2027, 2, 24, 9, 0, tzinfo=UTC)),
        ("remind:1m", datetime(2027, 4, 24, 8, 0, tzinfo=UTC)),
        ("mature", datetime(2027, 5, 23, 23, 0, tzinfo=UTC)),
    ]


@pytest.mark.parametrize(
    ("served_on", "effective"),
    [("2026-08-31", "2027-02-28"), ("2027-08-31", "2028-02-29"), ("2026-03-31", "2026-09-30")],
)
def test_six_months_on_is_the_months_last_day_where_the_day_does_not_exist(
    policy: Policy, served_on: str, effective: str
) -> None:
    app = CaseService(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=policy, clock=lambda: datetime(2027, 9, 1, tzinfo=UTC)
    )
    assert serve(app, served_on=served_on).details["effective"] == effective


def test_year_end_takes_the_first_31_march_on_or_after_six_months(app: CaseService) -> None:
    assert serve(app, year_end=True).details["effective"] == "2028-03-31"  # earliest is 24 May 2027
    app2 = CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=app.policy, clock=lambda: T0)
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


def test_mutual_consent_of_all_members_ends_the_partnership_on_the_agreed_day(app: CaseService) -> None:
    n = serve(app)
    today = date(2026, 11, 24).isoformat()
    app.act(n.reference, actor=PAT, action="consent", fields={"effective": today}, command_id=cid())
    s = app.act(n.reference, actor=CY, action="consent", fields={"effective": "2026-12-31"}, command_id=cid())
    assert s.details["mutual_termination_on"] is None  # dates differ: no agreement yet
    app.act(n.reference, actor=CY, action="consent", fields={"effective": today}, command_id=cid())
    done = app.act(n.reference, actor=GIL, action="consent", fields={"effective": today}, command_id=cid())
    assert done.status == "ended_by_consent"
    assert app.partnership_view(actor=AUDREY)["ended_on"] is not None


def test_consent_on_a_later_date_waits_for_that_date(app: CaseService) -> None:
    n = serve(app)
    for who in (PAT, CY, GIL):
        s = app.act(n.reference, actor=who, action="consent", fields={"effective": "2027-01-31"}, command_id=cid())
    assert [t.name for t in s.timers] == ["mutual"]
    assert fire(app, n.reference, "mutual", s.timers[0].at).status == "ended_by_consent"


def test_a_party_with_notice_pending_cannot_serve_another(app: CaseService) -> None:
    first = serve(app)
    with pytest.raises(InvalidInputError, match=f"already has notice pending: {first.reference}"):
        serve(app)
