"""Under `concordat up` on PostgreSQL: the postmaster is SIGKILLed for about 30 s during a burst of
decisions through the API and the CLI. Every caller gets success, or 503 (API) / 69 or 75 (CLI) in
one line; once PostgreSQL is back (restarted on the same data dir and port), every retry with the same
Idempotency-Key or command id succeeds; each decision is stored once; the views catch up, the
projection runner reconnecting by itself (it does not exit); nobody restarts anything by hand."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from concordat import bootstrap
from domain.actor import Actor
from tests.e2e.conftest import Engine, _env, free_port, running_engine
from tests.faults.conftest import RestartablePostgres
from tests.faults.under_up import until
from tests.people import settings_of

AUDREY = Actor.parse("auditor:audrey")
DAN = "lead_director:dan"
CASES = 8
DOWN_SECONDS = 30
DECISION = {"stage": "jcu", "outcome": "refer", "minutes_ref": "JCU-7"}


@dataclass
class Caller:
    """One decision's caller: the answers it got, in order, until one was a success."""

    ref: str
    door: str  # "api" or "cli"
    answers: list[str] = field(default_factory=list)
    done: bool = False


def _kill_postmaster(pg: RestartablePostgres) -> None:
    pid = int((Path(pg.server.pgdata) / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)


def _restart(pg: RestartablePostgres, engine: Engine) -> None:
    """Start PostgreSQL again on its data dir; the backends of the killed postmaster may hold its
    shared memory for a moment, and PostgreSQL refuses to start until they have gone."""
    deadline = time.monotonic() + 60
    while True:
        try:
            pg.start()
            with psycopg.connect(pg.url, connect_timeout=5):
                return
        except (psycopg.Error, OSError, RuntimeError, subprocess.SubprocessError):
            if time.monotonic() > deadline:
                raise AssertionError("PostgreSQL did not start again:\n" + "\n".join(engine.lines)) from None
            time.sleep(0.5)  # waiting for the old backends to exit


def _at_board(engine: Engine) -> set[str]:
    """The cases the case-list view (the projection runner's work) shows at the board."""
    rows = json.loads(engine.ok("list", "--json", who="auditor:audrey"))
    return {row["reference"] for row in rows if row["stage"] == "board"}


def _attempt(engine: Engine, caller: Caller, token: str) -> None:
    """One try of the caller's decision, with the same key each time; records what it was told."""
    key = f"burst-{caller.ref}"
    if caller.door == "api":
        try:
            got = httpx.post(
                f"{engine.web}/api/v1/cases/{caller.ref}/decisions",
                json=DECISION,
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                timeout=300,
            )
        except httpx.HTTPError as err:  # the web app itself away (restarted by `up`): no answer at all
            caller.answers.append(f"no answer: {type(err).__name__}")
            return
        if got.status_code == 200:
            assert got.json()["stage"] == "board", got.text
            caller.done = True
        else:
            assert got.status_code == 503, (got.status_code, got.text)
            assert got.headers["content-type"] == "application/problem+json" and got.headers["retry-after"]
        caller.answers.append(str(got.status_code))
        return
    done = subprocess.run(
        [sys.executable, "-m", "concordat", "decide", caller.ref, "--stage", "jcu", "--outcome", "refer",
         "--minutes-ref", "JCU-7", "--command-id", key, "--as", DAN],
        env={**engine.env, "CONCORDAT_TOKEN": token}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if done.returncode == 0:
        assert "at board" in done.stdout, done.stdout
        caller.done = True
    else:
        assert done.returncode in (69, 75), (done.returncode, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # one line, never a traceback
    caller.answers.append(str(done.returncode))


def test_postgres_killed_during_a_burst_of_decisions_loses_and_doubles_nothing(
    restartable_postgres: RestartablePostgres, tmp_path: Path
) -> None:
    pg = restartable_postgres
    env = {**_env(tmp_path, free_port()), "CONCORDAT_DATABASE_URL": pg.url}
    with running_engine(tmp_path, env) as engine:
        token = engine.token_of(DAN)
        refs = [
            httpx.post(
                f"{engine.web}/api/v1/proposals",
                json={"title": f"Burst {i}", "kind": "pathway_change", "value": "180000", "parties": ["PCC"]},
                headers={"Authorization": f"Bearer {engine.token_of('jcu_lead:jo')}", "Idempotency-Key": f"s{i}"},
                timeout=60,
            ).json()["reference"]
            for i in range(CASES)
        ]
        callers = [Caller(ref, "api" if i % 2 else "cli") for i, ref in enumerate(refs)]
        first_round = [threading.Thread(target=_attempt, args=(engine, c, token)) for c in callers]
        for thread in first_round:
            thread.start()
        _kill_postmaster(pg)  # while the burst is under way
        killed_at = time.monotonic()
        for thread in first_round:
            thread.join(timeout=300)
        while time.monotonic() - killed_at < DOWN_SECONDS:  # callers who were told to retry do, while it is down
            for caller in (c for c in callers if not c.done):
                _attempt(engine, caller, token)
        assert not all(c.done for c in callers), "the outage should have been seen by some caller"
        _restart(pg, engine)

        deadline = time.monotonic() + 120
        while not all(c.done for c in callers) and time.monotonic() < deadline:
            for caller in (c for c in callers if not c.done):  # the same key: done now, or found done
                _attempt(engine, caller, token)
        assert all(c.done for c in callers), [(c.ref, c.door, c.answers) for c in callers]
        until(
            lambda: _at_board(engine) >= set(refs),
            "the views to show every decision (the projection runner back on its own)",
            engine,
        )
        assert engine.process.poll() is None  # `up` is still running
        exits = [line for line in engine.lines if line.startswith("concordat: projections exited")]
        assert not exits, exits  # the projection runner reconnected in place: nobody restarted it
    store = bootstrap.open_cases(settings_of(env))
    assert sorted(store.references()) == sorted(refs)  # no case more
    for ref in refs:  # each decision once: none lost, none doubled
        assert [h.event for h in store.history(ref, actor=AUDREY)] == ["Started", "Decided"], ref
