"""Benchmark 3 — loading a long case against a new one: a case of 10 events and one of 10,000 (each
an escalation at the deadline and the Programme Board's extension, over and over), snapshots every
50 events, each loaded afresh from the store (no cache) 30 times; the median of each, their ratio,
and the size of the long case's latest snapshot as stored. Beside it, what showing each case costs
(its view with the decision history, which is read from its events, not its snapshot; median of 5).

    uv run python -m bench.long_case [--db sqlite|postgres|both] [--sizes 10,10000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import uuid
from datetime import UTC, datetime, timedelta

from bench.common import console, header, met, store, table, timed
from concordat import bootstrap, logs
from domain.actor import Actor
from domain.application import CaseService
from domain.case import case_id

JO = Actor.parse("jcu_lead:jo")
PB = Actor.parse("secretary:programme_board:pat")
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
SHOWS = 5  # a long case's show reads all its events
LOADS = 30


def long_case(app: CaseService, events: int) -> str:
    """A case with about `events` events: escalated at each deadline and extended by the Programme Board."""
    ref = app.start_proposal(
        actor=JO,
        title="Long",
        kind="procurement",
        value_pence=100_000,
        parties=["PCC"],
        public_health=False,
        command_id=f"s-{uuid.uuid4()}",
        at=T0,
    ).reference
    state = app.state(ref)
    while state.version < events:
        now = (state.deadline or T0) + timedelta(seconds=1)
        deadline = next(t.name for t in state.timers if t.name.startswith("escalate:"))
        app.fire_timer(ref, timer=deadline, command_id=f"e-{uuid.uuid4()}", at=now)
        now += timedelta(minutes=1)
        state = app.decide(
            ref,
            actor=PB,
            stage="jcu",
            outcome="extend",
            minutes_ref="CYPMPB/1",
            command_id=f"x-{uuid.uuid4()}",
            at=now,
            new_deadline=(now + timedelta(days=7)).date(),
        )
    return ref


def snapshot_bytes(app: CaseService, reference: str) -> int:
    """The size of the case's latest snapshot as stored (0 if it has none yet)."""
    if app.snapshots is None:
        return 0
    found = app.snapshots.recorder.select_events(case_id(reference), desc=True, limit=1)
    return len(found[0].state) if found else 0


def snapshot_parts(app: CaseService, reference: str, top: int = 3) -> str:
    """The largest fields of the case's latest snapshot as stored, and their share of it (what
    still grows with every command, if anything does)."""
    if app.snapshots is None:
        return ""
    found = app.snapshots.recorder.select_events(case_id(reference), desc=True, limit=1)
    if not found:
        return ""
    try:
        state = json.loads(found[0].state)["state"]
    except (ValueError, KeyError, UnicodeDecodeError):
        return "(the snapshot is not plain JSON: compressed or enciphered)"
    whole = len(found[0].state)
    sizes = sorted(((len(json.dumps(v, separators=(",", ":"))), k) for k, v in state.items()), reverse=True)[:top]
    return ", ".join(f"{k} {n / 1024:,.1f} KiB ({n / whole:.0%})" for n, k in sizes)


def load_times(backend: str, sizes: list[int]) -> list[dict[str, str]]:
    """Rows for `table`: each case's median load time against the smallest's, and its snapshot's size."""
    rows = []
    with store(backend, snapshot_interval=50) as (settings, what):
        app = bootstrap.open_cases(settings)
        refs = {size: long_case(app, size) for size in sizes}
        fresh = bootstrap.open_cases(settings)  # no cache: every get reads the store
        seconds = {}
        for size, ref in refs.items():
            fresh.repository.get(case_id(ref))  # warm: the first load imports and compiles what it needs
            samples = [timed(lambda r=ref: fresh.repository.get(case_id(r))) for _ in range(LOADS)]
            seconds[size] = statistics.median(samples)
        # What is shown (`show`, the API's case): the view with the decision history, read from the
        # case's events rather than its snapshot.
        shown = {
            size: statistics.median([timed(lambda r=ref: fresh.state(r)) for _ in range(SHOWS)])
            for size, ref in refs.items()
        }
        smallest, largest = min(sizes), max(sizes)
        console.print(
            f"{what}: the largest fields of the {largest}-event case's snapshot: {snapshot_parts(fresh, refs[largest])}"
        )
        for size in sizes:
            ratio = seconds[size] / seconds[smallest]
            snapshot = snapshot_bytes(fresh, refs[size])
            rows.append(
                {
                    "backend": what,
                    "what": f"load a case of {fresh.state(refs[size], history=False).version:,} events"
                    + (f" (snapshot {snapshot / 1024:,.1f} KiB)" if snapshot else " (no snapshot)"),
                    "ours": f"{seconds[size] * 1000:.2f} ms",
                    "baseline": f"{seconds[smallest] * 1000:.2f} ms ({fresh.state(refs[smallest], history=False).version} events)",
                    "ratio": f"{ratio:.1f}×",
                    "goal": "≤ 2× with snapshots" if size == largest else "",
                    "met": met(ratio <= 2) if size == largest else "",
                }
            )
        rows.append(
            {
                "backend": what,
                "what": f"show a case of {fresh.state(refs[largest], history=False).version:,} events "
                "(its decision history read from its events)",
                "ours": f"{shown[largest] * 1000:.2f} ms",
                "baseline": f"{shown[smallest] * 1000:.2f} ms ({fresh.state(refs[smallest], history=False).version} events)",
                "ratio": f"{shown[largest] / shown[smallest]:.1f}×",
                "goal": "",
                "met": "",
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sizes", default="10,10000", help="events in the cases to load, comma-separated")
    args = parser.parse_args(argv)
    logs.configure("console", "warning")
    header("Loading a long case")
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for backend in backends:
        rows += load_times(backend, sizes)
    table(f"Loading one case (median of {LOADS} loads, snapshot every 50 events)", rows)


if __name__ == "__main__":
    main()
