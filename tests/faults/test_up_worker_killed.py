"""Under `concordat up`: the worker is SIGKILLed after a decision's commit and before its activity
reports completion. `up` starts it again; the decision ends known (done, or "repeat it with
--command-id X", which then finds it recorded), the case is at the next forum in the store and in its
workflow, and that forum's secretary decides at once. One event for the decision, not two."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from concordat import bootstrap
from domain.actor import Actor
from tests.e2e.conftest import _env, free_port, running_engine
from tests.faults.under_up import cli, pid_of, repeat_id, until
from tests.people import settings_of

AUDREY = Actor.parse("auditor:audrey")
DAN = "lead_director:dan"


def test_a_worker_killed_between_commit_and_completion_leaves_the_next_forum_free_to_decide(tmp_path: Path) -> None:
    env = _env(tmp_path, free_port())
    env["CONCORDAT_FAULT_PAUSE_AFTER_COMMIT"] = "600"  # the first write's activity stops after its commit…
    env["CONCORDAT_FAULT_PAUSE_ONCE_FILE"] = str(tmp_path / "paused")  # …and only that one
    with running_engine(tmp_path, env) as engine:
        store = bootstrap.open_cases(settings_of(engine.env))
        ref = engine.ok(
            "proposal", "start", "--title", "Killed mid-decision", "--kind", "pathway_change",
            "--value", "180000", "--parties", "PCC,CCC", who="jcu_lead:jo",
        ).strip()  # fmt: skip
        first = ("decide", ref, "--stage", "jcu", "--outcome", "refer", "--minutes-ref", "JCU-1")
        deciding = cli(engine, *first, "--command-id", "jcu-refer", who=DAN, token=engine.token_of(DAN))
        until(lambda: len(store.history(ref, actor=AUDREY)) == 2, "the decision to commit", engine)
        worker = pid_of(engine, "worker")
        os.kill(worker, signal.SIGKILL)  # committed, paused: it never reports the activity's completion
        until(lambda: pid_of(engine, "worker") != worker, "up to start the worker again", engine)
        out, err = deciding.communicate(timeout=240)
        if deciding.returncode != 0:  # not known to be done: repeating it with its id finishes it
            assert deciding.returncode == 75 and len(err.strip().splitlines()) == 1, (deciding.returncode, err)
            assert repeat_id(err) == "jcu-refer"
            out = engine.ok(*first, "--command-id", "jcu-refer", who=DAN)
        assert "at board" in out, out
        recommended = engine.run(
            "decide", ref, "--stage", "board", "--outcome", "recommend", "--minutes-ref", "MIN-2026-01",
            who="secretary:board:sam",
        )  # fmt: skip
        assert recommended.returncode == 0, recommended.stderr  # the workflow waits at the board, as the store does
        engine.ok(*first, "--command-id", "jcu-refer", who=DAN)  # a late repeat finds it recorded: no error
    events = [h.event for h in bootstrap.open_cases(settings_of(env)).history(ref, actor=AUDREY)]
    assert events[:3] == ["Started", "Decided", "Decided"], events
    assert events.count("Decided") == 2, events  # the killed worker's decision is stored once
