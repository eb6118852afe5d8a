"""Benchmark 1 — the command path: decisions through the application service (load the case, run the
rule, save one event with its chain hash and metadata, one transaction each) against a raw
single-row INSERT and COMMIT into a table of the same shape; then writer *processes* on different
cases, 8 against 1, on PostgreSQL with each event recorder (`CONCORDAT_PG_RECORDER`).

    uv run python -m bench.command_path [--db sqlite|postgres|both] [-n 300] [--writers 8]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.common import RoundTrips, header, met, store, table, timed
from concordat import bootstrap, logs
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.case import case_id

JO = Actor.parse("jcu_lead:jo")
DAN = Actor.parse("lead_director:dan")


def _cases(app: CaseService, n: int) -> list[str]:
    return [
        app.start_proposal(
            actor=JO,
            title=f"Bench {i}",
            kind="procurement",
            value_pence=100_000,
            parties=["PCC"],
            public_health=False,
            command_id=f"start-{uuid.uuid4()}",
        ).reference
        for i in range(n)
    ]


def _decide(app: CaseService, refs: list[str]) -> None:
    for ref in refs:
        app.decide(ref, actor=DAN, stage="jcu", outcome="refer", command_id=f"decide-{ref}")


def _id(ref: str) -> uuid.UUID:
    return case_id(ref)


def raw_postgres(url: str, n: int, size: int) -> float:
    payload = os.urandom(size)
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TABLE raw_events (originator_id uuid NOT NULL, originator_version bigint NOT NULL,"
            " topic text, state bytea, notification_id bigserial,"
            " PRIMARY KEY (originator_id, originator_version))"
        )
        conn.commit()

        def go() -> None:
            for _ in range(n):
                conn.execute(
                    "INSERT INTO raw_events (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
                    (uuid.uuid4(), 1, "domain.proposal:Proposal.Decided", payload),
                )
                conn.commit()

        return timed(go)


def raw_sqlite(n: int, size: int) -> float:
    payload = os.urandom(size)
    path = Path(tempfile.mkdtemp(prefix="concordat-bench-raw-")) / "raw.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE raw_events (originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB,"
        " PRIMARY KEY (originator_id, originator_version))"
    )

    def go() -> None:
        for _ in range(n):
            conn.execute("BEGIN")
            conn.execute(
                "INSERT INTO raw_events VALUES (?, ?, ?, ?)",
                (str(uuid.uuid4()), 1, "domain.proposal:Proposal.Decided", payload),
            )
            conn.execute("COMMIT")

    try:
        return timed(go)
    finally:
        conn.close()


def run(backend: str, n: int, writers: int) -> list[dict[str, str]]:
    with store(backend) as (settings, what):
        app = bootstrap.open_cases(settings)
        refs = _cases(app, n)
        sequential = refs[:n]
        ours = timed(lambda: _decide(app, sequential))
        trips = ""
        if backend == "postgres":  # a second, counted run on other cases (counting slows it down)
            more = _cases(app, 20)
            with RoundTrips().counting() as counter:
                _decide(app, more)
            trips = f"; {counter.count / len(more):.1f} round trips each"
        size = len(app.recorder.select_events(_id(sequential[0]))[-1].state)
        base = raw_postgres(settings.database_url, n, size) if backend == "postgres" else raw_sqlite(n, size)
        seq_rate, raw_rate = n / ours, n / base
        rows = [
            {
                "backend": what,
                "what": f"decisions/s, sequential (n={n}{trips})",
                "ours": f"{seq_rate:,.0f}",
                "baseline": f"{raw_rate:,.0f} raw INSERT+COMMIT",
                "ratio": f"{seq_rate / raw_rate:.0%}",
                "goal": "≥ 50% of raw",
                "met": met(seq_rate >= 0.5 * raw_rate),
            }
        ]
        app.close()
        recorders = ["stamped", "locking"] if backend == "postgres" else [""]
        for recorder in recorders:
            mode = settings.model_copy(update={"pg_recorder": recorder}) if recorder else settings
            one = processes(mode, 1, n // writers)
            many = processes(mode, writers, n // writers)
            settled = bootstrap.open_cases(mode)
            settled.max_notification_id()  # a reader numbers what the stamped writers left, before we switch
            settled.close()
            rows.append(
                {
                    "backend": f"{what}, {recorder} recorder" if recorder else what,
                    "what": f"decisions/s, {writers} writer processes on different cases",
                    "ours": f"{many:,.0f}",
                    "baseline": f"{one:,.0f} one writer process",
                    "ratio": f"{many / one:.1f}×",
                    "goal": "≥ 3× one",
                    "met": met(many >= 3 * one),
                }
            )
        return rows


def _writer(settings: Settings, refs: list[str], ready: Any, go: Any, out: Any) -> None:
    """One writer process: a decision on each of its own cases, once told to go."""
    logs.configure("console", "warning")
    app = bootstrap.open_cases(settings)
    app.state(refs[0])  # connected and warmed up before the clock starts
    ready.release()
    go.wait()
    start = time.perf_counter()
    _decide(app, refs)
    out.put((start, time.perf_counter()))
    app.close()


def processes(settings: Settings, writers: int, per_writer: int) -> float:
    """Decisions per second of `writers` processes deciding `per_writer` cases each, all at once: from
    the first one's start to the last one's end (the monotonic clock is the machine's, not the process's)."""
    app = bootstrap.open_cases(settings)
    refs = _cases(app, writers * per_writer)  # started here: starts all take one sequence's numbers
    app.close()
    ctx = multiprocessing.get_context("spawn")
    ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(settings, refs[w * per_writer : (w + 1) * per_writer], ready, go, out))
        for w in range(writers)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    go.set()
    spans = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a writer process failed (exit {p.exitcode})")
    return writers * per_writer / (max(e for _, e in spans) - min(s for s, _ in spans))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("-n", type=int, default=300, help="decisions in the sequential run (default 300)")
    parser.add_argument("--writers", type=int, default=8)
    args = parser.parse_args(argv)
    logs.configure("console", "warning")
    header("Command path")
    rows = []
    for backend in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        rows += run(backend, args.n, args.writers)
    table("Decisions through the application service vs raw single-row INSERT + COMMIT", rows)


if __name__ == "__main__":
    main()
