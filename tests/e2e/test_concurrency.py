"""Two secretaries record decisions on the same stage at the same moment (two CLI processes): exactly
one wins; the other is told, in one line, which decision was recorded. Decisions on different cases
never block each other."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.conftest import Engine


def cli(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as the person `--as ROLE:ID` names, signed in with their own token."""
    env = {**engine.env, "CONCORDAT_TOKEN": engine.token_of(args[list(args).index("--as") + 1])}
    return subprocess.run(
        [sys.executable, "-m", "concordat", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_of_two_simultaneous_decisions_on_one_stage_exactly_one_wins(engine: Engine) -> None:
    ref = engine.ok(
        "proposal",
        "start",
        "--title",
        "Race",
        "--kind",
        "pathway_change",
        "--value",
        "400000",
        "--parties",
        "PCC,CPCCG",
        who="jcu_lead:jo",
    ).strip()
    engine.ok("decide", ref, "--stage", "jcu", "--outcome", "refer", who="lead_director:dan")
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(
            cli,
            engine,
            "decide",
            ref,
            "--stage",
            "board",
            "--outcome",
            "recommend",
            "--minutes-ref",
            "MIN-2026-01",
            "--as",
            "secretary:board:sam",
        )
        b = pool.submit(
            cli,
            engine,
            "decide",
            ref,
            "--stage",
            "board",
            "--outcome",
            "reject",
            "--minutes-ref",
            "MIN-2026-01",
            "--as",
            "secretary:board:sue",
        )
        results = [a.result(), b.result()]
    assert sorted(r.returncode for r in results) == [0, 1], [r.stderr for r in results]
    loser = next(r for r in results if r.returncode == 1)
    assert "decision already recorded: board:" in loser.stderr and len(loser.stderr.strip().splitlines()) == 1
    history = json.loads(engine.ok("history", ref, "--json", who="auditor:a"))
    assert [h["event"] for h in history] == ["Started", "Decided", "Decided"]


def test_decisions_on_different_cases_all_land_at_once(engine: Engine) -> None:
    refs = [
        engine.ok(
            "proposal",
            "start",
            "--title",
            f"Parallel {i}",
            "--kind",
            "procurement",
            "--value",
            "1000",
            "--parties",
            "PCC",
            who="jcu_lead:jo",
        ).strip()
        for i in range(4)
    ]
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda ref: cli(
                    engine, "decide", ref, "--stage", "jcu", "--outcome", "approve", "--as", "lead_director:dan"
                ),
                refs,
            )
        )
    assert [r.returncode for r in results] == [0, 0, 0, 0], [r.stderr for r in results]
