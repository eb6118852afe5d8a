"""`actions_for`: what the API and the pages offer a signed-in person on a case. A decision the
policy's separation of duties would refuse them is not offered (the domain still refuses it)."""

from __future__ import annotations

from concordat.commands import actions_for
from domain.application import CaseService
from domain.identity import Identity
from domain.policy import Policy
from tests.domain.support import DAN, SAM, T0, decide, start


def test_a_decision_separation_of_duties_would_refuse_is_not_offered() -> None:
    app = CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=Policy.load(), clock=lambda: T0)
    ref = start(app, value_pence=30_000_000).reference
    decide(app, ref, DAN, "jcu", "refer")
    decide(app, ref, SAM, "board", "recommend", written_procedure=True)  # the board decides at meetings
    state = app.state(ref)
    offered = [("decide", "programme_board", "secretary:programme_board")]
    pat = Identity(user_id="pat", roles=("secretary:programme_board",))
    assert [(a["action"], a["stage"], a["role"]) for a in actions_for(state, pat)] == offered
    # Sam recorded the board's decision: holding the Programme Board's role too, Sam is offered nothing.
    sam = Identity(user_id="sam", roles=("secretary:board", "secretary:programme_board"))
    assert actions_for(state, sam) == []
    # Jo started the case: offered the withdrawal (no decision), not the Programme Board's decision.
    jo = Identity(user_id="jo", roles=("jcu_lead", "secretary:programme_board"))
    assert [(a["action"], a["role"]) for a in actions_for(state, jo)] == [("withdraw", "jcu_lead")]
