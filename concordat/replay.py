"""`concordat audit replay`: rebuild every view from event zero, then swap the new views in.

Each view is rebuilt into a fresh place (a new SQLite file beside the old one; a fresh PostgreSQL
schema) by the same projection code the runner uses, a section of notifications at a time with its
tracking position (`projections.bulk`: events no view projects are skipped by topic, the rest read as
fields, and each view's rows for the section written grouped, in one transaction). Only when every view is complete are they swapped in, each in one transaction (SQLite:
the rebuilt rows copied over the live ones inside the live file; PostgreSQL: the rebuilt tables moved
into place). Interrupted half-way, the fresh places are removed and the old views are untouched.
An event a view cannot project is quarantined in the rebuilt view, as the runner would (the section
that holds it is redone one event at a time), and the rebuild goes on.

A running projection runner (the one `concordat up` starts, or a deployment's) steps aside for the
replay and comes back by itself (`concordat.leadership.runner_paused`): the replay asks it to pause,
waits until it has let go of the views, rebuilds and swaps them while holding them, and lets go. The
runner then carries on from the rebuilt views' own positions, so an event recorded during the replay
is projected once, after it. A replay that crashes lets go as its process ends, and the runner
resumes the same way.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.utils import Environment
from psycopg import sql
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from concordat import bootstrap
from concordat.leadership import PAUSE_TIMEOUT_SECONDS, runner_paused
from concordat.settings import Settings
from projections.bulk import BulkProjector
from projections.quarantine import INFRASTRUCTURE, Guard

SECTION = 1000


class _EventByEvent(Exception):
    """An aggregate of this section has an event in quarantine: its later events wait behind it."""


@dataclass(frozen=True)
class ReplaySummary:
    events: int
    views: list[str]
    seconds: float
    # How the events were taken (`projections.bulk`): skipped by topic, read as fields, decoded in
    # full (older class versions); and the sections redone one event at a time (a quarantine).
    projecting_seconds: float = 0.0  # of `seconds`: the sections alone, without making and swapping the views
    skipped: int = 0
    fields: int = 0
    decoded: int = 0
    event_by_event_sections: int = 0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else float(self.events)


def replay(
    settings: Settings,
    *,
    console: Console | None = None,
    interrupt: Callable[[int], None] | None = None,
    pause_timeout: float = PAUSE_TIMEOUT_SECONDS,
) -> ReplaySummary:
    """Rebuild all views and swap them in, with the projection runner paused (waiting up to
    `pause_timeout` seconds for it to step aside). `interrupt(n)` is called after each event (tests
    use it to stop half-way, as Ctrl-C would)."""
    with runner_paused(settings, timeout=pause_timeout):
        pause = settings.fault_pause_before_swap
        return _replay(settings, console, interrupt, pause)


def _replay(
    settings: Settings, console: Console | None, interrupt: Callable[[int], None] | None, pause: float
) -> ReplaySummary:
    app = bootstrap.open_cases(settings)
    total = app.max_notification_id()
    started = time.monotonic()
    staging = _Staging(settings)
    try:
        views = staging.views()
        projections = [p(view=views[p.name]) for p in bootstrap.PROJECTIONS]
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>8.0f} events/s"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=False, disable=console is None) as progress:
            task = progress.add_task("replaying events", total=total, rate=0.0)
            guards = [Guard(projection, app.mapper, app.name) for projection in projections]
            bulk = BulkProjector(projections, app.mapper)
            done, start, slow_sections = 0, 1, 0
            projecting = time.monotonic()
            while start <= total:
                section = app.recorder.select_notifications(start=start, limit=SECTION, stop=total)
                if not section:
                    break
                before, flushing = done, False
                try:
                    with ExitStack() as batch:  # one transaction per view per section, not per event
                        for view in views.values():
                            batch.enter_context(view.batched())
                        held = any(guard.held for guard in guards)
                        for notification in section:
                            if held and any(str(notification.originator_id) in guard.held for guard in guards):
                                raise _EventByEvent
                            try:
                                bulk.project(notification, Tracking(app.name, notification.id))
                            except INFRASTRUCTURE:
                                raise
                            except Exception as err:
                                raise _EventByEvent from err
                            done += 1
                            if interrupt is not None:
                                interrupt(done)
                        flushing = True  # the batches write their held rows as the block ends
                except Exception as err:
                    if isinstance(err, INFRASTRUCTURE) or not (flushing or isinstance(err, _EventByEvent)):
                        raise
                    # An event the batch could not take: the section again, one event at a time.
                    done = before
                    slow_sections += 1
                    for notification in section:
                        for guard in guards:  # a view whose batch committed already has its position
                            if notification.id > (guard.view.max_tracking_id(app.name) or 0):
                                guard.project(notification)  # or quarantine it, as the runner would
                        done += 1
                        if interrupt is not None:
                            interrupt(done)
                elapsed = time.monotonic() - started
                progress.update(task, completed=done, rate=done / elapsed if elapsed else 0.0)
                start = section[-1].id + 1
        projecting = time.monotonic() - projecting
        if pause:
            time.sleep(pause)  # fault tests only: a window in which new events arrive before the swap
        staging.swap_in()
    finally:
        staging.discard()
    return ReplaySummary(
        events=done,
        views=[p.name for p in bootstrap.PROJECTIONS],
        seconds=time.monotonic() - started,
        projecting_seconds=projecting,
        skipped=bulk.counts.skipped,
        fields=bulk.counts.fields,
        decoded=bulk.counts.decoded,
        event_by_event_sections=slow_sections,
    )


class _Staging:
    """Where the new views are built, and how they replace the old ones."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The fresh views' tables are made here, in their own fresh place (the step that makes the
        # store's tables, `concordat migrate`, makes the live views' tables, not these).
        self.env = {**bootstrap.store_env(settings), "CREATE_TABLE": "yes"}
        self.tag = uuid.uuid4().hex[:8]
        self.schema = f"concordat_rebuild_{self.tag}"
        self.built: dict[str, Any] = {}
        self.swapped = False

    def _file(self, name: str) -> Path:
        return Path(self.env[f"{name.upper()}_SQLITE_DBNAME"])

    def views(self) -> dict[str, Any]:
        classes = bootstrap.view_classes(self.settings)
        if self.settings.uses_postgres:
            with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
        for name, cls in classes.items():
            env = dict(self.env)
            if self.settings.uses_postgres:
                env[f"{name.upper()}_POSTGRES_SCHEMA"] = self.schema
            else:
                staged = self._file(name).with_name(f"{name}.rebuild-{self.tag}.sqlite")
                env[f"{name.upper()}_SQLITE_DBNAME"] = str(staged)
            factory = InfrastructureFactory.construct(env=Environment(name, env))
            self.built[name] = factory.tracking_recorder(cls)
        return self.built

    def swap_in(self) -> None:
        for view in self.built.values():
            view.datastore.close()  # flush the staged views (SQLite checkpoints its WAL on close)
        if self.settings.uses_postgres:
            self._swap_postgres()
        else:
            for name, view in self.built.items():
                self._swap_sqlite(name, view)
        self.swapped = True

    def _swap_sqlite(self, name: str, view: Any) -> None:
        """Copy the rebuilt rows and position over the live ones in one transaction, inside the live
        file: readers see the old view or the new, never a mix, and WAL files stay consistent."""
        staged = self._file(name).with_name(f"{name}.rebuild-{self.tag}.sqlite")
        con = sqlite3.connect(self._file(name), timeout=30, isolation_level=None)
        try:
            con.execute("ATTACH DATABASE ? AS staged", (str(staged),))
            con.execute("BEGIN IMMEDIATE")
            for table in (*view.TABLES, view.QUARANTINE_TABLE):
                con.execute(f"DELETE FROM main.{table}")  # noqa: S608 - our own table names
                con.execute(f"INSERT INTO main.{table} SELECT * FROM staged.{table}")  # noqa: S608
            # The position, but not the recorder's own migration marker.
            positions = "FROM {}.tracking WHERE application_name != '__migration__'"
            con.execute("DELETE " + positions.format("main"))
            con.execute("INSERT INTO main.tracking SELECT * " + positions.format("staged"))
            con.execute("COMMIT")
            con.execute("DETACH DATABASE staged")
        finally:
            con.close()

    def _swap_postgres(self) -> None:
        target = bootstrap.store_env(self.settings).get("POSTGRES_SCHEMA", "public")
        with psycopg.connect(self.settings.database_url) as conn, conn.transaction():
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (self.schema,)
                )
            ]
            for table in tables:
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}.{}").format(sql.Identifier(target), sql.Identifier(table))
                )
                conn.execute(
                    sql.SQL("ALTER TABLE {}.{} SET SCHEMA {}").format(
                        sql.Identifier(self.schema), sql.Identifier(table), sql.Identifier(target)
                    )
                )

    def discard(self) -> None:
        for view in self.built.values():
            view.datastore.close()  # release the staged file or pool before it is dropped
        if self.settings.uses_postgres:
            with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))
        else:
            for name in self.built:
                for leftover in self._file(name).parent.glob(f"{name}.rebuild-{self.tag}.sqlite*"):
                    leftover.unlink(missing_ok=True)
