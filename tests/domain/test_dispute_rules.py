"""Disputes (MOU, Governance; governance.md, "Dispute"), through the real application service."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.actor import Actor
from domain.application import CaseService
from domain.dispute import split_cost
from domain.errors import (
    CaseClosedError,
    CaseNotFoundError,
    DeadlineNotReachedError,
    InvalidInputError,
    NotAllowedError,
    NotAPartyError,
    WrongStageError,
)
from tests.domain.support import AUDREY, DAN, cid
from tests.people import ensure

PAT = Actor.parse("party_rep:PCC:pat")
CY = Actor.parse("party_rep:CCC:cy")
GIL = Actor.parse("party_rep:CPCCG:gil")
MO = Actor.parse("mediator:mo")
ORDER = ["PCC", "CCC", "CPCCG"]


def raise_(app: CaseService, **fields: object):
    values = {"against": ["CCC"], "subject": "Share of the speech therapy overspend", **fields}
    return app.raise_dispute(actor=PAT, fields=values, command_id=cid())


def act(app: CaseService, ref: str, actor: Actor, action: str, **fields: object):
    return app.act(ref, actor=actor, action=action, fields=fields, command_id=cid())


def to_mediation(app: CaseService, **fields: object) -> str:
    ensure(app, "mediator:mo")  # a person of the directory, holding the mediator role
    ref = raise_(app, **fields).reference
    act(app, ref, DAN, "resolve", outcome="mediation", note="Needs an independent view")
    act(app, ref, DAN, "nominate", mediator="mo")
    return ref


def test_a_party_raises_a_dispute_which_waits_on_the_director(app: CaseService) -> None:
    d = raise_(app, description="Disagreement about the split", linked_case=None)
    assert d.reference == "DSP-2026-0001"
    assert (d.stage, d.status) == ("director", "open")
    assert d.details["parties"] == ["PCC", "CCC"]
    assert [a.name for a in d.actions] == ["resolve"] and d.actions[0].roles == ["lead_director"]
    assert [t.name for t in d.timers] == ["remind:1", "escalate:1"]


@pytest.mark.parametrize(
    ("actor", "fields", "error", "message"),
    [
        (DAN, {}, NotAllowedError, "a party_rep:<party> raises it"),
        (PAT, {"against": ["PCC"]}, InvalidInputError, "against itself"),
        (PAT, {"against": ["NHS"]}, InvalidInputError, "--against 'NHS': not members"),
        (PAT, {"against": []}, InvalidInputError, "against"),
        (PAT, {"subject": ""}, InvalidInputError, "subject"),
        (PAT, {"linked_case": "PRO-2026-0404"}, CaseNotFoundError, "linked case"),
    ],
)
def test_a_malformed_dispute_is_refused_and_writes_nothing(app: CaseService, actor, fields, error, message) -> None:
    values = {"against": ["CCC"], "subject": "s", **fields}
    with pytest.raises(error, match=message):
        app.raise_dispute(actor=actor, fields=values, command_id=cid())
    assert app.max_notification_id() == 0


def test_the_director_may_resolve_it_or_decide_no_mediation(app: CaseService) -> None:
    done = act(app, raise_(app).reference, DAN, "resolve", outcome="resolved", note="Agreed a split")
    assert done.status == "resolved" and done.actions == [] and done.timers == []
    assert act(app, raise_(app).reference, DAN, "resolve", outcome="no_mediation").status == "not_mediated"
    with pytest.raises(NotAllowedError, match="allowed: lead_director"):
        act(app, raise_(app).reference, PAT, "resolve", outcome="resolved")


def test_every_party_must_agree_to_the_nominee_before_the_appointment(app: CaseService) -> None:
    ref = to_mediation(app, against=["CCC", "CPCCG"])
    act(app, ref, PAT, "agree")
    with pytest.raises(WrongStageError, match="appoint is not possible now"):
        act(app, ref, DAN, "appoint", letter_ref="JCU/MED/1")
    act(app, ref, CY, "agree")
    with pytest.raises(NotAPartyError, match="waiting: CPCCG"):
        act(app, ref, CY, "agree")
    s = act(app, ref, GIL, "agree")
    assert [a.name for a in s.actions] == ["appoint", "object"]  # a party may still object until appointed


def test_a_refusal_sends_it_back_to_nomination(app: CaseService) -> None:
    ref = to_mediation(app)
    act(app, ref, PAT, "agree")
    s = act(app, ref, CY, "refuse", note="Not independent of PCC")
    assert (s.details["nominee"], s.details["agreed"]) == (None, [])
    assert [a.name for a in s.actions] == ["nominate"]


def test_the_appointment_is_in_writing(app: CaseService) -> None:
    ref = to_mediation(app)
    act(app, ref, PAT, "agree")
    act(app, ref, CY, "agree")
    with pytest.raises(InvalidInputError, match="letter-ref"):
        act(app, ref, DAN, "appoint", letter_ref="")
    s = act(app, ref, DAN, "appoint", letter_ref="JCU/MED/2026/01")
    assert (s.stage, s.details["mediator"], s.details["letter_ref"]) == ("mediation", "mo", "JCU/MED/2026/01")


def test_only_the_appointed_mediator_records_binding_findings_and_costs_split_equally(app: CaseService) -> None:
    ref = to_mediation(app, against=["CCC", "CPCCG"])
    for party in (PAT, CY, GIL):
        act(app, ref, party, "agree")
    act(app, ref, DAN, "appoint", letter_ref="L1")
    with pytest.raises(NotAllowedError, match=r"only the appointed mediator \(mo\)"):
        act(app, ref, Actor.parse("mediator:someone"), "findings", findings="x", cost_pence=100)
    s = act(app, ref, MO, "findings", findings="CCC bears 60% of the overspend", cost_pence=100_001)
    assert s.status == "findings_recorded"
    assert (s.stage, s.deadline, s.actions, s.timers) == ("", None, [], [])  # findings close the mediation
    assert s.details["binding"] is True
    assert s.details["cost_shares"] == {"PCC": 33_334, "CCC": 33_334, "CPCCG": 33_333}
    with pytest.raises(CaseClosedError):
        act(app, ref, MO, "findings", findings="again", cost_pence=1)


def test_a_missed_stage_deadline_is_escalated_after_a_reminder(app: CaseService) -> None:
    d = raise_(app)
    with pytest.raises(DeadlineNotReachedError):
        app.fire_timer(d.reference, timer="escalate:1", command_id=cid(), at=d.deadline.replace(year=2026, day=1))
    app.fire_timer(d.reference, timer="remind:1", command_id=cid(), at=d.timers[0].at)
    e = app.fire_timer(d.reference, timer="escalate:1", command_id=cid(), at=d.deadline)
    assert e.details["escalated_to"] == "programme_board"
    assert [h.event for h in app.history(d.reference, actor=AUDREY)] == ["Raised", "ReminderSent", "Escalated"]
    assert [a.name for a in e.actions] == ["resolve", "extend"]  # the director can still act
    assert e.timers == []


def test_the_escalation_forum_may_give_an_escalated_dispute_a_new_deadline(app: CaseService) -> None:
    d = raise_(app)
    e = app.fire_timer(d.reference, timer="escalate:1", command_id=cid(), at=d.deadline)
    with pytest.raises(NotAllowedError, match="allowed: secretary:programme_board"):
        app.act(d.reference, actor=DAN, action="extend", fields={}, command_id=cid())
    pat = Actor.parse("secretary:programme_board:pat")
    with pytest.raises(InvalidInputError, match="is not after today"):
        app.act(d.reference, actor=pat, action="extend", fields={"new_deadline": "2026-01-01"}, command_id=cid())
    x = app.act(
        d.reference,
        actor=pat,
        action="extend",
        fields={"new_deadline": "2027-02-26", "note": "board due"},
        command_id=cid(),
    )
    assert (x.stage, x.details["escalated_to"]) == (e.stage, None)
    assert x.deadline == datetime(2027, 2, 26, 17, 0, tzinfo=UTC)
    assert [t.name.split(":")[0] for t in x.timers] == ["remind", "escalate"]  # the clock runs again
    assert [a.name for a in x.actions] == ["resolve"]


def test_an_unknown_action_or_field_is_refused_in_one_line(app: CaseService) -> None:
    ref = raise_(app).reference
    with pytest.raises(InvalidInputError, match="takes no 'decide'; it takes: resolve, nominate"):
        act(app, ref, DAN, "decide", outcome="x")
    with pytest.raises(InvalidInputError, match="outcome: Input should be 'resolved', 'mediation' or 'no_mediation'"):
        act(app, ref, DAN, "resolve", outcome="maybe")


@given(total=st.integers(0, 10**12), parties=st.integers(1, 3))
def test_a_cost_split_differs_by_at_most_a_penny_and_sums_to_the_total(total: int, parties: int) -> None:
    shares = split_cost(total, ORDER[:parties], ORDER)
    assert sum(shares.values()) == total
    assert max(shares.values()) - min(shares.values()) <= 1
    # The remainder falls to the earliest parties in the partnership's order.
    assert list(shares.values()) == sorted(shares.values(), reverse=True)


@given(
    total=st.integers(0, 10**9), parties=st.lists(st.text(min_size=1, max_size=3), min_size=1, max_size=12, unique=True)
)
def test_the_split_holds_for_any_number_of_parties(total: int, parties: list[str]) -> None:
    shares = split_cost(total, parties, parties)
    assert sum(shares.values()) == total
    assert max(shares.values()) - min(shares.values()) <= 1
