"""Fewer round trips on PostgreSQL (`projections/pg_recorder.py`), with nothing else changed: a decision
takes two (the case and the partnership read together; BEGIN, INSERT and COMMIT sent together), as a
raw INSERT and COMMIT does; a case loads from its latest snapshot and the events after it in one
statement, exactly as eventsourcing's two statements load it; and a connection is not pinged before
each use, yet a decision still lands when the database has dropped every connection since the last."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.application import Repository

from bench.common import RoundTrips
from bench.rebuild_and_load import long_case
from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.case import case_id

JO, DAN = Actor.parse("jcu_lead:jo"), Actor.parse("lead_director:dan")


@pytest.fixture(params=["stamped", "locking"])
def pg(request: pytest.FixtureRequest, postgres_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", database_url=postgres_url, snapshot_interval=5, pg_recorder=request.param
    )


def test_a_case_loads_in_one_statement_exactly_as_in_two(pg: Settings) -> None:
    app = bootstrap.open_cases(pg)
    ref = long_case(app, 23)
    calls: list[Any] = []
    recorder: Any = app.recorder
    one = recorder.select_with_snapshot
    recorder.select_with_snapshot = lambda *a, **k: calls.append(a) or one(*a, **k)
    two = Repository(event_store=app.events, snapshot_store=app.snapshots)
    top = app.state(ref).version
    assert top >= 23
    for version in [None, *range(1, top + 1)]:
        fresh = bootstrap.open_cases(pg)
        fresh.recorder.select_with_snapshot = recorder.select_with_snapshot  # type: ignore[attr-defined]
        before = len(calls)
        loaded = fresh.repository.get(case_id(ref), version=version)
        assert len(calls) == before + 1  # one statement for the snapshot and the events after it
        expected = two.get(case_id(ref), version=version)
        assert loaded.version == expected.version == (version or top)
        assert loaded.__dict__ == expected.__dict__
        fresh.close()


def test_a_decision_lands_after_the_database_dropped_every_connection(pg: Settings) -> None:
    app = bootstrap.open_cases(pg)
    ref = app.start_proposal(
        actor=JO,
        title="t",
        kind="procurement",
        value_pence=100_000,
        parties=["PCC"],
        public_health=False,
        command_id="s1",
    ).reference
    with psycopg.connect(pg.database_url, autocommit=True) as admin:
        cut = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert cut is not None and cut[0] >= 1  # the pool's connections, just used: not pinged again
    state = app.decide(ref, actor=DAN, stage="jcu", outcome="refer", command_id="d1")
    assert state.stage == "board"
    assert [e.originator_version for e in app.recorder.select_events(case_id(ref))] == [1, 2]


def test_a_decision_is_two_round_trips(pg: Settings) -> None:
    app = bootstrap.open_cases(pg)
    refs = [
        app.start_proposal(
            actor=JO,
            title="t",
            kind="procurement",
            value_pence=100_000,
            parties=["PCC"],
            public_health=False,
            command_id=f"s{i}",
        ).reference
        for i in range(2)
    ]
    app.decide(refs[0], actor=DAN, stage="jcu", outcome="refer", command_id="d0")  # connections made, warm
    with RoundTrips().counting() as trips:
        state = app.decide(refs[1], actor=DAN, stage="jcu", outcome="refer", command_id="d1")
    assert state.stage == "board"
    assert trips.count == 2, trips.by  # read the case and the partnership; BEGIN, INSERT, COMMIT
