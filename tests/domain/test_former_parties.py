"""A party that has left the partnership is no party to new cases and takes no part in open ones
(MOU, Termination; governance.md, "Termination of the partnership").

PCC serves notice; the notice matures on 24 May 2027 and PCC leaves. Cases of every kind then refuse
PCC as a party, and commands given for PCC (by its representative or its own body) on cases opened
before it left are refused: one line naming PCC and when it left, and nothing written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.actor import Actor
from domain.application import CaseService
from domain.membership import FormerPartyError
from domain.policy import Policy
from tests.domain.support import DAN, LEAD, T0, approve_through, cid, open_agreed_fund
from tests.people import ensure

PAT = Actor.parse("party_rep:PCC:pat")
CY = Actor.parse("party_rep:CCC:cy")
GIL = Actor.parse("party_rep:CPCCG:gil")
PCC_BODY = Actor.parse("secretary:pcc_decision:pia")
LEFT = "PCC left the partnership on 2027-05-24 (TRM-2026-0001)"
AFTER = datetime(2027, 6, 1, 9, 0, tzinfo=UTC)


class Clock:
    """The application's clock, moved on by the test (as days pass in the partnership)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def app(policy: Policy, clock: Clock) -> CaseService:
    return CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=policy, clock=clock)


def pcc_leaves(app: CaseService, clock: Clock) -> None:
    """PCC's notice, served today, matures six months on; the clock moves past it."""
    notice = app.serve_notice(actor=PAT, fields={"letter_ref": "PCC/LEGAL/1"}, command_id=cid())
    assert notice.reference == "TRM-2026-0001"
    mature = next(t for t in notice.timers if t.name == "mature")
    app.fire_timer(notice.reference, timer="mature", command_id=cid(), at=mature.at)
    clock.now = AFTER
    assert app.partnership_view(actor=Actor.parse("auditor:audrey"))["members"] == ["CCC", "CPCCG"]


def refused(app: CaseService, call: Callable[[], Any], *needles: str) -> str:
    """The call is refused as a former party's, in one line naming the party and when it left, and
    nothing is written."""
    stored = app.max_notification_id()
    with pytest.raises(FormerPartyError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message
    for needle in (LEFT, *needles):
        assert needle in message, message
    assert app.max_notification_id() == stored, "a refused command stored an event"
    return message


def proposal(app: CaseService, parties: list[str]) -> str:
    return app.start_proposal(
        actor=LEAD,
        title="Community paediatrics pathway",
        kind="pathway_change",
        value_pence=30_000_000,
        parties=parties,
        public_health=False,
        command_id=cid(),
    ).reference


def test_a_former_party_is_no_party_to_a_new_case_of_any_kind(app: CaseService, clock: Clock) -> None:
    open_agreed_fund(app, "Pooled", balance=10_000_000)
    pcc_leaves(app, clock)
    refused(app, lambda: proposal(app, ["PCC", "CCC"]), "--parties", "members: CCC, CPCCG")
    variation = {
        "provider": "Hinchingbrooke",
        "contract_ref": "C-14",
        "reason": "performance_review",
        "value_change_pence": -100_000,
        "parties": ["PCC", "CCC"],
        "effective_on": "2027-09-01",
    }
    refused(app, lambda: app.start_variation(actor=LEAD, fields=variation, command_id=cid()), "--parties")
    funding = {"fund": "Pooled", "changes": {"PCC": -20_000}}
    refused(app, lambda: app.start_funding_change(actor=LEAD, fields=funding, command_id=cid()), "--change")
    against_pcc = {"against": ["PCC"], "subject": "Overspend"}
    refused(app, lambda: app.raise_dispute(actor=CY, fields=against_pcc, command_id=cid()), "--against")
    by_pcc = {"against": ["CCC"], "subject": "Overspend"}
    refused(app, lambda: app.raise_dispute(actor=PAT, fields=by_pcc, command_id=cid()), "no part in new cases")
    refused(app, lambda: app.serve_notice(actor=PAT, fields={"letter_ref": "L/2"}, command_id=cid()))
    leaving_pcc = {"leaving": "PCC", "effective": "2027-07-01", "agreement_ref": "A/1"}
    refused(app, lambda: app.propose_agreement(actor=CY, fields=leaving_pcc, command_id=cid()), "--leaving")
    by_pcc_agreement = {"leaving": "CCC", "effective": "2027-07-01", "agreement_ref": "A/1"}
    refused(app, lambda: app.propose_agreement(actor=PAT, fields=by_pcc_agreement, command_id=cid()))
    # The members still start cases among themselves.
    assert proposal(app, ["CCC", "CPCCG"]).startswith("PRO-2027-")


def test_a_former_partys_body_does_not_decide_in_an_open_proposal(app: CaseService, clock: Clock) -> None:
    ref = proposal(app, ["PCC", "CCC", "CPCCG"])
    at_bodies = approve_through(app, ref, stop_at="pcc_decision")
    assert "pcc_decision" in at_bodies.stage
    pcc_leaves(app, clock)
    before = app.state(ref)
    refused(
        app,
        lambda: app.decide(ref, actor=PCC_BODY, stage="pcc_decision", outcome="approve", command_id=cid()),
        "pcc_decision",
    )
    assert app.state(ref) == before


def test_a_former_party_does_not_answer_in_an_open_dispute_and_is_no_longer_awaited(
    app: CaseService, clock: Clock
) -> None:
    ref = app.raise_dispute(
        actor=CY, fields={"against": ["PCC", "CPCCG"], "subject": "Overspend"}, command_id=cid()
    ).reference
    app.act(ref, actor=DAN, action="resolve", fields={"outcome": "mediation"}, command_id=cid())
    ensure(app, "mediator:meg")  # the mediator is a person of the directory with the mediator role
    app.act(ref, actor=DAN, action="nominate", fields={"mediator": "meg"}, command_id=cid())
    waiting = app.state(ref).actions[0].roles
    assert waiting == ["party_rep:PCC", "party_rep:CCC", "party_rep:CPCCG"]
    pcc_leaves(app, clock)
    refused(app, lambda: app.act(ref, actor=PAT, action="agree", fields={}, command_id=cid()), ref)
    assert app.state(ref).actions[0].roles == ["party_rep:CCC", "party_rep:CPCCG"]
    app.act(ref, actor=CY, action="agree", fields={}, command_id=cid())
    after = app.act(ref, actor=GIL, action="agree", fields={}, command_id=cid()).actions
    assert [a.name for a in after] == ["appoint", "object"]
    assert "party_rep:PCC" not in next(a for a in after if a.name == "object").roles  # a former party objects no more


def test_a_former_party_does_not_sign_an_open_agreement_and_is_no_longer_awaited(
    app: CaseService, clock: Clock
) -> None:
    ref = app.propose_agreement(
        actor=CY, fields={"effective": "2027-12-31", "agreement_ref": "END/1"}, command_id=cid()
    ).reference
    assert app.state(ref).details["awaiting"] == ["PCC", "CPCCG"]
    pcc_leaves(app, clock)
    refused(app, lambda: app.act(ref, actor=PAT, action="agree", fields={}, command_id=cid()))
    assert app.state(ref).details["awaiting"] == ["CPCCG"]
    assert app.act(ref, actor=GIL, action="agree", fields={}, command_id=cid()).status == "in_force"


def test_once_the_partnership_has_ended_no_party_takes_part(app: CaseService, clock: Clock) -> None:
    ref = app.propose_agreement(
        actor=CY, fields={"effective": "2026-11-24", "agreement_ref": "END/1"}, command_id=cid()
    ).reference
    app.act(ref, actor=PAT, action="agree", fields={}, command_id=cid())
    assert app.act(ref, actor=GIL, action="agree", fields={}, command_id=cid()).status == "took_effect"
    stored = app.max_notification_id()
    with pytest.raises(FormerPartyError, match=f"the partnership ended on 2026-11-24 \\({ref}\\)"):
        proposal(app, ["CCC", "CPCCG"])
    assert app.max_notification_id() == stored


def test_an_open_proposal_reaching_the_parties_bodies_asks_only_those_of_members(
    app: CaseService, clock: Clock
) -> None:
    ref = proposal(app, ["PCC", "CCC", "CPCCG"])  # started while PCC was a member
    at_programme_board = approve_through(app, ref, stop_at="programme_board")
    assert at_programme_board.stage == "programme_board"
    pcc_leaves(app, clock)
    forked = approve_through(app, ref, stop_at="ccc_decision")
    assert forked.stage == "ccc_decision,cmet"  # not pcc_decision: PCC takes no part
    assert approve_through(app, ref).status == "approved"
