"""The activities' answer to the workflow (`case_state`) takes the fields the workflow waits on
from the domain's view one by one, without copying the case's details and decision history."""

from __future__ import annotations

from dataclasses import asdict

from domain.application import CaseService
from tests.domain.support import DAN, SAM, T0, decide, start
from tests.policies import WITHOUT_COUNCIL_PROCEDURE
from workers.activities import case_state
from workflows.contracts import CaseState


def test_the_workflow_gets_the_same_state_as_from_the_whole_view() -> None:
    app = CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=WITHOUT_COUNCIL_PROCEDURE, clock=lambda: T0)
    ref = start(app, value_pence=30_000_000).reference
    decide(app, ref, DAN, "jcu", "refer")
    answer = decide(app, ref, SAM, "board", "defer")
    for view in (answer, app.state(ref)):
        got = case_state(view)
        assert got == CaseState.model_validate(asdict(view))
        assert got.actions and got.timers and got.stage == "board" and got.version == view.version
