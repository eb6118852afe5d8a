"""Events are forever: a v1 `Proposal.Withdrawn`, stored before the class gained `from_stage`, keeps
loading (through its upcaster) and its chain keeps verifying; new events are stored as v2."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.audit import Auditor
from domain.case import case_id

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "proposal_withdrawn_v1.json").read_text())
AUDREY, LEAD = Actor.parse("auditor:audrey"), Actor.parse("jcu_lead:jo")


def test_a_stored_v1_event_keeps_loading_and_verifying(settings: Settings) -> None:
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
    assert "class_version" not in FIXTURE["events"][1]["state"]  # it really is a v1 event
    state = app.state("PRO-2026-0001")
    assert (state.status, state.title) == ("withdrawn", "School nursing pathway")
    withdrawn = app.history("PRO-2026-0001", actor=AUDREY)[1]
    assert withdrawn.changes["from_stage"] == ""
    assert withdrawn.changes["note"] == "Superseded by the 0-19 review"
    assert Auditor(app).verify("PRO-2026-0001")[1] == []


def test_a_new_withdrawal_is_stored_as_v2_with_its_stage(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    ref = app.start_proposal(
        actor=LEAD, command_id="s", title="t", kind="procurement", value_pence=1, parties=["PCC"], public_health=False
    ).reference
    app.withdraw(ref, actor=LEAD, command_id="w")
    stored = list(app.recorder.select_events(case_id(ref)))[-1]
    assert json.loads(stored.state)["class_version"] == 2
    assert app.history(ref, actor=AUDREY)[-1].changes["from_stage"] == "jcu"
    assert Auditor(app).verify(ref)[1] == []
