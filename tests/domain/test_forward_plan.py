"""Key decisions and the forward plan (the 2012 Executive Arrangements Regulations, regs 9-11): a
council executive's key decision waits 28 clear days on the published forward plan, unless the
general exception (5 clear days' notice to the chair of scrutiny) or special urgency (the chair's
agreement) is recorded, each with who and why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.actor import Actor
from domain.application import CaseService
from domain.errors import InvalidInputError, NotAllowedError
from domain.forward_plan import KeyDecisionNoticeError
from domain.forward_plans import ForwardPlanService
from domain.policy import Policy
from tests.domain.support import DAN, PAT, PCC_SEC, SAM, T0, cid, decide, start
from tests.domain.test_meetings import Clock
from tests.policies import WITHOUT_COUNCIL_PROCEDURE

KEY_VALUE = 60_000_000  # £600,000: at least the policy's £500,000


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


def key_policy() -> Policy:
    """The councils' bodies taking key decisions (as shipped), and no other council procedure."""
    base = WITHOUT_COUNCIL_PROCEDURE
    assert base.key_decisions is not None
    rules = base.key_decisions.model_copy(update={"forums": ["pcc_decision", "ccc_decision"]})
    return base.model_copy(update={"key_decisions": rules})


@pytest.fixture
def app(clock: Clock) -> CaseService:
    return CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=key_policy(), clock=clock)


def at_pcc(app: CaseService, value: int = KEY_VALUE) -> str:
    """A proposal for PCC alone, through the JCU, board and Programme Board to PCC's own body."""
    ref = start(app, value_pence=value, parties=["PCC"], kind="service_commissioning").reference
    decide(app, ref, DAN, "jcu", "refer")
    decide(app, ref, SAM, "board", "recommend")
    decide(app, ref, PAT, "programme_board", "recommend")
    assert app.state(ref).stage == "pcc_decision"
    return ref


def test_a_key_decision_is_refused_before_28_clear_days_on_the_forward_plan_and_taken_after(
    app: CaseService, clock: Clock
) -> None:
    plan = ForwardPlanService(app)
    ref = at_pcc(app)
    entry = plan.add(actor=PCC_SEC, case=ref, forum="pcc_decision", command_id=cid())  # Tue 24 Nov 2026
    assert (entry["key"], entry["published_on"]) == (True, "2026-11-24")
    clock.at = datetime(2026, 12, 22, 12, tzinfo=UTC)  # 27 clear days: 25 Nov … 21 Dec
    with pytest.raises(KeyDecisionNoticeError, match="may be taken from 2026-12-23 .28 clear days., not 2026-12-22"):
        decide(app, ref, PCC_SEC, "pcc_decision", "approve")
    assert app.state(ref).stage == "pcc_decision"
    clock.at = datetime(2026, 12, 23, 12, tzinfo=UTC)
    state = decide(app, ref, PCC_SEC, "pcc_decision", "approve")
    assert state.status == "approved"
    assert app.state(ref).details["decisions"][-1]["key_decision"] == {
        "key": True,
        "footing": "forward plan",
        "on_plan_since": "2026-11-24",
    }


def test_a_key_decision_not_on_the_forward_plan_is_refused(app: CaseService) -> None:
    ref = at_pcc(app)
    with pytest.raises(KeyDecisionNoticeError, match="publish it on the forward plan"):
        decide(app, ref, PCC_SEC, "pcc_decision", "approve")


def test_a_decision_under_the_threshold_without_significant_effect_is_not_key(app: CaseService) -> None:
    ref = at_pcc(app, value=40_000_000)
    assert decide(app, ref, PCC_SEC, "pcc_decision", "approve").status == "approved"


def test_a_significant_effect_on_communities_makes_a_smaller_decision_key(app: CaseService) -> None:
    ref = at_pcc(app, value=40_000_000)
    entry = ForwardPlanService(app).add(
        actor=PCC_SEC, case=ref, forum="pcc_decision", significant_effect=True, command_id=cid()
    )
    assert entry["key"] is True
    with pytest.raises(KeyDecisionNoticeError):
        decide(app, ref, PCC_SEC, "pcc_decision", "approve")


def test_the_general_exception_allows_the_decision_five_clear_days_after_notice_to_the_chair_of_scrutiny(
    app: CaseService, clock: Clock
) -> None:
    plan = ForwardPlanService(app)
    ref = at_pcc(app)
    plan.add(actor=PCC_SEC, case=ref, forum="pcc_decision", command_id=cid())
    given = plan.general_exception(
        actor=PCC_SEC,
        case=ref,
        forum="pcc_decision",
        notice_to="cllr_scrutiny_chair",
        reason="the provider's contract ends on 31 December",
        command_id=cid(),
    )
    assert given["general_exception"]["by"] == "secretary:pcc_decision:pia"
    clock.at = datetime(2026, 11, 29, 12, tzinfo=UTC)  # 25-28 Nov: 4 clear days; from Mon 30 Nov
    with pytest.raises(KeyDecisionNoticeError, match="from 2026-11-30"):
        decide(app, ref, PCC_SEC, "pcc_decision", "approve")
    clock.at = datetime(2026, 11, 30, 12, tzinfo=UTC)
    decide(app, ref, PCC_SEC, "pcc_decision", "approve")
    assert app.state(ref).details["decisions"][-1]["key_decision"]["footing"] == "general exception"


def test_special_urgency_with_the_chairs_agreement_allows_the_decision_at_once(app: CaseService) -> None:
    plan = ForwardPlanService(app)
    ref = at_pcc(app)
    plan.add(actor=PCC_SEC, case=ref, forum="pcc_decision", command_id=cid())
    with pytest.raises(InvalidInputError, match="names the chair who agreed it and why"):
        plan.special_urgency(actor=PCC_SEC, case=ref, forum="pcc_decision", agreed_by="", reason="", command_id=cid())
    plan.special_urgency(
        actor=PCC_SEC,
        case=ref,
        forum="pcc_decision",
        agreed_by="cllr_scrutiny_chair",
        reason="safeguarding: the service stops next week otherwise",
        command_id=cid(),
    )
    decide(app, ref, PCC_SEC, "pcc_decision", "approve")
    assert app.state(ref).details["decisions"][-1]["key_decision"]["footing"] == "special urgency"


def test_only_the_forums_secretary_keeps_its_forward_plan(app: CaseService) -> None:
    ref = at_pcc(app)
    with pytest.raises(NotAllowedError, match="secretary:pcc_decision does"):
        ForwardPlanService(app).add(
            actor=Actor.parse("secretary:ccc_decision:cal"), case=ref, forum="pcc_decision", command_id=cid()
        )


def test_the_public_forward_plan_leaves_out_exempt_entries(app: CaseService) -> None:
    plan = ForwardPlanService(app)
    shown, hidden = at_pcc(app), at_pcc(app)
    plan.add(actor=PCC_SEC, case=shown, forum="pcc_decision", command_id=cid())
    plan.add(actor=PCC_SEC, case=hidden, forum="pcc_decision", exempt=True, command_id=cid())
    assert [e["case"] for e in plan.entries(public=True)] == [shown]
    assert [e["case"] for e in plan.entries()] == [shown, hidden]
    assert plan.entries(public=True)[0]["earliest"] == "2026-12-23"
