"""Two projection runners for the same views (a deployment with two replicas): only one processes at
a time; kill -9 it and the other takes over; the views equal a rebuild from zero."""

from __future__ import annotations

import uuid
from pathlib import Path

from concordat import bootstrap
from concordat.replay import replay
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from tests.faults.processes import env_for, start, until

LEAD, DAN = Actor.parse("jcu_lead:jo"), Actor.parse("lead_director:dan")


def some_cases(app: CaseService, n: int) -> None:
    for i in range(n):
        ref = app.start_proposal(
            actor=LEAD,
            command_id=str(uuid.uuid4()),
            title=f"Case {i}",
            kind="procurement",
            value_pence=1_000,
            parties=["PCC"],
            public_health=False,
        ).reference
        app.decide(ref, actor=DAN, stage="jcu", outcome="refer", command_id=str(uuid.uuid4()))


def caught_up(settings: Settings, app: CaseService) -> bool:
    newest = app.max_notification_id()
    return all(
        bootstrap.open_view(settings, name).max_tracking_id(app.name) == newest
        for name in ("case_list", "decisions", "public_health")
    )


def views(settings: Settings) -> tuple[list, list]:
    return bootstrap.open_case_list(settings).list_cases(), bootstrap.open_decisions(settings).list_decisions()


def test_one_runner_leads_and_the_other_takes_over_when_it_is_killed(settings: Settings, tmp_path: Path) -> None:
    app = bootstrap.open_cases(settings)
    some_cases(app, 3)
    env = env_for(settings)
    first = start("runner-1", ["projections"], env, tmp_path)
    until(lambda: "projections.leading" in first.text(), 30, "the first runner to lead")
    second = start("runner-2", ["projections"], env, tmp_path)
    try:
        until(lambda: "projections.standing_by" in second.text(), 30, "the second runner to stand by")
        until(lambda: caught_up(settings, app), 30, "the views to catch up")
        first.kill9()
        some_cases(app, 3)
        until(lambda: "projections.leading" in second.text(), 30, "the second runner to take over")
        until(lambda: caught_up(settings, app), 30, "the views to catch up after the take-over")
        assert "Traceback" not in second.text()
    finally:
        first.stop()
        second.stop()
    live = views(settings)
    assert len(live[0]) == 6 and len(live[1]) == 6
    replay(settings)  # a rebuild from zero
    assert views(settings) == live
