"""The store's tables are made once, by one step under a lock (`concordat migrate`), never by each
command: eight processes opening a new store at once all start, and once the schema is in place
opening the store, acting on a case and reading the views run no DDL at all (PostgreSQL's own event
trigger counts every DDL command the database is given)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from concordat import bootstrap, schema
from concordat.settings import Settings
from domain.actor import Actor

PROCESSES = 8
OPEN_EVERYTHING = (
    "from concordat import bootstrap; from concordat.settings import Settings; s = Settings(); "
    "bootstrap.open_cases(s).close(); [bootstrap.open_view(s, n).datastore.close() for n in bootstrap.view_classes(s)]"
)


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCORDAT_")}
    env.update(CONCORDAT_DATA_DIR=str(settings.data_dir), CONCORDAT_DATABASE_URL=settings.database_url)
    return env


def test_eight_processes_opening_a_new_store_at_once_all_start(settings: Settings) -> None:
    env = _env(settings)
    started = [
        subprocess.Popen([sys.executable, "-c", OPEN_EVERYTHING], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(PROCESSES)
    ]
    failures = [p.stderr.read() for p in started if p.wait(timeout=120) != 0]  # type: ignore[union-attr]
    assert not failures, failures[0]
    schema.forget(settings)
    app = bootstrap.open_cases(settings)
    assert schema.recorded_version(app.recorder.datastore) == schema.SCHEMA_VERSION  # type: ignore[attr-defined]


@pytest.fixture
def ddl_log(postgres_url: str) -> str:
    """Every DDL command the database runs from now on, in `ddl_seen` (an event trigger)."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE ddl_seen (tag text, at timestamptz DEFAULT now())")
        conn.execute(
            "CREATE FUNCTION note_ddl() RETURNS event_trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO ddl_seen (tag) VALUES (tg_tag); END $$"
        )
        conn.execute("CREATE EVENT TRIGGER note_ddl ON ddl_command_start EXECUTE FUNCTION note_ddl()")
    return postgres_url


def _ddl(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT tag FROM ddl_seen ORDER BY at")]


def test_once_migrated_no_process_runs_ddl(ddl_log: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=ddl_log)
    first = schema.migrate(settings)
    assert first.changed and first.found == 0 and "CREATE TABLE" in _ddl(ddl_log)
    made = len(_ddl(ddl_log))
    again = subprocess.run([sys.executable, "-c", OPEN_EVERYTHING], env=_env(settings), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    schema.forget(settings)  # as a new process would
    app = bootstrap.open_cases(settings)
    app.start_proposal(
        actor=Actor.parse("jcu_lead:jo"),
        command_id="c1",
        title="Schema once",
        kind="procurement",
        value_pence=1_000,
        parties=["PCC"],
        public_health=False,
    )
    assert len(_ddl(ddl_log)) == made  # nothing made again: no DDL outside the step
    assert not schema.migrate(settings).changed  # the step itself, run again, finds it up to date
