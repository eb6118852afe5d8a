"""The councils' procedure is on in the shipped policy (issue 16's "Why": a board decision was accepted
on any day with any minutes reference). Under `domain/governance.toml` as shipped: the board decides
at a meeting or by written procedure, never on a claim of minutes alone; a council body's key decision
waits on the forward plan; and a council body's decision is held for call-in. The rules themselves are
tested in test_meetings.py, test_forward_plan.py and test_call_in.py; these tests fail if the shipped
file turns them off."""

from __future__ import annotations

import pytest

from domain.application import CaseService
from domain.forward_plan import KeyDecisionNoticeError
from domain.meeting import MeetingRequiredError
from domain.policy import Policy
from tests.domain.support import DAN, PAT, PCC_SEC, SAM, T0, decide, start


@pytest.fixture
def app() -> CaseService:
    return CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=Policy.load(), clock=lambda: T0)


def at_pcc(app: CaseService, value_pence: int) -> str:
    ref = start(app, kind="service_commissioning", value_pence=value_pence, parties=["PCC"]).reference
    decide(app, ref, DAN, "jcu", "refer")
    decide(app, ref, SAM, "board", "recommend", written_procedure=True)
    decide(app, ref, PAT, "programme_board", "recommend")
    return ref


def test_a_board_decision_with_minutes_but_no_meeting_is_refused(app: CaseService) -> None:
    ref = start(app).reference
    decide(app, ref, DAN, "jcu", "refer")
    with pytest.raises(MeetingRequiredError, match="a decision of board is taken at one of its meetings"):
        decide(app, ref, SAM, "board", "recommend", minutes_ref="BRD-2026-12")
    assert app.state(ref).stage == "board"  # nothing written


def test_a_board_decision_by_written_procedure_is_marked_so(app: CaseService) -> None:
    ref = start(app).reference
    decide(app, ref, DAN, "jcu", "refer")
    decide(app, ref, SAM, "board", "recommend", written_procedure=True)
    assert app.state(ref).details["decisions"][-1]["meeting"] == {"written_procedure": True}


def test_a_key_decision_of_a_council_waits_for_the_forward_plan(app: CaseService) -> None:
    ref = at_pcc(app, value_pence=60_000_000)  # £600,000: at least the key-decision threshold
    with pytest.raises(KeyDecisionNoticeError, match="publish it on the forward plan"):
        decide(app, ref, PCC_SEC, "pcc_decision", "approve")
    assert app.state(ref).stage == "pcc_decision"


def test_a_council_decision_is_held_for_call_in(app: CaseService) -> None:
    ref = at_pcc(app, value_pence=30_000_000)  # below the threshold: not key, but may be called in
    state = decide(app, ref, PCC_SEC, "pcc_decision", "approve")
    assert (state.status, state.stage) == ("open", "pcc_decision")
    assert "call_in" in state.awaiting[0]
