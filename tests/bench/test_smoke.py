"""One small run of each benchmark (the real runs are for the README, not CI): each exits 0 and
prints its table with our figure, the baseline and their ratio."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "argv",
    [
        ["bench.command_path", "--db", "both", "-n", "16", "--writers", "2"],
        ["bench.rebuild_and_load", "--db", "both", "--cases", "5", "--sizes", "10,60"],
        ["bench.long_case", "--db", "both", "--sizes", "10,60"],
        ["bench.temporal_e2e", "--db", "sqlite", "-n", "5", "--in-flight", "2"],
        ["bench.latency", "-n", "5", "--runs", "1", "--concurrency", "2"],
        ["bench.cli_start", "-n", "2", "--cases", "2"],
        ["bench.api_door", "-n", "3", "--rounds", "1", "--in-flight", "2"],
    ],
    ids=lambda argv: argv[0],
)
def test_each_benchmark_runs_and_prints_its_table(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "machine:" in done.stdout and "cores" in done.stdout
    assert "ratio" in done.stdout and "baseline" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
