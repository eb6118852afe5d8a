"""The projection runner killed (SIGKILL) in the middle of a stream of events and restarted: the
views equal a rebuild from zero — no event skipped, none applied twice."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from concordat import bootstrap
from concordat.replay import replay
from concordat.settings import Settings
from domain.actor import Actor
from tests.faults.processes import env_for, start, until
from tests.faults.test_projection_runners import caught_up, views

LEAD, DAN = Actor.parse("jcu_lead:jo"), Actor.parse("lead_director:dan")


def test_a_runner_killed_mid_stream_and_restarted_matches_a_rebuild(settings: Settings, tmp_path: Path) -> None:
    app = bootstrap.open_cases(settings)
    runner = start("runner-1", ["projections"], env_for(settings), tmp_path)
    written = threading.Event()

    def write_events() -> None:
        for i in range(40):
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
        written.set()

    writer = threading.Thread(target=write_events)
    writer.start()
    try:
        until(lambda: len(bootstrap.open_case_list(settings).list_cases()) >= 5, 60, "the runner to be under way")
        runner.kill9()  # mid-stream: events keep arriving while nobody follows them
        writer.join()
        assert written.is_set()
        runner = start("runner-2", ["projections"], env_for(settings), tmp_path)
        until(lambda: caught_up(settings, app), 60, "the restarted runner to catch up")
    finally:
        writer.join()
        runner.stop()
    live = views(settings)
    assert len(live[0]) == 40 and len(live[1]) == 40
    replay(settings)
    assert views(settings) == live
