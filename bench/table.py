"""Every benchmark once, and the table in docs/benchmarks.md rewritten from that run.

Each row's figure, its baseline, their ratio, the goal and whether it is met are measured in the
same run, with the machine, the stores' versions and the date above them.

    uv run python -m bench.table [--write docs/benchmarks.md] [sizes: see --help]

Only the lines between the page's two marker comments (`BEGIN` and `END` below) are rewritten; the
rest of the page (what the figures mean, where the time goes) is written by people. Nothing is
written unless every benchmark ran; without `--write`, the table is printed and nothing is written.
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import api_door, cli_start, command_path, latency, rebuild_and_load, temporal_e2e
from bench.common import collecting, machine
from concordat import binaries

BEGIN = "<!-- bench.table begin: written by `python -m bench.table --write` -->"
END = "<!-- bench.table end -->"
COLUMNS = ("#", "what", "store", "ours", "baseline", "ratio", "goal", "met")
PAGE = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


class MarkersError(Exception):
    """The page has not exactly one begin marker followed by one end marker."""


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its module's `main`, the arguments it runs with, and the `#` of each table it
    prints (in order; the last one goes on for any further tables)."""

    name: str
    main: Callable[[list[str]], None]
    argv: list[str]
    numbers: tuple[str, ...]


def benchmarks(args: argparse.Namespace) -> list[Benchmark]:
    return [
        Benchmark(
            "command_path",
            command_path.main,
            ["--db", args.db, "-n", str(args.decisions), "--writers", str(args.writers)],
            ("1",),
        ),
        Benchmark(
            "rebuild_and_load",
            rebuild_and_load.main,
            ["--db", args.db, "--cases", str(args.cases), "--sizes", args.sizes],
            ("2", "3"),
        ),
        Benchmark(
            "temporal_e2e",
            temporal_e2e.main,
            ["--db", args.db, "-n", str(args.temporal_n), "--in-flight", "8"],
            ("4",),
        ),
        Benchmark(
            "latency",
            latency.main,
            ["-n", str(args.requests), "--runs", str(args.cli_runs), "--concurrency", "4"],
            ("5",),
        ),
        Benchmark("cli_start", cli_start.main, ["-n", str(args.cli_runs)], ("5",)),
        Benchmark(
            "api_door",
            api_door.main,
            ["-n", str(args.door_n), "--rounds", str(args.door_rounds), "--in-flight", "4"],
            ("6",),
        ),
    ]


def run_all(chosen: Sequence[Benchmark]) -> list[dict[str, Any]]:
    """Each benchmark once, in order: its rows, each with its `#`."""
    rows: list[dict[str, Any]] = []
    for bench in chosen:
        with collecting() as tables:
            bench.main(bench.argv)
        for i, (_, table_rows) in enumerate(tables):
            number = bench.numbers[min(i, len(bench.numbers) - 1)]
            rows += [{"#": number, **row} for row in table_rows]
    return rows


def stores(rows: Sequence[dict[str, Any]]) -> str:
    """The stores' versions: SQLite's library, PostgreSQL's server as the rows name it, and
    Temporal's CLI (its dev server is the one the Temporal rows ran on)."""
    found = [f"SQLite {sqlite3.sqlite_version}"]
    versions = sorted({m.group(1) for r in rows if (m := re.search(r"PostgreSQL (\S+?)(?:,|$)", str(r["backend"])))})
    found += [f"PostgreSQL {v}" for v in versions]
    path = binaries.find("temporal")
    if path is not None:
        said = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60, check=False)
        if said.returncode == 0 and said.stdout.strip():
            found.append("Temporal CLI " + said.stdout.strip().removeprefix("temporal version "))
    return ", ".join(found)


def markdown(rows: Sequence[dict[str, Any]], *, machine_line: str, stores_line: str, when: datetime, argv: str) -> str:
    """The block that goes between the markers: where and when, then the table."""
    cells = [[str(r["#"]), str(r["what"]), str(r["backend"]), *(str(r.get(c, "")) for c in COLUMNS[3:])] for r in rows]
    lines = [
        f"Measured on **{machine_line}**; stores: {stores_line}; {when.strftime('%d %B %Y, %H:%M UTC')}, "
        f"by `uv run python -m bench.table{(' ' + argv) if argv else ''}`. Each row's baseline ran in the same "
        "run as its figure.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells),
    ]
    return "\n".join(lines) + "\n"


def _split(text: str, page: Path) -> tuple[str, str]:
    """What comes before the begin marker and after the end marker, or MarkersError."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(END) < text.index(BEGIN):
        raise MarkersError(
            f"{page} needs one line `{BEGIN}` and, after it, one line `{END}`: the table goes between them"
        )
    head, rest = text.split(BEGIN, 1)
    return head, rest.split(END, 1)[1]


def rewrite(page: Path, block: str) -> None:
    """Put `block` between the page's markers, leaving every other line as it was; the page is
    replaced whole (a new file renamed over it), so a failure leaves it as it was."""
    head, tail = _split(page.read_text(encoding="utf-8"), page)
    fd, tmp = tempfile.mkstemp(dir=page.parent, prefix=f".{page.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(f"{head}{BEGIN}\n{block.rstrip()}\n{END}{tail}")
        os.replace(tmp, page)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _without_write(argv: Sequence[str]) -> list[str]:
    """The arguments as given, less `--write` and its page: the sizes that made the figures."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            if not arg.startswith("-"):
                continue
        if arg == "--write":
            skip = True
            continue
        if arg.startswith("--write="):
            continue
        kept.append(arg)
    return kept


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write",
        type=Path,
        nargs="?",
        const=PAGE,
        action="append",
        metavar="PAGE",
        help="rewrite the table between the markers in PAGE (default docs/benchmarks.md); "
        "again for another page (README.md), from the same run",
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--decisions", type=int, default=300, help="command_path: decisions in the sequential run")
    parser.add_argument("--writers", type=int, default=8, help="command_path: writer processes")
    parser.add_argument("--cases", type=int, default=1000, help="rebuild_and_load: cases to rebuild views from")
    parser.add_argument("--sizes", default="10,1000,10000", help="rebuild_and_load: events in the cases to load")
    parser.add_argument("--temporal-n", type=int, default=200, help="temporal_e2e: decisions and bare updates")
    parser.add_argument("--requests", type=int, default=300, help="latency: requests of each kind")
    parser.add_argument("--cli-runs", type=int, default=15, help="latency and cli_start: runs of each command")
    parser.add_argument("--door-n", type=int, default=200, help="api_door: decisions and bare updates per round")
    parser.add_argument("--door-rounds", type=int, default=2, help="api_door: rounds of bare then ours")
    args = parser.parse_args(argv)
    pages: list[Path] = args.write or []
    for page in pages:  # said before an hour of benchmarks, not after
        if not page.is_file():
            raise SystemExit(f"bench.table: --write {page}: no such page (the page with the table's markers)")
        try:
            _split(page.read_text(encoding="utf-8"), page)
        except MarkersError as err:
            raise SystemExit(f"bench.table: {err}") from None
    rows = run_all(benchmarks(args))
    given = " ".join(_without_write(argv if argv is not None else sys.argv[1:]))
    block = markdown(rows, machine_line=machine(), stores_line=stores(rows), when=datetime.now(UTC), argv=given)
    sys.stdout.write("\n" + block)
    for page in pages:
        rewrite(page, block)
        sys.stdout.write(f"\nwritten between the markers of {page}\n")


if __name__ == "__main__":
    main()
