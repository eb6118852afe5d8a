"""Events are forever: cases recorded by the release before routes were data — every event shape it
wrote (a proposal's own Decided, Escalated, ReminderSent and DeadlineMissed; the staged kinds' Decided,
Escalated, ReminderSent and Withdrawn at version 1), with the policy file they started under — load
into today's engine unchanged, verify against the head hashes recorded then, and carry on under the
route they started with."""

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
from domain.case import case_id

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "release_2026_11_cases.json").read_text())
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


def test_every_old_event_shape_loads_as_it_stood_and_verifies(settings: Settings) -> None:
    app = loaded(settings)
    topics = {e["topic"] for e in FIXTURE["events"]}
    assert {
        "domain.proposal:Proposal.Decided",
        "domain.proposal:Proposal.Escalated",
        "domain.proposal:Proposal.ReminderSent",
        "domain.proposal:Proposal.DeadlineMissed",
        "domain.staged:StagedCase.Decided",
        "domain.staged:StagedCase.Escalated",
        "domain.staged:StagedCase.ReminderSent",
        "domain.staged:StagedCase.Withdrawn",
    } <= topics
    for name, ref in FIXTURE["cases"].items():
        state = app.state(ref)
        then = FIXTURE["states"][name]
        assert (state.stage, state.status, state.version, str(state.deadline)) == (
            then["stage"],
            then["status"],
            then["version"],
            then["deadline"],
        ), name
        history = app.history(ref, actor=AUDREY)
        assert history[-1].hash == FIXTURE["heads"][ref]  # hashed over what was stored, as then
        assert Auditor(app).verify(ref)[1] == [], name


def test_old_cases_carry_on_under_the_route_they_started_with(settings: Settings) -> None:
    app = loaded(settings)
    cases = FIXTURE["cases"]
    # The proposal was at CMET when the release changed: it goes on as it began (no councils' bodies).
    ref = cases["proposal"]
    s = app.decide(
        ref,
        actor=Actor.parse("secretary:cmet:cat"),
        stage="cmet",
        outcome="recommend_approval",
        minutes_ref="MIN-2026-01",
        command_id="n1",
    )
    assert s.stage == "governing_body"
    s = app.decide(
        ref,
        actor=Actor.parse("secretary:governing_body:gus"),
        stage="governing_body",
        outcome="approve",
        command_id="n2",
    )
    assert s.stage == "public_health"  # ring-fenced money: Public Health signs off, as then
    s = app.decide(
        ref, actor=Actor.parse("public_health:phil"), stage="public_health", outcome="sign_off", command_id="n3"
    )
    assert s.status == "approved"
    # The variation at the board still goes to the provider on the board's approval (its old route).
    var = cases["variation_open"]
    s = app.decide(
        var,
        actor=Actor.parse("secretary:board:sam"),
        stage="board",
        outcome="approve",
        minutes_ref="MIN-2026-01",
        command_id="n4",
    )
    assert s.stage == "provider"
    # The proposal the Programme Board sent back is at the JCU again and can be referred on.
    assert (
        app.decide(
            cases["sent_back"], actor=Actor.parse("lead_director:dan"), stage="jcu", outcome="refer", command_id="n5"
        ).stage
        == "board"
    )
    # New events chain on to the old ones.
    for r in cases.values():
        assert Auditor(app).verify(r)[1] == [], r


def test_a_snapshot_taken_by_the_earlier_release_loads_as_the_case_stood(settings: Settings) -> None:
    app = loaded(settings)
    assert app.snapshots is not None  # the test settings snapshot every few events
    app.snapshots.recorder.insert_events(
        [
            StoredEvent(
                originator_id=UUID(e["originator_id"]),
                originator_version=e["originator_version"],
                topic=e["topic"],
                state=e["state"].encode("utf-8"),
            )
            for e in FIXTURE["snapshots"]
        ]
    )
    fresh = bootstrap.open_cases(settings)  # loads from the latest snapshot, upcast from version 1
    for name, ref in FIXTURE["cases"].items():
        from_snapshot, from_events = fresh.state(ref), app.repository.get(case_id(ref))
        then = FIXTURE["states"][name]
        assert (from_snapshot.stage, from_snapshot.status, str(from_snapshot.deadline)) == (
            then["stage"],
            then["status"],
            then["deadline"],
        ), name
        assert from_events.version == from_snapshot.version
    s = fresh.decide(
        FIXTURE["cases"]["proposal"],
        actor=Actor.parse("secretary:cmet:cat"),
        stage="cmet",
        outcome="recommend_approval",
        command_id="s1",
    )
    assert s.stage == "governing_body"
