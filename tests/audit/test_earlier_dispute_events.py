"""Events are forever: disputes recorded by the release before issue 14 load into today's engine,
verify against the head hashes recorded then, and carry on under today's rules. One had its mediator
nominated and appointed as `mediator:mo` (the form the field's description suggested then), so no one
could ever record its findings; it is read as the person `mo`, who now can. The other has binding
findings, and showed `stage mediation` then; it shows no stage now. The stored events are unchanged
(no upcast is needed: no event's shape changed, only what an old value means)."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.audit import Auditor
from tests.people import ensure

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "disputes_before_issue_14.json").read_text())
AUDREY = Actor.parse("auditor:audrey")


def loaded(settings: Settings) -> CaseService:
    app = bootstrap.open_cases(settings)
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=UUID(e["originator_id"]),
                originator_version=e["originator_version"],
                topic=e["topic"],
                state=e["state"].encode("utf-8"),
            )
            for e in FIXTURE["events"]
        ]
    )
    return app


def test_old_disputes_load_verify_and_close_their_stage(settings: Settings) -> None:
    app = loaded(settings)
    cases, then = FIXTURE["cases"], FIXTURE["states"]
    assert then["findings_recorded"]["stage"] == "mediation"  # as the earlier release showed it
    done = app.state(cases["findings_recorded"])
    assert (done.status, done.stage, done.version) == ("findings_recorded", "", then["findings_recorded"]["version"])
    assert then["stuck_mediator_form"]["mediator"] == "mediator:mo"
    stuck = app.state(cases["stuck_mediator_form"])
    assert (stuck.stage, stuck.details["mediator"]) == ("mediation", "mo")
    for ref in cases.values():
        history = app.history(ref, actor=AUDREY)
        assert history[-1].hash == FIXTURE["heads"][ref]  # hashed over what was stored, as then
        assert Auditor(app).verify(ref)[1] == [], ref


def test_a_dispute_stuck_on_a_mediator_named_by_role_carries_on(settings: Settings) -> None:
    app = loaded(settings)
    ref = FIXTURE["cases"]["stuck_mediator_form"]
    ensure(app, "mediator:mo")
    s = app.act(
        ref,
        actor=Actor.parse("mediator:mo"),
        action="findings",
        fields={"findings": "CCC bears 60%", "cost_pence": 1_001},
        command_id="after-1",
    )
    assert (s.status, s.stage, s.details["cost_shares"]) == ("findings_recorded", "", {"PCC": 501, "CCC": 500})
    assert Auditor(app).verify(ref)[1] == []  # the new event chains on to the old ones
