"""Decision notices and call-in (MOU Schedule 1 1(c): the Councils' "scrutiny" process): a decision of
a council body subject to call-in is published and held; it takes effect when 5 clear working days
pass without a call-in, and a call-in by 2 scrutiny members sends it to the council's scrutiny forum,
which refers it back or lets it stand. (The workflow's durable timer: tests/workflows/test_call_in.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.actor import Actor
from domain.application import CaseService
from domain.errors import DeadlineNotReachedError, InvalidInputError, NotAllowedError, WrongStageError
from domain.policy import Policy
from tests.domain.support import DAN, PAT, PCC_SEC, SAM, T0, cid, decide, start
from tests.policies import WITHOUT_COUNCIL_PROCEDURE

SCRUTINY = Actor.parse("secretary:pcc_scrutiny:sue")
# Tue 24 Nov 2026 + 5 clear working days (25, 26, 27, 30 Nov, 1 Dec): close of business on 1 December.
UNTIL = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


def call_in_policy() -> Policy:
    """Call-in of PCC's decisions, and no other council procedure."""
    base = WITHOUT_COUNCIL_PROCEDURE
    assert base.call_in is not None
    return base.model_copy(update={"call_in": base.call_in.model_copy(update={"forums": ["pcc_decision"]})})


@pytest.fixture
def app() -> CaseService:
    return CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=call_in_policy(), clock=lambda: T0)


def decided_by_pcc(app: CaseService) -> str:
    ref = start(app, kind="service_commissioning", value_pence=30_000_000, parties=["PCC"]).reference
    decide(app, ref, DAN, "jcu", "refer")
    decide(app, ref, SAM, "board", "recommend")
    decide(app, ref, PAT, "programme_board", "recommend")
    decide(app, ref, PCC_SEC, "pcc_decision", "approve")
    return ref


def call_in(app: CaseService, ref: str, members: list[str], reason: str = "the consultation was too short"):
    fields = {"stage": "pcc_decision", "members": members, "reason": reason}
    return app.act(ref, actor=SCRUTINY, action="call_in", fields=fields, command_id=cid())


def test_a_council_decision_is_held_and_takes_effect_when_the_call_in_period_ends(app: CaseService) -> None:
    ref = decided_by_pcc(app)
    state = app.state(ref)
    assert (state.status, state.stage) == ("open", "pcc_decision")
    assert state.awaiting[0]["call_in"]["until"] == UNTIL.isoformat()
    timer = next(t for t in state.timers if t.name.startswith("callin:"))
    assert timer.at == UNTIL
    with pytest.raises(DeadlineNotReachedError):
        app.fire_timer(ref, timer=timer.name, command_id=cid(), at=UNTIL - timedelta(minutes=1))
    done = app.fire_timer(ref, timer=timer.name, command_id=cid(), at=UNTIL)
    assert done.status == "approved"
    assert app.state(ref).details["decisions"][-1]["took_effect"]["how"] == "call_in_period_ended"


def test_the_decision_maker_cannot_decide_again_while_its_decision_is_held(app: CaseService) -> None:
    ref = decided_by_pcc(app)
    with pytest.raises(WrongStageError, match="takes effect when its call-in period ends"):
        decide(app, ref, PCC_SEC, "pcc_decision", "reject")


def test_a_call_in_needs_the_policys_number_of_scrutiny_members(app: CaseService) -> None:
    ref = decided_by_pcc(app)
    with pytest.raises(InvalidInputError, match="needs 2 scrutiny members; named: cllr_a"):
        call_in(app, ref, ["cllr_a", "cllr_a"])
    with pytest.raises(NotAllowedError):
        app.act(
            ref,
            actor=PCC_SEC,
            action="call_in",
            fields={"stage": "pcc_decision", "members": ["a", "b"], "reason": "r"},
            command_id=cid(),
        )


def test_a_call_in_pauses_the_decision_and_scrutiny_may_let_it_stand(app: CaseService) -> None:
    ref = decided_by_pcc(app)
    state = call_in(app, ref, ["cllr_a", "cllr_b"])
    assert not [t for t in state.timers if t.name.startswith("callin:")]
    assert [(a.name, a.roles, a.outcomes) for a in state.actions if a.stage == "pcc_decision"] == [
        ("decide", ["secretary:pcc_scrutiny"], ["refer_back", "let_stand"])
    ]
    done = app.decide(ref, actor=SCRUTINY, stage="pcc_decision", outcome="let_stand", command_id=cid())
    assert done.status == "approved"
    assert app.state(ref).details["decisions"][-1]["took_effect"]["how"] == "let_stand"


def test_scrutiny_may_refer_the_decision_back_to_the_decision_maker(app: CaseService) -> None:
    ref = decided_by_pcc(app)
    call_in(app, ref, ["cllr_a", "cllr_b"])
    back = app.decide(ref, actor=SCRUTINY, stage="pcc_decision", outcome="refer_back", command_id=cid())
    assert (back.status, back.stage) == ("open", "pcc_decision")
    assert back.awaiting[0]["call_in"] is None
    assert [a.roles for a in back.actions if a.stage == "pcc_decision"] == [["secretary:pcc_decision"]]


def test_no_call_in_after_the_period_has_ended(app: CaseService) -> None:
    ref = decided_by_pcc(app)
    with pytest.raises(DeadlineNotReachedError, match="call-in period .* ended"):
        app.act(
            ref,
            actor=SCRUTINY,
            action="call_in",
            fields={"stage": "pcc_decision", "members": ["a", "b"], "reason": "late"},
            command_id=cid(),
            at=UNTIL,
        )


def test_without_call_in_rules_a_council_decision_takes_effect_at_once() -> None:
    app = CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=WITHOUT_COUNCIL_PROCEDURE, clock=lambda: T0)
    ref = start(app, kind="service_commissioning", value_pence=30_000_000, parties=["PCC"]).reference
    decide(app, ref, DAN, "jcu", "refer")
    decide(app, ref, SAM, "board", "recommend")
    decide(app, ref, PAT, "programme_board", "recommend")
    assert decide(app, ref, PCC_SEC, "pcc_decision", "approve").status == "approved"
