"""Replay into fresh views with a swap at the end; time travel; export; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from concordat import bootstrap
from concordat.replay import replay
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.audit import Auditor
from domain.errors import CaseNotFoundError
from tests.audit.test_tamper_evidence import T0, a_case_with_history

AUDREY = Actor.parse("auditor:audrey")


def views(settings: Settings) -> tuple[list, list]:
    return bootstrap.open_case_list(settings).list_cases(), bootstrap.open_decisions(settings).list_decisions()


def follow(settings: Settings, app: CaseService) -> None:
    newest = app.max_notification_id()
    for runner in bootstrap.projection_runners(settings):
        with runner:
            runner.wait(newest, timeout=10)


class Stop(Exception):
    pass


def test_replay_rebuilds_every_view_to_the_same_rows(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    a_case_with_history(app)
    follow(settings, app)
    before = views(settings)
    # Damage the live views: a replay must not depend on them.
    bootstrap.open_case_list(settings).clear()
    summary = replay(settings)
    assert summary.events == app.max_notification_id()
    assert views(settings) == before
    # The runner carries on from the rebuilt views' positions: nothing repeated, nothing skipped.
    app.decide(
        before[0][0]["reference"],
        actor=Actor.parse("secretary:programme_board:pat"),
        stage="programme_board",
        outcome="recommend",
        minutes_ref="MIN-2026-01",
        command_id="late",
        at=T0 + timedelta(days=60),
    )
    follow(settings, app)
    assert len(views(settings)[1]) == len(before[1]) + 1


def test_an_interrupted_replay_leaves_the_old_views_in_place(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    a_case_with_history(app)
    follow(settings, app)
    before = views(settings)

    def stop_half_way(done: int) -> None:
        if done == app.max_notification_id() // 2:
            raise Stop

    with pytest.raises(Stop):
        replay(settings, interrupt=stop_half_way)
    assert views(settings) == before
    if not settings.uses_postgres:
        assert not list((settings.data_dir / "views").glob("*rebuild*"))


def test_time_travel_shows_the_case_as_it_stood(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    ref = a_case_with_history(app)
    history = app.history(ref, actor=AUDREY)
    at_second = history[1].recorded_at
    then = app.get(ref, actor=AUDREY, version=app.version_at(ref, at_second))
    assert (then.version, then.stage, then.details["escalated_to"]) == (2, "board", None)
    assert app.version_at(ref, datetime.now(UTC)) == len(history)
    with pytest.raises(CaseNotFoundError, match="did not exist yet"):
        app.version_at(ref, history[0].recorded_at - timedelta(seconds=1))


def test_history_and_export_carry_every_events_metadata(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    ref = a_case_with_history(app)
    h = app.history(ref, actor=AUDREY)
    decided = h[1]
    assert (decided.actor_role, decided.actor_id, decided.command_id, decided.reference, decided.forum) == (
        "lead_director",
        "dan",
        "d1",
        ref,
        "jcu",
    )
    assert decided.policy_hash == app.policy.content_hash
    assert decided.prev_hash == h[0].hash and h[0].prev_hash == ""
    assert decided.recorded_at.tzinfo is not None
    rows = list(Auditor(app).export_rows(ref))
    assert [r["version"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[1]["hash"] == decided.hash and rows[1]["actor_role"] == "lead_director"
    json.dumps(rows, default=str)  # every row is exportable as JSON
