"""Benchmark 1 — the command path: decisions through the application service (load the case, run the
rule, save one event with its chain hash and metadata, one transaction each) against a raw
single-row INSERT and COMMIT into a table of the same shape; then 8 writers on different cases.

    uv run python -m bench.command_path [--db sqlite|postgres|both] [-n 300] [--writers 8]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from bench.common import header, met, store, table, timed
from concordat import bootstrap, logs
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
        refs = _cases(app, n + writers * (n // writers))
        sequential = refs[:n]
        ours = timed(lambda: _decide(app, sequential))
        size = len(app.recorder.select_events(_id(sequential[0]))[-1].state)
        base = raw_postgres(settings.database_url, n, size) if backend == "postgres" else raw_sqlite(n, size)
        per_writer = n // writers
        parallel = refs[n:]
        chunks = [parallel[i * per_writer : (i + 1) * per_writer] for i in range(writers)]
        apps = [bootstrap.open_cases(settings) for _ in range(writers)]
        with ThreadPoolExecutor(writers) as pool:
            concurrent = timed(lambda: list(pool.map(_decide, apps, chunks)))
        seq_rate, raw_rate = n / ours, n / base
        par_rate = per_writer * writers / concurrent
        return [
            {
                "backend": what,
                "what": f"decisions/s, sequential (n={n})",
                "ours": f"{seq_rate:,.0f}",
                "baseline": f"{raw_rate:,.0f} raw INSERT+COMMIT",
                "ratio": f"{seq_rate / raw_rate:.0%}",
                "goal": "≥ 50% of raw",
                "met": met(seq_rate >= 0.5 * raw_rate),
            },
            {
                "backend": what,
                "what": f"decisions/s, {writers} writers on different cases",
                "ours": f"{par_rate:,.0f}",
                "baseline": f"{seq_rate:,.0f} sequential",
                "ratio": f"{par_rate / seq_rate:.1f}×",
                "goal": "≥ 3× sequential",
                "met": met(par_rate >= 3 * seq_rate),
            },
        ]


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
