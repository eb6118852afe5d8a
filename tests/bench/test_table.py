"""`bench.table` rewrites the benchmarks table of docs/benchmarks.md from one run, and nothing else of
the page: on a copy of the real page, the lines outside its markers are the same bytes after as
before; a page without its markers is refused in one line before any benchmark runs, and left as it
was. Every row carries the `#` of the table its benchmark printed it in."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import table
from bench.common import table as print_table

PAGE = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
ROWS = [
    {
        "#": "6",
        "what": "decisions/s through the API, HTTP + bearer token (4 in flight, n=3)",
        "backend": "SQLite (file), `concordat up`",
        "ours": "12.5",
        "baseline": "13.0 bare update + no-op activity, same server",
        "ratio": "96%",
        "goal": "≥ 60% of bare",
        "met": "yes",
    },
    {
        "#": "1",
        "what": "decisions/s, sequential (n=3)",
        "backend": "PostgreSQL 18.6",
        "ours": "500",
        "baseline": "3,000 raw INSERT+COMMIT",
        "ratio": "17%",
        "goal": "≥ 50% of raw",
        "met": "NO",
    },
]


def block() -> str:
    return table.markdown(
        ROWS,
        machine_line="Test CPU, 2 cores, 1 GiB; Python 3.11; Linux",
        stores_line=table.stores(ROWS),
        when=datetime(2026, 12, 3, 17, 0, tzinfo=UTC),
        argv="--db both",
    )


def outside(text: str) -> tuple[str, str]:
    head, rest = text.split(table.BEGIN, 1)
    return head, rest.split(table.END, 1)[1]


def test_the_writer_rewrites_only_the_lines_between_the_markers(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(PAGE.read_text(encoding="utf-8"), encoding="utf-8")
    before = page.read_text(encoding="utf-8")

    table.rewrite(page, block())

    after = page.read_text(encoding="utf-8")
    assert outside(after) == outside(before)  # every other line, byte for byte
    between = after.split(table.BEGIN, 1)[1].split(table.END, 1)[0]
    assert between == "\n" + block()
    assert "Test CPU, 2 cores" in between and "SQLite " in between and "PostgreSQL 18.6" in between
    assert "03 December 2026" in between and "bench.table --db both" in between
    assert "| 6 | decisions/s through the API, HTTP + bearer token (4 in flight, n=3) | SQLite (file)" in between
    assert "| 1 | decisions/s, sequential (n=3) | PostgreSQL 18.6 | 500 | 3,000 raw INSERT+COMMIT | 17% |" in between

    table.rewrite(page, block())  # again: the same page, not a second table
    assert page.read_text(encoding="utf-8") == after


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text.replace(table.END, ""),
        lambda text: text.replace(table.BEGIN, ""),
        lambda text: text.replace(table.END, table.END + "\n" + table.END),
        lambda text: text.replace(table.BEGIN, "§").replace(table.END, table.BEGIN).replace("§", table.END),
    ],
    ids=["no end", "no begin", "two ends", "end before begin"],
)
def test_a_page_without_one_pair_of_markers_is_refused_and_left_as_it_was(tmp_path: Path, damage: object) -> None:
    page = tmp_path / "benchmarks.md"
    text = damage(PAGE.read_text(encoding="utf-8"))  # type: ignore[operator]
    page.write_text(text, encoding="utf-8")

    with pytest.raises(table.MarkersError):
        table.rewrite(page, block())
    assert page.read_text(encoding="utf-8") == text

    # From the command line: one line, before any benchmark runs, and non-zero.
    done = subprocess.run(
        [sys.executable, "-m", "bench.table", "--write", str(page)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    said = f"bench.table: {page} needs one line `{table.BEGIN}` and, after it, one line `{table.END}`"
    assert said + ": the table goes between them" in done.stderr.splitlines()
    assert "Traceback" not in done.stderr
    assert page.read_text(encoding="utf-8") == text
    assert list(tmp_path.iterdir()) == [page]  # no half-written file left beside it


def test_each_row_carries_the_number_of_the_table_its_benchmark_printed_it_in() -> None:
    def two_tables(argv: list[str]) -> None:
        print_table("rebuild", [{"backend": "SQLite (file)", "what": f"rebuild {argv[0]}", "ours": "1"}])
        print_table("load", [{"backend": "SQLite (file)", "what": "load", "ours": "2"}])

    def one_table(argv: list[str]) -> None:
        print_table("door", [{"backend": "SQLite (file)", "what": "door", "ours": "3"}])

    rows = table.run_all(
        [
            table.Benchmark("two", two_tables, ["x"], ("2", "3")),
            table.Benchmark("one", one_table, [], ("6",)),
        ]
    )

    assert [(r["#"], r["what"]) for r in rows] == [("2", "rebuild x"), ("3", "load"), ("6", "door")]


def test_the_heading_names_the_sizes_the_figures_came_from_not_the_page_written() -> None:
    given = ["--write", "docs/benchmarks.md", "--db", "both", "--writers", "2", "--write=x.md", "--door-n", "3"]
    assert table._without_write(given) == ["--db", "both", "--writers", "2", "--door-n", "3"]
    assert table._without_write(["--write", "--writers", "2"]) == ["--writers", "2"]  # the default page


def test_two_pages_get_the_same_table_from_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--write docs/benchmarks.md --write README.md`: one run of the benchmarks (here its rows are
    given: each benchmark's own run is tests/bench/test_smoke.py), the same block in both pages."""
    runs: list[int] = []
    monkeypatch.setattr(table, "run_all", lambda chosen: runs.append(len(chosen)) or ROWS)
    pages = [tmp_path / "benchmarks.md", tmp_path / "README.md"]
    for page in pages:
        page.write_text(f"# {page.stem}\n\n{table.BEGIN}\nold\n{table.END}\n\nafter\n", encoding="utf-8")
    table.main(["--db", "sqlite", "--write", str(pages[0]), "--write", str(pages[1])])
    assert len(runs) == 1
    first, second = (page.read_text(encoding="utf-8") for page in pages)
    assert "old" not in first and "old" not in second
    assert first.split(table.BEGIN, 1)[1] == second.split(table.BEGIN, 1)[1]
    assert "96%" in first and first.startswith("# benchmarks") and second.startswith("# README")
