"""The issue's "done when", as one story on the real application (in memory; the stores, the
workflow's timer and the pages have their own tests): the board's next meeting scheduled from the
policy, its agenda published with the cases awaiting it, a member with a declared interest refused on
that item, the meeting quorate and the decision recorded against it; PCC's key decision refused
before its 28 clear days on the forward plan and accepted after; the decision notice on the public
record; the call-in period passing and the decision taking effect; and in a second case a call-in
sending the decision to scrutiny."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from concordat.web.public import PublicRecord
from domain.actor import Actor
from domain.application import CaseService
from domain.forward_plan import KeyDecisionNoticeError
from domain.forward_plans import ForwardPlanService
from domain.meeting import DeclaredInterestError
from domain.meetings import MeetingService
from tests.domain.support import DAN, PAT, PCC_SEC, SAM, T0, cid, decide, start
from tests.domain.test_call_in import SCRUTINY, call_in_policy
from tests.domain.test_meetings import PRESENT, Clock


def scenario_policy():  # noqa: ANN201
    base = call_in_policy()
    board = base.meeting_rules["board"].model_copy(update={"decisions_at_meetings": True})
    assert base.key_decisions is not None
    key = base.key_decisions.model_copy(update={"forums": ["pcc_decision"]})
    return base.model_copy(update={"meeting_rules": {"board": board}, "key_decisions": key})


def test_meetings_key_decisions_notices_and_call_in_as_the_issue_tells_it() -> None:
    clock = Clock(T0)
    app = CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=scenario_policy(), clock=clock)
    meetings, plan, public = MeetingService(app), ForwardPlanService(app), PublicRecord(app)

    first = start(app, title="Community nursing", kind="service_commissioning", value_pence=60_000_000, parties=["PCC"])
    second = start(app, title="Therapy hub", kind="service_commissioning", value_pence=30_000_000, parties=["PCC"])
    for ref in (first.reference, second.reference):
        decide(app, ref, DAN, "jcu", "refer")

    # The board's next meeting, from the policy; the agenda with the cases awaiting the board.
    mtg = meetings.schedule(actor=SAM, forum="board", command_id=cid())
    assert (mtg["on"], mtg["called"]) == ("2027-01-12", False)
    agenda = meetings.publish_agenda(mtg["reference"], actor=SAM, command_id=cid())["agenda"]
    assert [i["case"] for i in agenda] == [first.reference, second.reference]

    # On the day: quorate, an interest declared and its member refused on that item.
    clock.at = datetime(2027, 1, 12, 10, tzinfo=UTC)
    meetings.open(mtg["reference"], actor=SAM, chair="cllr_ada", attendance=PRESENT, command_id=cid())
    meetings.declare_interest(mtg["reference"], actor=SAM, item=1, person="bob", nature="provider", command_id=cid())
    with pytest.raises(DeclaredInterestError):
        decide(
            app,
            first.reference,
            SAM,
            "board",
            "recommend",
            meeting=mtg["reference"],
            taking_part=["cllr_ada", "bob", "cy"],
        )
    for ref in (first.reference, second.reference):
        decide(app, ref, SAM, "board", "recommend", meeting=mtg["reference"])
        assert app.state(ref).details["decisions"][-1]["meeting"]["reference"] == mtg["reference"]
        decide(app, ref, PAT, "programme_board", "recommend")

    # PCC's key decision: on the forward plan from 12 January, so not before 10 February.
    plan.add(actor=PCC_SEC, case=first.reference, forum="pcc_decision", command_id=cid())
    clock.at = datetime(2027, 2, 9, 12, tzinfo=UTC)
    with pytest.raises(KeyDecisionNoticeError, match="from 2027-02-10"):
        decide(app, first.reference, PCC_SEC, "pcc_decision", "approve")
    clock.at = datetime(2027, 2, 10, 12, tzinfo=UTC)
    held = decide(app, first.reference, PCC_SEC, "pcc_decision", "approve")
    assert held.status == "open"
    decide(app, second.reference, PCC_SEC, "pcc_decision", "approve")

    # Both decision notices are on the public record, with their call-in periods.
    notices, register = public.decisions()
    assert {n["case"] for n in notices} == {first.reference, second.reference}
    assert {(r["case"], r["meeting"]) for r in register if r["forum"] == "board"} == {
        (first.reference, mtg["reference"]),
        (second.reference, mtg["reference"]),
    }

    # The second is called in by two scrutiny members, within its period.
    app.act(
        second.reference,
        actor=SCRUTINY,
        action="call_in",
        fields={"stage": "pcc_decision", "members": ["cllr_a", "cllr_b"], "reason": "no consultation"},
        command_id=cid(),
    )

    # The first's period passes (Wed 10 Feb + 5 clear working days: close of business Wed 17 Feb).
    timer = next(t for t in app.state(first.reference).timers if t.name.startswith("callin:"))
    assert timer.at == datetime(2027, 2, 17, 17, 0, tzinfo=UTC)
    assert app.fire_timer(first.reference, timer=timer.name, command_id=cid(), at=timer.at).status == "approved"

    # The second waits for scrutiny, which refers it back to PCC.
    assert not [t for t in app.state(second.reference).timers if t.name.startswith("callin:")]
    back = app.decide(
        second.reference,
        actor=SCRUTINY,
        stage="pcc_decision",
        outcome="refer_back",
        minutes_ref="SCR-1",
        command_id=cid(),
    )
    assert [a.roles for a in back.actions if a.stage == "pcc_decision"] == [
        [Actor.parse("secretary:pcc_decision:x").role]
    ]
