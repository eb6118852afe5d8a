"""Termination by mutual consent: an agreement of every party (MOU, Termination: "Termination can be
agreed at any time by mutual consent"; governance.md).

An agreement that a named party leaves, or that the partnership ends, on an agreed date: no notice
served first, no notice period; in force once every party has agreed, and then irrevocable by any one
of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.actor import Actor
from domain.application import CaseService
from domain.errors import CaseClosedError, InvalidInputError, NotAllowedError, WrongStageError
from tests.domain.support import AUDREY, cid

PAT = Actor.parse("party_rep:PCC:pat")
CY = Actor.parse("party_rep:CCC:cy")
GIL = Actor.parse("party_rep:CPCCG:gil")


def propose(app: CaseService, actor: Actor = CY, **fields: object):
    values = {"leaving": "CCC", "effective": "2027-03-31", "agreement_ref": "MOU/CCC-EXIT/1", **fields}
    return app.propose_agreement(actor=actor, fields=values, command_id=cid())


def sign(app: CaseService, ref: str, actor: Actor):
    return app.act(ref, actor=actor, action="agree", fields={}, command_id=cid())


def members(app: CaseService) -> list[str]:
    return app.partnership_view(actor=AUDREY)["members"]


def test_a_party_leaves_on_the_agreed_date_once_every_party_has_signed(app: CaseService) -> None:
    a = propose(app)  # no notice served; the date is four months away, well inside any notice period
    assert (a.reference, a.kind, a.status, a.stage) == ("AGR-2026-0001", "agreement", "open", "signatures")
    assert a.details["signed"].keys() == {"CCC"} and a.details["awaiting"] == ["PCC", "CPCCG"]
    assert [t.name for t in a.timers] == ["lapse"]
    sign(app, a.reference, PAT)
    agreed = sign(app, a.reference, GIL)
    assert (agreed.status, agreed.actions) == ("in_force", [])
    takes_effect = datetime(2027, 3, 30, 23, 0, tzinfo=UTC)  # the start of 31 March in London (BST)
    assert [(t.name, t.at) for t in agreed.timers] == [("take_effect", takes_effect)]
    assert members(app) == ["PCC", "CCC", "CPCCG"]
    done = app.fire_timer(a.reference, timer="take_effect", command_id=cid(), at=takes_effect)
    assert done.status == "took_effect"
    view = app.partnership_view(actor=AUDREY)
    assert view["members"] == ["PCC", "CPCCG"] and view["ended_on"] is None
    assert view["departures"] == [{"party": "CCC", "notice_ref": a.reference, "on": takes_effect.isoformat()}]


def test_once_in_force_no_one_party_can_undo_it(app: CaseService) -> None:
    a = propose(app)
    sign(app, a.reference, PAT)
    sign(app, a.reference, GIL)
    stored = app.max_notification_id()
    for who in (PAT, CY, GIL):
        with pytest.raises(CaseClosedError, match="in force: every party has agreed, and no one party can undo it"):
            app.act(a.reference, actor=who, action="refuse", fields={"note": "changed our mind"}, command_id=cid())
    with pytest.raises(InvalidInputError, match="takes no 'withdraw'"):
        app.act(a.reference, actor=CY, action="withdraw", fields={}, command_id=cid())
    assert app.max_notification_id() == stored
    assert app.state(a.reference).status == "in_force"


def test_before_every_party_has_signed_one_refusal_ends_it(app: CaseService) -> None:
    a = propose(app)
    sign(app, a.reference, PAT)
    declined = app.act(a.reference, actor=PAT, action="refuse", fields={"note": "not yet"}, command_id=cid())
    assert (declined.status, declined.details["declined_by"], declined.timers) == ("declined", "PCC", [])
    with pytest.raises(CaseClosedError):
        sign(app, a.reference, GIL)
    assert members(app) == ["PCC", "CCC", "CPCCG"]


def test_the_whole_partnership_ends_today_when_the_last_party_signs(app: CaseService) -> None:
    a = propose(app, actor=PAT, leaving=None, effective="2026-11-24")
    assert a.title == "The partnership ends by agreement" and a.details["ends_partnership"] is True
    sign(app, a.reference, CY)
    done = sign(app, a.reference, GIL)
    assert done.status == "took_effect"  # the agreed day has come: at once, in the same command
    assert app.partnership_view(actor=AUDREY)["ended_on"] == "2026-11-24T00:00:00+00:00"


def test_without_every_signature_by_the_end_of_the_agreed_day_it_lapses(app: CaseService) -> None:
    a = propose(app)
    sign(app, a.reference, PAT)
    lapse = next(t for t in app.state(a.reference).timers if t.name == "lapse").at
    assert lapse == datetime(2027, 4, 1, 0, 0, tzinfo=UTC) - timedelta(hours=1)  # 1 April, BST
    assert app.fire_timer(a.reference, timer="lapse", command_id=cid(), at=lapse).status == "lapsed"
    assert members(app) == ["PCC", "CCC", "CPCCG"]


@pytest.mark.parametrize(
    ("actor", "fields", "error", "message"),
    [
        (Actor.parse("jcu_lead:jo"), {}, NotAllowedError, "a party_rep:<party> proposes it"),
        (CY, {"effective": "2026-11-23"}, InvalidInputError, "is in the past"),
        (CY, {"effective": "soon"}, InvalidInputError, "effective"),
        (CY, {"agreement_ref": ""}, InvalidInputError, "agreement-ref"),
        (CY, {"leaving": "NHS"}, InvalidInputError, "--leaving 'NHS' is not a member"),
        (CY, {"served_on": "2026-11-24"}, InvalidInputError, "served-on"),
    ],
)
def test_a_malformed_agreement_is_refused_and_writes_nothing(app: CaseService, actor, fields, error, message) -> None:
    with pytest.raises(error, match=message):
        propose(app, actor=actor, **fields)
    assert app.max_notification_id() == 0


def test_a_party_signs_once_and_only_for_itself(app: CaseService) -> None:
    a = propose(app)
    with pytest.raises(WrongStageError, match="CCC has signed AGR-2026-0001 already"):
        sign(app, a.reference, Actor.parse("party_rep:CCC:cora"))
    with pytest.raises(NotAllowedError, match="a party_rep:<party> does"):
        sign(app, a.reference, Actor.parse("lead_director:dan"))
    assert app.state(a.reference).details["awaiting"] == ["PCC", "CPCCG"]
