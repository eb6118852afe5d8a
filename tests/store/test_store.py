"""The same store behaviour on the embedded SQLite file and on a real PostgreSQL server."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
from eventsourcing.persistence import IntegrityError

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.errors import WrongStageError
from domain.proposal import Proposal
from domain.staged import Decide
from tests.domain.support import escalate

LEAD = Actor.parse("jcu_lead:jo")
DAN = Actor.parse("lead_director:dan")
SAM = Actor.parse("secretary:board:sam")
AUDREY = Actor.parse("auditor:audrey")
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def start(app: CaseService, command_id: str | None = None) -> str:
    return app.start_proposal(
        actor=LEAD,
        command_id=command_id or str(uuid.uuid4()),
        title="Speech and language therapy",
        kind="service_commissioning",
        value_pence=40_000_000,
        parties=["PCC", "CCC", "CPCCG"],
        public_health=True,
        at=T0,
    ).reference


def test_a_case_survives_a_new_process(settings: Settings) -> None:
    ref = start(bootstrap.open_cases(settings))
    bootstrap.open_cases(settings).decide(ref, actor=DAN, stage="jcu", outcome="refer", command_id="d1", at=T0)
    again = bootstrap.open_cases(settings).get(ref, actor=AUDREY)
    assert (again.stage, again.version, again.details["public_health"]) == ("board", 2, True)
    assert again.deadline == datetime(2027, 1, 12, 17, 0, tzinfo=UTC)


def test_a_retried_command_stores_one_event(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    ref = start(app)
    first = app.decide(ref, actor=DAN, stage="jcu", outcome="refer", command_id="same", at=T0)
    second = bootstrap.open_cases(settings).decide(
        ref, actor=DAN, stage="jcu", outcome="refer", command_id="same", at=T0
    )
    assert second == first
    assert [h.event for h in app.history(ref, actor=AUDREY)] == ["Started", "Decided"]


def test_proposals_started_at_the_same_moment_get_different_references(settings: Settings) -> None:
    apps = [bootstrap.open_cases(settings) for _ in range(4)]
    refs: list[str] = []
    barrier = threading.Barrier(len(apps))

    def go(app: CaseService) -> None:
        barrier.wait()
        refs.append(start(app))

    threads = [threading.Thread(target=go, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(refs) == [f"PRO-2026-{n:04d}" for n in range(1, 5)]


def test_two_writers_of_one_case_never_lose_a_decision(settings: Settings) -> None:
    """Both secretaries load the case at the board stage; one commits first. The other's save
    conflicts at the store, reloads, and is refused by the rules, naming the decision recorded."""
    ref = start(bootstrap.open_cases(settings))
    bootstrap.open_cases(settings).decide(ref, actor=DAN, stage="jcu", outcome="refer", command_id="d1", at=T0)
    a, b = bootstrap.open_cases(settings), bootstrap.open_cases(settings)
    stale = b.repository.get(Proposal.create_id(ref))  # b's copy, loaded before a decides
    a.decide(ref, actor=SAM, stage="board", outcome="recommend", minutes_ref="MIN-2026-01", command_id="a1", at=T0)
    stale.decide(
        b.rules,
        actor=SAM,
        command=Decide(stage="board", outcome="reject", minutes_ref="MIN-2026-01"),
        command_id="b1",
        at=T0,
    )
    with pytest.raises(IntegrityError):
        b.save(stale)
    # Through the service, the loser's command is re-run on what was recorded and refused.
    with pytest.raises(WrongStageError, match="decision already recorded: board: recommend by secretary:board:sam"):
        b.decide(ref, actor=SAM, stage="board", outcome="reject", minutes_ref="MIN-2026-01", command_id="b1", at=T0)
    assert [d["outcome"] for d in a.get(ref, actor=AUDREY).details["decisions"]] == ["refer", "recommend"]


def test_snapshots_let_a_long_case_load_from_its_latest_snapshot(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)  # snapshot every 5 events in the test settings
    ref = start(app)
    case_id = Proposal.create_id(ref)
    for n in range(12):
        # An extension at every escalation keeps the case going: Escalated + Decided each round.
        state = app.state(ref)
        escalate(app, ref, command_id=f"e{n}", at=state.deadline)
        app.decide(
            ref,
            actor=Actor("pat", "secretary:programme_board"),
            stage="jcu",
            outcome="extend",
            minutes_ref="MIN-2026-01",
            command_id=f"x{n}",
            at=state.deadline,
        )
    snapshots = list(app.snapshots.get(case_id, desc=True, limit=1))
    assert snapshots and snapshots[0].originator_version == 25
    fresh = bootstrap.open_cases(settings).get(ref, actor=AUDREY)
    assert fresh == app.state(ref)
    assert fresh.version == 25
