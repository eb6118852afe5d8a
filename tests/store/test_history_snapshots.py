"""A case's snapshot keeps only the rules' part of its decisions (`StagedCase._remember_decision`),
not the whole history. A snapshot stored by an earlier release (the whole `decisions` list, and
none of the compact fields; a proposal at aggregate version 2) is upcast on load, on SQLite and
PostgreSQL, and the rules answer from it as from the case's events: who is barred where, the words
of a refusal, the route's plan, the answer to a person beaten to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any

import pytest
from eventsourcing.domain import Snapshot

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.case import case_id
from domain.proposal import Proposal
from domain.separation import SeparationOfDutiesError

COMPACT = ("decisions_made", "latest_decision", "stages_decided", "first_deciders")
JO = Actor.parse("jcu_lead:jo")
DAN = Actor.parse("lead_director:dan")
SAM = Actor.parse("secretary:board:sam")
DAN_AT_BOARD = Actor.parse("secretary:board:dan")
PAT = Actor.parse("secretary:programme_board:pat")
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
n = iter(range(1_000_000))


def decide(app: CaseService, ref: str, actor: Actor, stage: str, outcome: str, at: datetime) -> None:
    app.decide(ref, actor=actor, stage=stage, outcome=outcome, minutes_ref="MIN-1", command_id=f"c{next(n)}", at=at)


def from_events(app: CaseService, ref: str) -> Any:
    return reduce(lambda aggregate, e: e.mutate(aggregate), app.events.get(case_id(ref)), None)


def store_old_snapshot(app: CaseService, ref: str) -> dict[str, Any]:
    """A snapshot of the case at its latest version as the release before stored it: the whole
    history in `decisions`, no compact fields, a proposal's aggregate version 2."""
    case = from_events(app, ref)
    taken = Snapshot.take(case)
    state = {k: v for k, v in taken.state.items() if k not in COMPACT}
    state["class_version"] = 2
    state["decisions"] = history(app, ref)
    old = Snapshot(
        originator_id=taken.originator_id,
        originator_version=taken.originator_version,
        timestamp=taken.timestamp,
        topic=taken.topic,
        state=state,
    )
    assert app.snapshots is not None
    app.snapshots.put([old])
    return state


def history(app: CaseService, ref: str) -> list[dict[str, Any]]:
    return [dict(d) for d in app.state(ref).details["decisions"]]


def test_an_old_shape_snapshot_loads_and_the_rules_answer_as_from_the_events(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    ref = app.start_proposal(
        actor=JO,
        command_id="start",
        title="Short breaks for disabled children",
        kind="procurement",
        value_pence=30_000_000,
        parties=["PCC", "CCC", "CPCCG"],
        public_health=False,
        at=T0,
    ).reference
    for _ in range(2):  # the JCU misses its deadline and the Programme Board extends it, twice
        timer = next(t for t in app.state(ref).timers if t.name.startswith("escalate:"))
        app.fire_timer(ref, timer=timer.name, command_id=f"c{next(n)}", at=timer.at)
        app.decide(
            ref,
            actor=PAT,
            stage="jcu",
            outcome="extend",
            minutes_ref="MIN-1",
            command_id=f"c{next(n)}",
            at=timer.at + timedelta(minutes=1),
            new_deadline=(timer.at + timedelta(days=7)).date(),
        )
    decide(app, ref, DAN, "jcu", "refer", T0 + timedelta(days=40))
    decide(app, ref, SAM, "board", "defer", T0 + timedelta(days=41))
    old = store_old_snapshot(app, ref)
    assert Proposal.class_version > 2 and not set(COMPACT) & set(old) and len(old["decisions"]) == 4

    again = bootstrap.open_cases(settings)
    loaded = again.repository.get(case_id(ref))  # from the old snapshot, upcast
    replayed = from_events(again, ref)
    assert loaded.version == replayed.version
    assert {k: loaded.__dict__[k] for k in COMPACT} == {k: replayed.__dict__[k] for k in COMPACT}
    assert [(d["actor_id"], d["stage"], d["forum"]) for d in loaded.first_deciders] == [
        ("pat", "jcu", "programme_board"),  # once, for two extensions
        ("dan", "jcu", "jcu"),
        ("sam", "board", "board"),
    ]
    rules = again.rules_for(loaded)
    shown, expected = loaded.view(rules), replayed.view(rules)
    assert (shown.actions, shown.route, shown.last_decision) == (
        expected.actions,
        expected.route,
        expected.last_decision,
    )
    assert next(a for a in shown.actions if a.stage == "board").barred == ["jo", "dan"]
    assert shown.last_decision == f"board: defer by secretary:board:sam at {(T0 + timedelta(days=41)).isoformat()}"

    # Dan, who decided at the JCU, is refused at the board in the same words either way.
    said = []
    for case in (loaded, replayed):
        with pytest.raises(SeparationOfDutiesError) as refused:
            case.decide(
                rules,
                actor=DAN_AT_BOARD,
                command=Proposal.ACTIONS["decide"][0](stage="board", outcome="recommend", minutes_ref="MIN-2"),
                command_id="dan-at-board",
                at=T0 + timedelta(days=5),
            )
        said.append(str(refused.value))
    assert said[0] == said[1]
    assert "dan already decided" in said[0] and "at jcu (as lead_director, 2027-01-03)" in said[0]


def test_a_snapshot_holds_no_history_yet_the_case_shows_it_whole(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)  # a snapshot every 5 events
    ref = app.start_proposal(
        actor=JO,
        command_id="start",
        title="Short breaks for disabled children",
        kind="procurement",
        value_pence=100_000,
        parties=["PCC"],
        public_health=False,
        at=T0,
    ).reference
    for i in range(6):
        timer = next(t for t in app.state(ref, history=False).timers if t.name.startswith("escalate:"))
        app.fire_timer(ref, timer=timer.name, command_id=f"e{i}", at=timer.at)
        answer = app.decide(
            ref,
            actor=PAT,
            stage="jcu",
            outcome="extend",
            minutes_ref=f"MIN-{i}",
            command_id=f"x{i}",
            at=timer.at + timedelta(minutes=1),
            new_deadline=(timer.at + timedelta(days=7)).date(),
        )
        assert "decisions" not in answer.details  # a command's answer goes without the history
    assert app.snapshots is not None
    stored = list(app.snapshots.get(case_id(ref), desc=True, limit=1))
    assert stored and stored[0].originator_version == 10 and "decisions" not in stored[0].state
    assert (
        stored[0].state["decisions_made"] == 4
    )  # at version 10: the start, then 4 escalations and extensions, and one escalation

    shown = bootstrap.open_cases(settings).state(ref).details["decisions"]
    assert [d["minutes_ref"] for d in shown] == [f"MIN-{i}" for i in range(6)]
    assert {(d["by"], d["outcome"]) for d in shown} == {("secretary:programme_board:pat", "extend")}
