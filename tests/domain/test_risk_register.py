"""The risk register (domain/risk.py): each risk an aggregate whose every change is an event; kept by
the JCU lead, the Lead Director and the board's secretary (and a risk's owner); the risk review
schedule's case lists the open risks due."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.actor import Actor
from domain.application import CaseService
from domain.cycles import scheduled_command_id
from domain.errors import CaseClosedError, InvalidInputError, NotAllowedError
from domain.policy import Policy
from tests.domain.support import cid

TODAY = datetime(2027, 1, 5, 10, 0, tzinfo=UTC)
JO = Actor.parse("jcu_lead:jo")
CY = Actor.parse("party_rep:CCC:cy")
AUDITOR = Actor.parse("auditor:audrey")


@pytest.fixture
def app(policy: Policy) -> CaseService:
    return CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=policy, clock=lambda: TODAY)


def add(app: CaseService, actor: Actor = JO, **fields: object) -> str:
    values = {
        "title": "Provider capacity",
        "owner": "jcu_lead",
        "likelihood": 3,
        "impact": 4,
        "review_on": "2027-02-01",
    }
    return app.add_risk(actor=actor, fields={**values, **fields}, command_id=cid()).reference


def test_every_change_to_a_risk_is_an_event_on_its_record(app: CaseService) -> None:
    ref = add(app, mitigations=["Second provider framework"])
    assert ref.startswith("RSK-")
    app.act(ref, actor=JO, action="update", fields={"likelihood": 4, "note": "Waiting lists grew"}, command_id=cid())
    app.act(ref, actor=JO, action="review", fields={"note": "Held", "next_review_on": "2027-04-01"}, command_id=cid())
    app.act(ref, actor=JO, action="close", fields={"reason": "New contract let"}, command_id=cid())
    assert [h.event for h in app.history(ref, actor=AUDITOR)] == ["Added", "Updated", "Reviewed", "Closed"]
    row = app.state(ref).details
    assert row["score"] == 16 and row["review_on"] == "2027-04-01" and row["status"] == "closed"
    with pytest.raises(CaseClosedError):
        app.act(ref, actor=JO, action="update", fields={"impact": 1}, command_id=cid())


def test_only_the_registers_keepers_and_a_risks_owner_change_it_and_bad_input_is_named(app: CaseService) -> None:
    with pytest.raises(NotAllowedError, match="may not change the risk register"):
        add(app, actor=CY)
    with pytest.raises(InvalidInputError):
        add(app, likelihood=6)
    with pytest.raises(InvalidInputError, match="is not a role"):
        add(app, owner="chief_exec")
    with pytest.raises(InvalidInputError, match="in the past"):
        add(app, review_on="2026-12-01")
    ref = add(app, owner="party_rep:CCC")
    app.act(ref, actor=CY, action="update", fields={"impact": 2}, command_id=cid())  # the owner may
    assert app.state(ref).details["score"] == 6


def test_the_register_is_highest_score_first_and_the_risk_review_lists_those_due(app: CaseService) -> None:
    low = add(app, likelihood=1, impact=2, review_on="2027-01-20")
    high = add(app, likelihood=5, impact=5, review_on="2027-01-10")
    later = add(app, likelihood=4, impact=4, review_on="2027-06-01")
    assert [r["reference"] for r in app.risk_register(actor=AUDITOR)] == [high, later, low]
    fired = datetime(2027, 1, 6, 9, 0, tzinfo=UTC)
    case = app.open_scheduled(
        schedule="risk_review", scheduled_at=fired, figures=dict, command_id=scheduled_command_id("risk_review", fired)
    )
    assert case.reference.startswith("REV-")
    assert [r["reference"] for r in case.details["figures"]["risks_due"]] == [high, low]
