"""The CLI starts fast because each command imports only what it needs (issue 20: `concordat show` in
well under 300 ms). Checked without timing, which a shared machine makes noisy: a real `concordat`
process runs the command against a real store, and the modules it imported are compared with the
ones it must never need. An eager import added anywhere on the path (the CLI's top, bootstrap, the
domain) brings one of them in, and the test names it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from eventsourcing.utils import get_topic

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CASE_KINDS, SNAPSHOTTED
from domain.directory import Directory
from domain.policy import ADMIN_ROLE

# What a read needs none of: Temporal and our workflows and workers, the web stack, the metrics,
# the bank holidays (a read computes no deadline), the tests' own libraries. (pydantic-settings it
# does load: the settings are read with it, a library kept rather than our own parser.)
NEVER_FOR_A_READ = (
    "temporalio",
    "workflows",
    "workers",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "httpx",
    "prometheus_client",
    "holidays",
    "hypothesis",
    "concordat.engine",
    "concordat.commands",
    "concordat.web",
    "concordat.processes",
    "concordat.up",
)
# ... and on a SQLite store, nothing of PostgreSQL.
NEVER_ON_SQLITE = ("psycopg", "psycopg_pool", "eventsourcing.postgres")
# What printing the version or a command's help needs: the command tree, not the store.
NEVER_FOR_HELP = (*NEVER_FOR_A_READ, *NEVER_ON_SQLITE, "eventsourcing", "domain.application", "concordat.bootstrap")

# Runs the CLI's entry point as `python -m concordat` does, then writes the names of the modules
# loaded to the file named by argv[1] (the command's own output stays on stdout).
PROBE = """
import json, sys
from concordat.cli import _main
out, argv = sys.argv[1], sys.argv[2:]
try:
    _main(argv)
    code = 0
except SystemExit as done:
    code = done.code
with open(out, "w") as fh:
    json.dump({"code": code, "modules": sorted(sys.modules)}, fh)
"""


@pytest.fixture
def store(settings: Settings) -> tuple[dict[str, str], str]:
    """A store with one decided proposal and its views up to date, and the environment of a person
    signed in with a token: the CLI's env and the case's reference."""
    app = bootstrap.open_cases(settings)
    try:
        people = Directory(app)
        root = Actor("root", ADMIN_ROLE)
        people.add_user("root", [ADMIN_ROLE], by=Actor("tests", "shell"), command_id="seed-root")
        people.add_user("jo", ["jcu_lead"], by=root, command_id="seed-jo")
        token = people.issue_token("jo", by=root, command_id="seed-token").token
        reference = app.start_proposal(
            actor=Actor.parse("jcu_lead:jo"),
            title="Speech and language therapy",
            kind="procurement",
            value_pence=30_000_000,
            parties=["PCC", "CPCCG"],
            public_health=False,
            command_id=f"s-{uuid.uuid4()}",
        ).reference
        app.decide(
            reference,
            actor=Actor.parse("lead_director:dan"),
            stage="jcu",
            outcome="refer",
            minutes_ref="J/1",
            command_id="d-1",
        )
    finally:
        app.close()
    from concordat.replay import replay

    replay(settings, console=None)  # the views caught up, as a running projection runner keeps them
    env = clean_env()
    env.update(
        CONCORDAT_DATA_DIR=str(settings.data_dir),
        CONCORDAT_DATABASE_URL=settings.database_url,
        CONCORDAT_TOKEN=token,
        CONCORDAT_SNAPSHOT_INTERVAL=str(settings.snapshot_interval),
    )
    return env, reference


def clean_env() -> dict[str, str]:
    """This process's environment without its CONCORDAT_ settings (but the test run's cipher key)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CONCORDAT_") or k == "CONCORDAT_CIPHER_KEY"}


def loaded(env: dict[str, str], tmp_path: Path, *args: str) -> set[str]:
    """The modules a `concordat ARGS` process loaded; the command must have succeeded."""
    out = tmp_path / f"modules-{uuid.uuid4().hex[:8]}.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and out.exists(), done.stdout + done.stderr
    found = json.loads(out.read_text())
    assert found["code"] in (0, None), done.stdout + done.stderr
    return set(found["modules"])


def offending(modules: set[str], never: tuple[str, ...]) -> list[str]:
    """The entries of `never` that `modules` holds (a package, or any module in it)."""
    return sorted(p for p in never if any(m == p or m.startswith(p + ".") for m in modules))


@pytest.mark.parametrize("command", ["show", "history", "list"])
def test_a_read_imports_nothing_of_temporal_the_web_or_the_workers(
    command: str, store: tuple[dict[str, str], str], settings: Settings, tmp_path: Path
) -> None:
    env, reference = store
    args = [command] if command == "list" else [command, reference]
    modules = loaded(env, tmp_path, *args)
    # `list` reads a view, whose module holds its PostgreSQL variant too (projections/tables.py).
    sqlite_only = not settings.uses_postgres and command != "list"
    never = (*NEVER_FOR_A_READ, *NEVER_ON_SQLITE) if sqlite_only else NEVER_FOR_A_READ
    assert offending(modules, never) == []
    assert "domain.application" in modules  # the probe ran the command for real, against the store


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["decide", "--help"], ["show", "--help"]])
def test_the_version_and_help_import_only_the_command_tree(args: list[str], tmp_path: Path) -> None:
    modules = loaded({**clean_env(), "CONCORDAT_DATA_DIR": str(tmp_path)}, tmp_path, *args)
    assert offending(modules, NEVER_FOR_HELP) == []
    assert "click" in modules


def test_the_names_that_stand_in_for_imports_name_the_real_classes() -> None:
    """Where a module names classes instead of importing them, the names are the classes'."""
    assert bootstrap.VIEW_NAMES == tuple(p.name for p in bootstrap.PROJECTIONS)
    from projections.outbox import OutboxProjection

    assert bootstrap.OUTBOX_VIEW == OutboxProjection.name
    from domain.fund_opening import FundOpening
    from domain.funding import FundingChange
    from domain.proposal import Proposal
    from domain.variation import Variation

    assert SNAPSHOTTED == tuple(get_topic(c) for c in (Proposal, Variation, FundingChange, FundOpening))
    import importlib

    for module, name in CASE_KINDS:
        assert isinstance(getattr(importlib.import_module(module), name), type)
