"""The docs cannot drift: every command they show runs here, on a real engine, and prints what they say;
and the docs site builds with no warning (`mkdocs build --strict`)."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.docs import clocked, transcripts
from tests.e2e.conftest import running_engine
from tests.people import Tokens, ensure, settings_of

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# Pages whose story takes weeks run on Temporal's time-skipping server, their clock moved by the page.
CLOCKED = [page for page in PAGES if transcripts.parse(page).commands and clocked.clock_of(transcripts.parse(page))]
RUN = [page for page in PAGES if transcripts.parse(page).commands and page not in CLOCKED]


def signed_in(env: dict[str, str], people: dict[str, list[str]]) -> dict[str, str]:
    """A token for each of the page's people, made with their roles by the administrator `root`."""
    if not people:
        return {}
    tokens = Tokens(settings_of(env))
    try:
        for name, roles in people.items():
            for role in roles:
                ensure(tokens.app, f"{role}:{name}")
        return {name: tokens(f"{roles[0]}:{name}") for name, roles in people.items()}
    finally:
        tokens.close()


@pytest.mark.parametrize("path", RUN, ids=[str(page.relative_to(ROOT)) for page in RUN])
def test_every_command_in_the_page_prints_what_the_page_says(path: Path, tmp_path: Path) -> None:
    page = transcripts.parse(path)
    with running_engine(tmp_path / "engine") as engine:
        banner = engine.lines[: next(i for i, line in enumerate(engine.lines) if line.startswith("ready")) + 1]
        session = transcripts.Session(tmp_path, engine.env, banner, signed_in(engine.env, page.people))
        results = [session.run(command) for command in page.commands]
    if os.environ.get("CONCORDAT_DOCS_WRITE") == "1":
        transcripts.write_back(page, results)
    failures = transcripts.report(page, results)
    assert not failures, "the page and the engine disagree:\n" + failures


@pytest.mark.parametrize("path", CLOCKED, ids=[str(page.relative_to(ROOT)) for page in CLOCKED])
async def test_every_command_in_a_page_that_takes_weeks_prints_what_the_page_says(
    path: Path, tmp_path: Path, time_skipping_env: WorkflowEnvironment
) -> None:
    """The same comparison, with `concordat up` on Temporal's time-skipping test server and the
    weeks the page lets pass skipped (tests/docs/clocked.py): the durable timers due meanwhile fire."""
    page = transcripts.parse(path)
    results = await clocked.run_page(page, tmp_path, time_skipping_env, signed_in)
    if os.environ.get("CONCORDAT_DOCS_WRITE") == "1":
        transcripts.write_back(page, results)
    failures = transcripts.report(page, results)
    assert not failures, "the page and the engine disagree:\n" + failures


def test_the_docs_site_builds_without_a_warning(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "index.html").exists()


def test_no_command_in_the_docs_types_a_date_still_to_come() -> None:
    """A date typed into a command would one day pass, and the page would start failing (a variation
    "effective 2027-04-01" is refused once that day has come): a date to come is computed, as
    `--effective "$(date -d '4 months' +%F)"`. Dates in the past (refused as too old) stay put."""
    today = dt.datetime.now(dt.UTC).date()
    future = [
        f"{page.relative_to(ROOT)}:{command.line}: {typed}"
        for page in RUN + CLOCKED
        for command in transcripts.parse(page).commands
        for typed in re.findall(r"\b\d{4}-\d{2}-\d{2}\b", command.text)
        if dt.date.fromisoformat(typed) >= today
    ]
    assert not future, "commands that type a date still to come (compute it instead):\n" + "\n".join(future)


def test_the_readme_is_the_first_five_minutes() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    assert len(readme) < 200, f"README.md has {len(readme)} lines; move the rest to docs/"
