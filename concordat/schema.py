"""The store's tables, made or brought up to date in one step (`concordat migrate`), never per command.

eventsourcing makes its tables when a recorder is built, unless told not to (`CREATE_TABLE`). Left to
that, every CLI command, worker and web process ran the store's DDL when it opened the store; on
PostgreSQL two at once failed with "tuple concurrently updated", and eight workers opening a new
database together crashed. So every process opens the store with `CREATE_TABLE=no`
(`bootstrap.store_env`), and the DDL runs here:

- under a lock, so that many processes starting at once make the tables once: a PostgreSQL advisory
  lock on the store's own database (held by a connection of its own for the length of the step), or
  an exclusive file lock beside a SQLite store;
- then the store records the schema's version in its own key-value table (`concordat_store`).

`concordat migrate` runs it; `concordat up` and the deployment run it before their processes start.
A process that opens a store whose recorded version is older than its own (a new store, or one
written by an earlier release) runs the step itself, under the same lock, so that a first command on
a new store still works; a store already at this version costs one small read to check.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from concordat import private, store_key
from concordat.settings import Settings

# Bump when a release adds or changes a table or index: processes then bring older stores up to it.
# 2: PostgreSQL events carry their transaction id, and ids are issued after commit (`projections/pg_recorder.py`).
SCHEMA_VERSION = 2
NAME = "schema_version"
# pg_advisory_lock's key: one number for "the Concordat schema step" (any fixed bigint would do).
LOCK_KEY = 0x436F6E636F7264  # "Concord"

_ensured: set[str] = set()  # the stores this process has seen at SCHEMA_VERSION


@dataclass(frozen=True)
class Migration:
    """What one run of the step found and did."""

    store: str
    found: int  # the version recorded before (0: none)
    version: int

    @property
    def changed(self) -> bool:
        return self.found != self.version


def _identity(settings: Settings) -> str:
    return settings.database_url if settings.uses_postgres else str(settings.data_dir.resolve())


def recorded_version(datastore: Any) -> int:
    """The schema version a store records, 0 if it records none (or has no tables yet)."""
    postgres = store_key.is_postgres(datastore)
    sql = store_key.statements(postgres, datastore.schema if postgres else "")
    try:
        with datastore.transaction(commit=False) as cursor:
            cursor.execute(sql["read"], (NAME,))
            row = cursor.fetchone()
    except Exception:  # noqa: BLE001 - "no such table" in either database's words: not made yet
        return 0
    if row is None:
        return 0
    value = row[0] if isinstance(row, tuple | list) else row["value"]
    return int(value) if str(value).isdigit() else 0


@contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    """The step's lock: a PostgreSQL advisory lock, or a file lock beside a SQLite store."""
    if settings.uses_postgres:
        import psycopg

        with psycopg.connect(settings.database_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        return
    path = private.make_file(settings.data_dir.resolve() / "migrate.lock")
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def migrate(settings: Settings) -> Migration:
    """Make or bring up to date every table of the store and its views, once, under the lock."""
    from concordat import bootstrap  # bootstrap opens stores through `ensure`: imported late
    from concordat.web.throttle import create_tables as create_throttle_tables
    from domain.application import CaseService
    from projections import pg_recorder

    bootstrap.check_database(settings)  # a wrong database URL named at once, not as a lock's failure
    env = {**bootstrap.store_env(settings), "CREATE_TABLE": "yes"}
    with _locked(settings):
        # The events' and snapshots' tables, as the application builds its recorders (snapshots on,
        # whatever this process's interval: another process may take them).
        app = CaseService(env, policy=bootstrap.load_policy(settings), snapshot_interval=1)
        try:
            datastore = app.recorder.datastore  # type: ignore[attr-defined]
            found = recorded_version(datastore)
            postgres = store_key.is_postgres(datastore)
            sql = store_key.statements(postgres, datastore.schema if postgres else "")
            with datastore.transaction(commit=True) as cursor:
                cursor.execute(sql["create"])
                if postgres:  # for either recorder, so that a store can be switched between them
                    table = app.recorder.events_table_name  # type: ignore[attr-defined]
                    for statement in pg_recorder.migration_statements(datastore.schema, table):
                        cursor.execute(statement)
            if postgres:  # events a stamped writer left without an id, numbered before a locking one adds any
                pg_recorder.StampedPostgresApplicationRecorder(datastore, events_table_name=table).stamp()
            create_throttle_tables(datastore)
            views = {**bootstrap.view_classes(settings), "outbox": bootstrap.outbox_class(settings)}
            for name, view_class in views.items():
                view = InfrastructureFactory.construct(env=Environment(name, env)).tracking_recorder(view_class)
                view.datastore.close()
            with datastore.transaction(commit=True) as cursor:
                cursor.execute(sql["set"], (NAME, str(SCHEMA_VERSION)))
        finally:
            app.close()
    _ensured.add(_identity(settings))
    return Migration(store=bootstrap.describe_store(settings), found=found, version=SCHEMA_VERSION)


def forget(settings: Settings) -> None:
    """Check the store's schema again at the next open (its tables were changed outside this process)."""
    _ensured.discard(_identity(settings))


def ensured(settings: Settings) -> bool:
    """Whether this process has seen the store at this release's schema version."""
    return _identity(settings) in _ensured


def ensure(settings: Settings, datastore: Any) -> None:
    """Run the step if the store's recorded version is older than this release's (once a process)."""
    key = _identity(settings)
    if key in _ensured:
        return
    if recorded_version(datastore) < SCHEMA_VERSION:
        migrate(settings)
        if store_key.is_postgres(datastore):
            datastore.register_type_adapters()  # its recorders looked for the event type before it existed
    _ensured.add(key)
