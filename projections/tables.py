"""Tables for views, on SQLite or PostgreSQL, written in the same transaction as their tracking row.

A view is an eventsourcing tracking recorder with tables of its own. Its rows and the position of
the event that produced them (`Tracking`) commit together, so a view never holds an event's effect
without its position, nor the position without the effect: a restarted runner neither skips nor
repeats an event. SQL is written once, with `:name` parameters and `{table}` placeholders; each store
class turns it into its own dialect.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder
from psycopg.sql import SQL, Identifier

Statement = tuple[str, dict[str, Any]]


class ViewTables(TrackingRecorder, ABC):
    """What a view's own code may rely on, whatever the store."""

    # CREATE TABLE / INDEX statements; `{t_<name>}` placeholders stand for the tables in `TABLES`.
    TABLES: ClassVar[Sequence[str]] = ()
    DDL: ClassVar[Sequence[str]] = ()

    @abstractmethod
    def write(self, statements: Sequence[Statement], tracking: Tracking) -> None:
        """Run `statements` and record `tracking`, in one transaction."""

    @abstractmethod
    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a SELECT, as dicts."""

    @abstractmethod
    def clear(self) -> None:
        """Empty the view and forget its position, so that it rebuilds from event zero.
        (The recorder's own migration marker row stays.)"""

    # --- batching, for a rebuild -------------------------------------------------------------

    _pending: list[Statement] | None = None
    _pending_tracking: Tracking | None = None

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Inside, writes are held and go to the database in one transaction when the block ends,
        with the last event's position: a rebuild commits once per section, not once per event.
        The all-or-nothing promise is kept per section; an exception drops the held writes (the
        position was not moved either). Only for a writer that does not read its own view meanwhile."""
        self._pending, self._pending_tracking = [], None
        try:
            yield
            held, tracking = self._pending, self._pending_tracking
            self._pending = None
            if tracking is not None:
                self.write(held, tracking)
        finally:
            self._pending, self._pending_tracking = None, None

    def _hold(self, statements: Sequence[Statement], tracking: Tracking) -> bool:
        if self._pending is None:
            return False
        self._pending.extend(statements)
        self._pending_tracking = tracking
        return True


class SQLiteViewTables(SQLiteTrackingRecorder, ViewTables, ABC):
    def _names(self) -> dict[str, str]:
        return {f"t_{t}": t for t in self.TABLES}

    def construct_create_table_statements(self) -> list[str]:
        names = self._names()
        return [*super().construct_create_table_statements(), *(s.format(**names) for s in self.DDL)]

    def write(self, statements: Sequence[Statement], tracking: Tracking) -> None:
        if self._hold(statements, tracking):
            return
        names = self._names()
        with self.datastore.transaction(commit=True) as c:
            for sql, params in statements:
                c.execute(sql.format(**names), params)
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
        names = self._names()
        self.sql_create_statements.extend(SQL(s).format(**names) for s in self.DDL)

    def _names(self) -> dict[str, Identifier]:
        schema = self.datastore.schema
        return {f"t_{t}": Identifier(schema, t) for t in self.TABLES}

    def _sql(self, sql: str) -> Any:
        return SQL(_PARAM.sub(r"%(\1)s", sql)).format(**self._names())

    def write(self, statements: Sequence[Statement], tracking: Tracking) -> None:
        if self._hold(statements, tracking):
            return
        with self.datastore.transaction(commit=True) as curs:
            for sql, params in statements:
                curs.execute(self._sql(sql), params)
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
