"""Benchmarks 2 and 3 — rebuilding every view from event zero against a raw SELECT of the same rows
with JSON decoding; and loading one case with 10, 1,000 and 10,000 events (snapshots on).

    uv run python -m bench.rebuild_and_load [--db sqlite|postgres|both] [--cases 1000] [--sizes 10,1000,10000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import time
import uuid
from collections.abc import Callable

import psycopg

from bench.common import header, met, store, table, timed
from bench.long_case import long_case
from concordat import bootstrap, logs
from concordat.replay import replay
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.case import case_id

JO = Actor.parse("jcu_lead:jo")
DAN = Actor.parse("lead_director:dan")


def fill(app: CaseService, cases: int) -> None:
    for i in range(cases):
        ref = app.start_proposal(
            actor=JO,
            title=f"Bench {i}",
            kind="procurement",
            value_pence=30_000_000,
            parties=["PCC", "CPCCG"],
            public_health=False,
            command_id=f"s-{uuid.uuid4()}",
        ).reference
        app.decide(ref, actor=DAN, stage="jcu", outcome="refer", minutes_ref="J/1", command_id=f"d-{ref}")


def raw_read(settings: Settings, app: CaseService) -> tuple[int, float]:
    """SELECT every stored event's state and decode its JSON, in sections as a runner reads."""
    table_name = app.recorder.events_table_name if hasattr(app.recorder, "events_table_name") else "stored_events"

    def sections(fetch: Callable[[int], list[tuple[int, bytes]]]) -> int:
        """Read every row a thousand at a time after the last id seen, decoding each state's JSON."""
        count, last = 0, 0
        while rows := fetch(last):
            for _, state in rows:
                json.loads(state)
            count += len(rows)
            last = rows[-1][0]
        return count

    def go() -> int:
        if settings.uses_postgres:
            with psycopg.connect(settings.database_url) as conn:
                return sections(
                    lambda last: conn.execute(
                        f"SELECT notification_id, state FROM {table_name} "  # noqa: S608 - ours
                        "WHERE notification_id > %s ORDER BY notification_id LIMIT 1000",
                        (last,),
                    ).fetchall()
                )
        conn = sqlite3.connect(settings.data_dir / "events.sqlite")
        try:
            return sections(
                lambda last: conn.execute(
                    f"SELECT rowid, state FROM {table_name} WHERE rowid > ? "  # noqa: S608 - ours
                    "ORDER BY rowid LIMIT 1000",
                    (last,),
                ).fetchall()
            )
        finally:
            conn.close()

    start = time.perf_counter()
    n = go()
    return n, time.perf_counter() - start


def rebuild(backend: str, cases: int) -> list[dict[str, str]]:
    with store(backend) as (settings, what):
        app = bootstrap.open_cases(settings)
        fill(app, cases)
        for view in bootstrap.VIEW_NAMES:
            bootstrap.open_view(settings, view)  # the live views a rebuild replaces
        summary = replay(settings, console=None)
        events, raw_seconds = raw_read(settings, app)
        caught_up = catch_up_from_zero(settings, app)
        raw = events / raw_seconds
        n = f"{summary.events:,} events, 3 views"
        rates = [
            (f"views rebuilt (`audit replay`), events/s ({n})", summary.events / summary.seconds),
            ("… of which projecting the sections (no staging or swap)", summary.events / summary.projecting_seconds),
            (
                "projection runners catching up from zero, events/s (3 at once, from their start)",
                summary.events / caught_up,
            ),
        ]
        return [
            {
                "backend": what,
                "what": label,
                "ours": f"{ours:,.0f}",
                "baseline": f"{raw:,.0f} raw SELECT+JSON",
                "ratio": f"{ours / raw:.0%}",
                "goal": "≥ 25% of raw",
                "met": met(ours >= 0.25 * raw),
            }
            for label, ours in rates
        ]


def catch_up_from_zero(settings: Settings, app: CaseService) -> float:
    """Seconds for the real projection runners, started on emptied views, to reach the newest event."""
    for view in bootstrap.VIEW_NAMES:
        bootstrap.open_view(settings, view).clear()
    newest = app.max_notification_id()
    start = time.perf_counter()
    for runner in bootstrap.projection_runners(settings):  # each starts following the log as it is made
        with runner:
            runner.wait(newest, timeout=600)
    return time.perf_counter() - start


def load_times(backend: str, sizes: list[int]) -> list[dict[str, str]]:
    rows = []
    with store(backend, snapshot_interval=50) as (settings, what):
        app = bootstrap.open_cases(settings)
        refs = {size: long_case(app, size) for size in sizes}
        fresh = bootstrap.open_cases(settings)  # no cache: every get reads the store
        seconds = {}
        for size, ref in refs.items():
            samples = [timed(lambda r=ref: fresh.repository.get(case_id(r))) for _ in range(30)]
            seconds[size] = statistics.median(samples)
        smallest, largest = min(sizes), max(sizes)
        for size in sizes:
            ratio = seconds[size] / seconds[smallest]
            rows.append(
                {
                    "backend": what,
                    "what": f"load a case of {fresh.state(refs[size], history=False).version:,} events",
                    "ours": f"{seconds[size] * 1000:.2f} ms",
                    "baseline": f"{seconds[smallest] * 1000:.2f} ms ({smallest} events)",
                    "ratio": f"{ratio:.1f}×",
                    "goal": "≤ 2× with snapshots" if size == largest else "",
                    "met": met(ratio <= 2) if size == largest else "",
                }
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--cases", type=int, default=1000, help="cases to rebuild from (2 events each + sequences)")
    parser.add_argument("--sizes", default="10,1000,10000", help="events in the cases to load")
    args = parser.parse_args(argv)
    logs.configure("console", "warning")
    header("Projection rebuild and aggregate load")
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    rows = []
    for backend in backends:
        rows += rebuild(backend, args.cases)
    table("Rebuilding every view from event zero vs a raw SELECT with JSON decoding", rows)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for backend in backends:
        rows += load_times(backend, sizes)
    table("Loading one case (median of 30 loads, snapshot every 50 events)", rows)


if __name__ == "__main__":
    main()
