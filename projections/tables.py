"""Tables for views, on SQLite or PostgreSQL, written in the same transaction as their tracking row.

A view is an eventsourcing tracking recorder with tables of its own. Its rows and the position of
the event that produced them (`Tracking`) commit together, so a view never holds an event's effect
without its position, nor the position without the effect: a restarted runner neither skips nor
repeats an event. SQL is written once, with `:name` parameters and `{table}` placeholders; each store
class turns it into its own dialect.

Every view also keeps a quarantine (`{t_quarantine}`): the events it could not project, each with its
error, recorded with the event's tracking position so that the runner moves past it
(`projections.quarantine`), and released again, without a position, when a retry projects it.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder
from psycopg.sql import SQL, Identifier

Statement = tuple[str, dict[str, Any]]

# One row per event this view could not project. `held_behind` names the earlier quarantined event of
# the same aggregate that this one waits for (it was not tried: a view applies an aggregate's events
# in order); NULL when the event itself failed.
QUARANTINE_DDL = (
    "CREATE TABLE IF NOT EXISTS {t_quarantine} ("
    " application_name TEXT NOT NULL, notification_id BIGINT NOT NULL, originator_id TEXT NOT NULL,"
    " originator_version BIGINT NOT NULL, topic TEXT NOT NULL, error TEXT NOT NULL, held_behind BIGINT,"
    " quarantined_at TEXT NOT NULL, attempts INTEGER NOT NULL, last_attempt_at TEXT NOT NULL,"
    " PRIMARY KEY (application_name, notification_id))",
    "CREATE INDEX IF NOT EXISTS {i_quarantine} ON {t_quarantine} (originator_id, notification_id)",
)
QUARANTINE_COLUMNS = (
    "application_name, notification_id, originator_id, originator_version, topic, error,"
    " held_behind, quarantined_at, attempts, last_attempt_at"
)


class ViewTables(TrackingRecorder, ABC):
    """What a view's own code may rely on, whatever the store."""

    # CREATE TABLE / INDEX statements; `{t_<name>}` placeholders stand for the tables in `TABLES`.
    TABLES: ClassVar[Sequence[str]] = ()
    DDL: ClassVar[Sequence[str]] = ()
    # True for a view that may be rebuilt in bulk (`projections.bulk`): its projection never reads the
    # view while projecting, and its statements for one aggregate's events touch only that
    # aggregate's rows or add to totals (so `plan` may move them past another aggregate's).
    BULK_SAFE: ClassVar[bool] = False

    def write(self, statements: Sequence[Statement], tracking: Tracking) -> None:
        """Run `statements` and record `tracking`, in one transaction. While `releasing` an event,
        its quarantine row is deleted instead: the position moved past it when it was quarantined."""
        if self._hold(statements, tracking):
            return
        if self._releasing is not None:
            if self._releasing != (tracking.application_name, tracking.notification_id):
                raise ValueError(f"releasing {self._releasing}, not {tracking}")
            self.execute(
                [
                    *statements,
                    (
                        "DELETE FROM {t_quarantine} WHERE application_name = :application_name AND notification_id = :id",
                        {"application_name": tracking.application_name, "id": tracking.notification_id},
                    ),
                ]
            )
            return
        self.execute(statements, tracking)

    @abstractmethod
    def execute(self, statements: Sequence[Statement], tracking: Tracking | None = None) -> None:
        """Run `statements` (and record `tracking`, if given) in one transaction."""

    @abstractmethod
    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a SELECT, as dicts."""

    @abstractmethod
    def clear(self) -> None:
        """Empty the view and forget its position, so that it rebuilds from event zero.
        (The recorder's own migration marker row stays.)"""

    # --- the quarantine -----------------------------------------------------------------------

    _releasing: tuple[str, int] | None = None

    def quarantine(self, row: dict[str, Any], tracking: Tracking) -> None:
        """Record an event this view could not project, and move its position past it, together."""
        self.execute(
            [
                (
                    f"INSERT INTO {{t_quarantine}} ({QUARANTINE_COLUMNS}) VALUES (:application_name,"
                    " :notification_id, :originator_id, :originator_version, :topic, :error, :held_behind,"
                    " :quarantined_at, 1, :quarantined_at)",
                    row,
                )
            ],
            tracking,
        )

    def quarantined(self, application_name: str) -> list[dict[str, Any]]:
        """The events this view holds back, oldest first."""
        return self.query(
            f"SELECT {QUARANTINE_COLUMNS} FROM {{t_quarantine}}"
            " WHERE application_name = :application_name ORDER BY notification_id",
            {"application_name": application_name},
        )

    def quarantined_count(self, application_name: str) -> int:
        return int(
            self.query(
                "SELECT count(*) AS n FROM {t_quarantine} WHERE application_name = :application_name",
                {"application_name": application_name},
            )[0]["n"]
        )

    def first_quarantined(self, application_name: str, originator_id: str) -> int | None:
        """The earliest event of this aggregate the view holds back, if any."""
        rows = self.query(
            "SELECT min(notification_id) AS n FROM {t_quarantine}"
            " WHERE application_name = :application_name AND originator_id = :originator_id",
            {"application_name": application_name, "originator_id": originator_id},
        )
        return rows[0]["n"] if rows and rows[0]["n"] is not None else None

    def held_originators(self, application_name: str) -> set[str]:
        rows = self.query(
            "SELECT DISTINCT originator_id FROM {t_quarantine} WHERE application_name = :application_name",
            {"application_name": application_name},
        )
        return {r["originator_id"] for r in rows}

    def retry_failed(self, application_name: str, notification_id: int, error: str, at: str) -> None:
        self.execute(
            [
                (
                    "UPDATE {t_quarantine} SET error = :error, held_behind = NULL, attempts = attempts + 1,"
                    " last_attempt_at = :at WHERE application_name = :application_name AND notification_id = :id",
                    {"error": error, "at": at, "application_name": application_name, "id": notification_id},
                )
            ]
        )

    @contextmanager
    def releasing(self, application_name: str, notification_id: int) -> Iterator[None]:
        """Inside, the projection's write of this quarantined event replaces its quarantine row."""
        self._releasing = (application_name, notification_id)
        try:
            yield
        finally:
            self._releasing = None

    # --- batching, for a rebuild -------------------------------------------------------------

    _pending: list[tuple[Hashable, Statement]] | None = None
    _pending_tracking: Tracking | None = None
    _pending_key: Hashable = None

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Inside, writes are held and go to the database in one transaction when the block ends,
        with the last event's position: a rebuild commits once per section, not once per event.
        The all-or-nothing promise is kept per section; an exception drops the held writes (the
        position was not moved either). Only for a writer that does not read its own view meanwhile.

        The held statements go out grouped (`plan`): the same statement text once, with every row's
        parameters (`executemany`). Statements held for different aggregates (`hold_for`) may change
        places to join a group; one aggregate's keep their order. That is safe because a view's
        statements for one aggregate's events touch only that aggregate's rows, or add to a total
        (the public-health sums), which does not depend on order. If the grouped statements fail (a
        row the database refuses), nothing of the section is written and the caller redoes it one
        event at a time, in the order of the log."""
        self._pending, self._pending_tracking, self._pending_key = [], None, None
        try:
            yield
            held, tracking = self._pending, self._pending_tracking
            self._pending = None
            if tracking is not None:
                self.execute_grouped(plan(held), tracking)
        finally:
            self._pending, self._pending_tracking, self._pending_key = None, None, None

    def advance(self, tracking: Tracking) -> None:
        """An event that changes no row of this view: only its position (`write([], tracking)`)."""
        if self._pending is None:
            self.write([], tracking)
        else:
            self._pending_tracking = tracking

    def hold_for(self, key: Hashable) -> None:
        """The statements held next are for this aggregate (by default: one aggregate, the log's order)."""
        self._pending_key = key

    def _hold(self, statements: Sequence[Statement], tracking: Tracking) -> bool:
        if self._pending is None:
            return False
        key = self._pending_key
        self._pending.extend((key, statement) for statement in statements)
        self._pending_tracking = tracking
        return True

    @abstractmethod
    def execute_grouped(self, groups: Sequence[Group], tracking: Tracking) -> None:
        """Run each group's statement once for each of its rows, in order, and record `tracking`,
        in one transaction."""


Group = tuple[str, list[dict[str, Any]]]


def plan(held: Sequence[tuple[Hashable, Statement]]) -> list[Group]:
    """Held statements as groups of one text with many rows, keeping each key's statements in order.

    The n-th statement held for each key goes in layer n; a layer's statements, which all belong to
    different keys, are grouped by text (in the order each text first appears), and the layers run
    in order. A rebuild's section of new cases is then two layers (their inserts, then their first
    updates), a handful of statements in all, whatever the number of cases."""
    depth: dict[Hashable, int] = {}
    layers: list[dict[str, list[dict[str, Any]]]] = []
    for key, (sql, params) in held:
        n = depth.get(key, 0)
        depth[key] = n + 1
        if n == len(layers):
            layers.append({})
        layers[n].setdefault(sql, []).append(params)
    return [group for layer in layers for group in layer.items()]


class SQLiteViewTables(SQLiteTrackingRecorder, ViewTables, ABC):
    QUARANTINE_TABLE = "quarantine"  # each SQLite view has a file of its own

    def _names(self) -> dict[str, str]:
        return {**{f"t_{t}": t for t in self.TABLES}, "t_quarantine": self.QUARANTINE_TABLE}

    def construct_create_table_statements(self) -> list[str]:
        names = {**self._names(), "i_quarantine": "quarantine_by_originator"}
        return [
            *super().construct_create_table_statements(),
            *(s.format(**names) for s in (*self.DDL, *QUARANTINE_DDL)),
        ]

    def execute(self, statements: Sequence[Statement], tracking: Tracking | None = None) -> None:
        names = self._names()
        with self.datastore.transaction(commit=True) as c:
            for sql, params in statements:
                c.execute(sql.format(**names), params)
            if tracking is not None:
                self._insert_tracking(c, tracking)

    def execute_grouped(self, groups: Sequence[Group], tracking: Tracking) -> None:
        names = self._names()
        with self.datastore.transaction(commit=True) as c:
            for sql, rows in groups:
                c.executemany(sql.format(**names), rows)
            self._insert_tracking(c, tracking)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql.format(**self._names()), params or {})
            return [dict(row) for row in c.fetchall()]  # the datastore's rows are sqlite3.Row

    def clear(self) -> None:
        names = self._names()
        with self.datastore.transaction(commit=True) as c:
            for table in names.values():
                c.execute(f"DELETE FROM {table}")  # noqa: S608 - our own table names
            c.execute("DELETE FROM tracking WHERE application_name != ?", (self.table_migration_identifier,))


_PARAM = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")


class PostgresViewTables(PostgresTrackingRecorder, ViewTables, ABC):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = {**self._names(), "i_quarantine": Identifier(f"{self.quarantine_table}_by_originator")}
        self.sql_create_statements.extend(SQL(s).format(**names) for s in (*self.DDL, *QUARANTINE_DDL))

    @property
    def quarantine_table(self) -> str:
        """`case_list_quarantine` beside `case_list_tracking`: the views share one schema."""
        return self.tracking_table_name.removesuffix("_tracking") + "_quarantine"

    def _names(self) -> dict[str, Identifier]:
        schema = self.datastore.schema
        return {
            **{f"t_{t}": Identifier(schema, t) for t in self.TABLES},
            "t_quarantine": Identifier(schema, self.quarantine_table),
        }

    def _sql(self, sql: str) -> Any:
        return SQL(_PARAM.sub(r"%(\1)s", sql)).format(**self._names())

    def execute(self, statements: Sequence[Statement], tracking: Tracking | None = None) -> None:
        with self.datastore.transaction(commit=True) as curs:
            for sql, params in statements:
                curs.execute(self._sql(sql), params)
            if tracking is not None:
                self._insert_tracking(curs, tracking)

    def execute_grouped(self, groups: Sequence[Group], tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            for sql, rows in groups:
                curs.executemany(self._sql(sql), rows)  # psycopg pipelines the rows: one round trip
            self._insert_tracking(curs, tracking)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql(sql), params or {})
            return [dict(row) for row in curs.fetchall()]

    def clear(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            for table in self._names().values():
                curs.execute(SQL("DELETE FROM {0}").format(table))
            curs.execute(
                SQL("DELETE FROM {0} WHERE application_name != %s").format(
                    Identifier(self.datastore.schema, self.tracking_table_name)
                ),
                (self.table_migration_identifier,),
            )
