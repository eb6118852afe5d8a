"""Benchmark 6 — how fast the command line starts: the wall time of `concordat --version`, `show`,
`history`, `list` and `decide --help` against a small store, each the median of N fresh processes,
beside `python -c pass` (the interpreter starting and doing nothing) measured in the same run; and
the floor under any read that opens the store itself: the libraries it needs, imported alone.

    uv run python -m bench.cli_start [--db sqlite|postgres|both] [-n 15]

A command's time is nearly all imports: what it imports is kept to what it needs (tests/e2e/
test_cli_imports.py keeps Temporal, the web stack and the workers out of the read commands).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from bench.common import header, met, store, table
from concordat import bootstrap
from concordat.replay import replay
from concordat.settings import Settings
from domain.actor import Actor
from domain.directory import Directory
from domain.policy import ADMIN_ROLE
from domain.store import store_id

JO = Actor.parse("jcu_lead:jo")
DAN = Actor.parse("lead_director:dan")
ROOT = Actor("root", ADMIN_ROLE)
GOAL_MS = 300.0
FLOOR = ("click", "pydantic", "structlog", "eventsourcing.application", "rich.console")


def fill(settings: Settings, cases: int) -> tuple[str, str]:
    """`cases` proposals, each decided once at the JCU, the views caught up (so `list` does not wait
    for a runner), and a token of jo's: the first case's reference and the token."""
    app = bootstrap.open_cases(settings)
    try:
        people = Directory(app)
        people.add_user("root", [ADMIN_ROLE], by=Actor("bench", "shell"), command_id="bench-root")
        people.add_user("jo", ["jcu_lead"], by=ROOT, command_id="bench-jo")
        token = people.issue_token("jo", by=ROOT, command_id="bench-token").token
        first = ""
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
            first = first or ref
        store_id(app)  # named now, as `concordat up` names it: else the first command would, and a view lag
    finally:
        app.close()
    replay(settings, console=None)
    return first, token


def env_of(settings: Settings, token: str, bytecode: Path | None) -> dict[str, str]:
    """The CLI's environment: the store, a person signed in; and Python's bytecode cached under
    `bytecode` (as an installed package has it after its first run), or, without, compiled afresh
    each run (PYTHONDONTWRITEBYTECODE and no cache: every module compiled from source)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCORDAT_") or k == "CONCORDAT_CIPHER_KEY"}
    env.update(CONCORDAT_DATA_DIR=str(settings.data_dir), CONCORDAT_TOKEN=token, CONCORDAT_LOG_LEVEL="warning")
    if settings.database_url:
        env["CONCORDAT_DATABASE_URL"] = settings.database_url
    if bytecode is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = str(settings.data_dir / "no-bytecode")  # an empty cache: none found
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode)
    return env


def run(argv: Sequence[str], env: dict[str, str], n: int) -> tuple[float, float]:
    """Median wall and CPU (user + system) seconds of `argv` in `n` fresh processes, after one run
    not counted (which fills the bytecode cache); each must exit 0 and say nothing on stderr (`list`
    would say if its view lagged: it then waits for the runner)."""
    walls, cpus = [], []
    subprocess.run(argv, env=env, capture_output=True, timeout=120)
    for _ in range(n):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0 or done.stderr.strip():
            raise SystemExit(f"{' '.join(argv[2:])} failed ({done.returncode}): {done.stderr.strip()}")
    return statistics.median(walls), statistics.median(cpus)


def bench(backend: str, n: int, cases: int, bytecode: bool) -> list[dict[str, str]]:
    with store(backend) as (settings, what), tempfile.TemporaryDirectory(prefix="concordat-pyc-") as cache:
        reference, token = fill(settings, cases)
        env = env_of(settings, token, Path(cache) if bytecode else None)
        what += "" if bytecode else ", no bytecode cache"
        base_wall, base_cpu = run([sys.executable, "-c", "pass"], env, n)
        rows = []
        # The floor under a read that opens the store itself: the libraries it needs, imported alone.
        floor_wall, floor_cpu = run([sys.executable, "-c", f"import {', '.join(FLOOR)}"], env, n)
        rows.append(
            {
                "backend": what,
                "what": f"floor: python -c 'import {', '.join(FLOOR)}' (CPU {floor_cpu * 1000:.0f} ms)",
                "ours": f"{floor_wall * 1000:.0f} ms",
                "baseline": f"{base_wall * 1000:.0f} ms (CPU {base_cpu * 1000:.0f} ms)",
                "ratio": f"{floor_wall / base_wall:.1f}×",
                "goal": "",
                "met": "",
            }
        )
        for args in (
            ["--version"],
            ["show", reference],
            ["history", reference],
            ["list"],
            ["decide", "--help"],
        ):
            wall, cpu = run([sys.executable, "-m", "concordat", *args], env, n)
            rows.append(
                {
                    "backend": what,
                    "what": f"concordat {' '.join(args)} (median of {n}; CPU {cpu * 1000:.0f} ms)",
                    "ours": f"{wall * 1000:.0f} ms",
                    "baseline": f"{base_wall * 1000:.0f} ms (CPU {base_cpu * 1000:.0f} ms)",
                    "ratio": f"{wall / base_wall:.1f}×",
                    "goal": f"≤ {GOAL_MS:.0f} ms",
                    "met": met(wall * 1000 <= GOAL_MS),
                }
            )
        return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("-n", type=int, default=15, help="Runs of each command (the median is shown).")
    parser.add_argument("--cases", type=int, default=5, help="Cases in the store.")
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="Compile every module from source each run (as with PYTHONDONTWRITEBYTECODE=1), not from a cache.",
    )
    args = parser.parse_args(argv)
    header("CLI start-up: a command's wall time beside `python -c pass` (baseline)")
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    rows = [row for backend in backends for row in bench(backend, args.n, args.cases, not args.no_bytecode)]
    table("Command-line start-up", rows)


if __name__ == "__main__":
    main()
