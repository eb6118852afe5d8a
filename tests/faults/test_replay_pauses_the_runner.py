"""`concordat audit replay` with the projection runner running, as `concordat up` runs it: the runner
steps aside while the views are rebuilt and swapped, then carries on from the rebuilt positions, so
events recorded during the replay are in the views once, and events after it keep being projected.
A replay killed half-way gives the views back to the runner as its process ends."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from concordat import bootstrap
from concordat.leadership import runner_paused
from concordat.replay import replay
from concordat.settings import Settings
from domain.application import CaseService
from tests.faults.processes import Proc, env_for, start, until
from tests.faults.test_projection_runners import caught_up, some_cases, views
from tests.people import token_for


def cases_while(app: CaseService, running: Proc) -> int:
    """Start cases one by one, ten a second, for as long as `running` runs; how many."""
    started = 0
    while running.process.poll() is None:
        some_cases(app, 1)
        started += 1
        time.sleep(0.1)  # pacing the writer (a few dozen cases are enough), not waiting for anything
    return started


def test_a_replay_pauses_the_running_runner_which_then_projects_what_came_during_and_after_it(
    settings: Settings, tmp_path: Path
) -> None:
    app = bootstrap.open_cases(settings)
    some_cases(app, 3)
    env = env_for(settings)
    runner = start("runner", ["projections"], env, tmp_path)
    try:
        until(lambda: caught_up(settings, app), 60, "the runner to catch up")
        # Between rebuilding and swapping in, the replay waits 3 s: events recorded then would be
        # projected into the old views by a runner that did not step aside, and lost in the swap.
        admin = {**env, "CONCORDAT_TOKEN": token_for(app, "admin:root"), "CONCORDAT_FAULT_PAUSE_BEFORE_SWAP": "3"}
        replaying = start("replay", ["audit", "replay", "--json"], admin, tmp_path)
        during = cases_while(app, replaying)
        assert replaying.process.returncode == 0, replaying.text()
        assert during >= 3, "too few cases were started while the replay ran to show anything"
        some_cases(app, 2)  # after the replay
        until(lambda: caught_up(settings, app), 60, "the runner to project what came during and after the replay")
        cases, decisions = views(settings)
        assert len(cases) == len(decisions) == 3 + during + 2, runner.text()
        log = runner.text()
        assert log.index("projections.paused") < log.index("projections.resumed"), log
        assert runner.process.poll() is None and "Traceback" not in log
    finally:
        runner.stop()
    live = views(settings)
    replay(settings)
    assert views(settings) == live  # nothing skipped, nothing twice


def test_a_replay_killed_half_way_gives_the_views_back_to_the_runner(settings: Settings, tmp_path: Path) -> None:
    app = bootstrap.open_cases(settings)
    some_cases(app, 2)
    env = env_for(settings)
    runner = start("runner", ["projections"], env, tmp_path)
    try:
        until(lambda: caught_up(settings, app), 60, "the runner to catch up")
        admin = {**env, "CONCORDAT_TOKEN": token_for(app, "admin:root"), "CONCORDAT_FAULT_PAUSE_BEFORE_SWAP": "300"}
        replaying = start("replay", ["audit", "replay"], admin, tmp_path)
        until(lambda: "projections.paused" in runner.text(), 60, "the runner to step aside for the replay")
        writer = threading.Thread(target=some_cases, args=(app, 2))
        writer.start()
        writer.join()
        replaying.kill9()  # its locks die with it
        until(lambda: "projections.resumed" in runner.text(), 30, "the runner to resume after the replay died")
        until(lambda: caught_up(settings, app), 60, "the runner to project what came while it was paused")
        cases, decisions = views(settings)
        assert len(cases) == len(decisions) == 4
        assert runner.process.poll() is None and "Traceback" not in runner.text()
    finally:
        runner.stop()


def test_a_second_replay_while_one_runs_is_refused_in_one_line_and_rebuilds_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    app = bootstrap.open_cases(settings)
    some_cases(app, 1)
    admin = {**env_for(settings), "CONCORDAT_TOKEN": token_for(app, "admin:root")}
    with runner_paused(settings):  # the first replay, holding the views
        second = subprocess.run(
            [sys.executable, "-m", "concordat", "audit", "replay"],
            env=admin,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert second.returncode == 75, second.stderr
    assert second.stderr.splitlines() == [
        "concordat: another audit replay is running; nothing was rebuilt: run it again when that one is done"
    ]
    assert not list((settings.data_dir / "views").glob("*.rebuild-*"))  # no staged views were made
