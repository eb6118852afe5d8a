"""Contract variations (ToR 2.9; MOU, Contract Management; governance.md, "Contract variation")."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from domain.actor import Actor
from domain.application import CaseService
from domain.errors import (
    CaseNotFoundError,
    ChiefExecutiveNotInformedError,
    InvalidInputError,
    NotAllowedError,
    OutcomeNotAllowedError,
)
from tests.domain.support import (
    AUDREY,
    CAT,
    DAN,
    GUS,
    LEAD,
    MINUTES,
    PAT,
    PCC_SEC,
    PHIL,
    SAM,
    cid,
    deciders,
    open_agreed_fund,
)


def start(app: CaseService, **fields: object):
    values = {
        "provider": "Hinchingbrooke Health Care",
        "contract_ref": "NHS-SC-2025-014",
        "reason": "performance_review",
        "value_change_pence": -5_000_000,
        "parties": ["PCC", "CCC"],
        "effective_on": "2027-04-01",
        **fields,
    }
    return app.start_variation(actor=LEAD, fields=values, command_id=cid())


def decide(app: CaseService, ref: str, actor: Actor, stage: str, outcome: str):
    fields = {"stage": stage, "outcome": outcome, "minutes_ref": MINUTES}
    return app.act(ref, actor=actor, action="decide", fields=fields, command_id=cid())


def test_a_small_variation_runs_jcu_board_jcu_provider_then_takes_effect(app: CaseService) -> None:
    v = start(app)
    assert (v.reference, v.stage) == ("VAR-2026-0001", "jcu")
    decide(app, v.reference, DAN, "jcu", "refer")
    s = decide(app, v.reference, SAM, "board", "recommend")  # ToR 2.9: the board recommends, never approves
    assert s.stage == "jcu_decision"  # within delegated authority the JCU decides on it
    s = decide(app, v.reference, DAN, "jcu_decision", "approve")
    assert s.stage == "provider" and deciders(s, "provider") == ["jcu_lead"]
    agreed = decide(app, v.reference, LEAD, "provider", "accepted")
    assert agreed.status == "agreed" and [t.name for t in agreed.timers] == ["effective"]
    done = app.fire_timer(v.reference, timer="effective", command_id=cid(), at=agreed.timers[0].at)
    assert done.status == "effective"


def test_the_board_cannot_approve_a_variation(app: CaseService) -> None:
    v = start(app)
    decide(app, v.reference, DAN, "jcu", "refer")
    with pytest.raises(OutcomeNotAllowedError, match="allowed: recommend, reject, defer"):
        decide(app, v.reference, SAM, "board", "approve")


def test_beyond_authority_each_partys_body_decides_before_the_provider(app: CaseService) -> None:
    v = start(app, value_change_pence=-30_000_000, parties=["PCC", "CPCCG"])
    decide(app, v.reference, DAN, "jcu", "refer")
    assert decide(app, v.reference, SAM, "board", "recommend").stage == "programme_board"
    assert decide(app, v.reference, PAT, "programme_board", "recommend").stage == "pcc_decision,cmet"
    assert decide(app, v.reference, CAT, "cmet", "recommend_approval").stage == "pcc_decision,governing_body"
    assert decide(app, v.reference, GUS, "governing_body", "approve").stage == "pcc_decision"
    assert decide(app, v.reference, PCC_SEC, "pcc_decision", "approve").stage == "provider"


def test_public_health_signs_off_where_its_money_is_in_the_contract(app: CaseService) -> None:
    v = start(app, public_health=True)
    decide(app, v.reference, DAN, "jcu", "refer")
    decide(app, v.reference, SAM, "board", "recommend")
    assert decide(app, v.reference, DAN, "jcu_decision", "approve").stage == "public_health"
    assert decide(app, v.reference, PHIL, "public_health", "sign_off").stage == "provider"


def test_a_contract_drawing_on_a_ring_fenced_fund_is_signed_off_by_public_health_with_no_tick_box(
    app: CaseService,
) -> None:
    open_agreed_fund(app, "Healthy Child", ring_fenced=True, contributions={"PCC": 1_000_000})
    open_agreed_fund(app, "Aligned", balance=1_000_000)
    v = start(app, funds=["Aligned", "Healthy Child"])  # its funding lines, no --public-health
    assert v.details["public_health"] is True
    assert v.details["funding_lines"] == [
        {"fund": "Aligned", "ring_fenced": False},
        {"fund": "Healthy Child", "ring_fenced": True},
    ]
    decide(app, v.reference, DAN, "jcu", "refer")
    decide(app, v.reference, SAM, "board", "recommend")
    assert decide(app, v.reference, DAN, "jcu_decision", "approve").stage == "public_health"


def test_a_public_health_flag_that_disagrees_with_the_contracts_funding_lines_is_refused(app: CaseService) -> None:
    open_agreed_fund(app, "Healthy Child", ring_fenced=True, contributions={"PCC": 1_000_000})
    open_agreed_fund(app, "Aligned", balance=1_000_000)
    with pytest.raises(InvalidInputError, match=r"draws on ring-fenced public-health money \(Healthy Child\)"):
        start(app, funds=["Healthy Child"], public_health=False)
    with pytest.raises(InvalidInputError, match="draws on no ring-fenced money"):
        start(app, funds=["Aligned"], public_health=True)
    with pytest.raises(CaseNotFoundError, match="no fund is named 'Nope'"):
        start(app, funds=["Nope"])
    assert list(app.references(("VAR",))) == []
    assert start(app, funds=["Aligned"]).details["public_health"] is False
    assert start(app, public_health=True).details["public_health"] is True  # no funding lines: the flag decides


def test_a_lever_cannot_reach_the_provider_before_the_chief_executive_is_informed(app: CaseService) -> None:
    v = start(app, reason="contract_performance_notice")
    assert "inform_chief_executive" in [a.name for a in v.actions]
    decide(app, v.reference, DAN, "jcu", "refer")
    decide(app, v.reference, SAM, "board", "recommend")
    before = app.max_notification_id()
    with pytest.raises(
        ChiefExecutiveNotInformedError, match="cannot go to provider yet: .*Chief Executive was informed"
    ):
        decide(app, v.reference, DAN, "jcu_decision", "approve")
    assert app.max_notification_id() == before
    with pytest.raises(NotAllowedError, match="allowed: lead_director"):
        app.act(v.reference, actor=SAM, action="inform_chief_executive", fields={}, command_id=cid())
    app.act(
        v.reference, actor=DAN, action="inform_chief_executive", fields={"note": "Briefed by phone"}, command_id=cid()
    )
    assert decide(app, v.reference, DAN, "jcu_decision", "approve").stage == "provider"


def test_the_provider_may_reject(app: CaseService) -> None:
    v = start(app)
    decide(app, v.reference, DAN, "jcu", "refer")
    decide(app, v.reference, SAM, "board", "recommend")
    decide(app, v.reference, DAN, "jcu_decision", "approve")
    with pytest.raises(OutcomeNotAllowedError, match="allowed: accepted, rejected"):
        decide(app, v.reference, LEAD, "provider", "maybe")
    assert decide(app, v.reference, LEAD, "provider", "rejected").status == "provider_rejected"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"reason": "whim"}, "reason 'whim' is not known"),
        ({"parties": ["NHS"]}, "parties NHS not known"),
        ({"effective_on": "2026-11-24"}, "must be after today"),
        ({"provider": ""}, "provider"),
    ],
)
def test_a_malformed_variation_is_refused_and_writes_nothing(app: CaseService, fields: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        start(app, **fields)
    assert app.max_notification_id() == 0


def test_a_missed_deadline_is_reminded_then_escalated(app: CaseService) -> None:
    v = start(app)
    app.fire_timer(v.reference, timer="remind:1", command_id=cid(), at=v.timers[0].at)
    e = app.fire_timer(v.reference, timer="escalate:1", command_id=cid(), at=v.deadline + timedelta(seconds=1))
    assert e.details["escalated_to"] == "programme_board"
    assert [h.event for h in app.history(v.reference, actor=AUDREY)] == ["Started", "ReminderSent", "Escalated"]
    # Escalation is actionable for a variation too: the Programme Board extends the deadline.
    x = app.decide(
        v.reference,
        actor=PAT,
        stage="jcu",
        outcome="extend",
        new_deadline=date(2027, 2, 1),
        minutes_ref=MINUTES,
        command_id=cid(),
    )
    assert x.details["escalated_to"] is None and x.deadline == datetime(2027, 2, 1, 17, 0, tzinfo=UTC)
