"""A PostgreSQL event recorder whose writers do not queue behind one lock (`CONCORDAT_PG_RECORDER=stamped`).

eventsourcing's PostgreSQL recorder takes `LOCK TABLE … IN EXCLUSIVE MODE` in every insert, so that
notification ids commit in the order they are issued and a reader tailing the log never passes over
an id that a slower transaction fills in later. The price is that writes to *different* cases wait
for each other's commit: eight writers run about as fast as one.

This recorder keeps the promise without the lock:

- A writer inserts its events with no notification id yet, and with its own transaction id
  (`pg_current_xact_id()`). Nothing else: no table lock, so writers to different cases overlap.
- A reader first *stamps* ids on committed events that have none, then reads by id as eventsourcing
  does. Stamping is one statement under a transaction-scoped advisory lock: one stamper at a time,
  each numbering on from the highest id, in (transaction id, case, version) order, and committing
  before the next begins. So ids commit in the order they are issued, as under the table lock (and
  stay dense), and only readers ever wait for each other, for a few milliseconds.

Why not keep issuing ids at insert and let readers read only below the oldest transaction still in
flight (`pg_snapshot_xmin(pg_current_snapshot())`)? Ids issued at insert are not in transaction-id
order: transaction A (older) can take id 6 while B (newer) takes id 5 and is still in flight when A
commits; a reader below that horizon reads 6, moves its position past 5, and misses 5 for ever once
B commits. An event store that reads below the horizon must order and track by (transaction id, id),
a pair, where eventsourcing's tracking keeps one number; and a horizon held back by any writing
transaction in the cluster (a view's rebuild, a key rotation) would hold back every projection.
Stamping after commit needs neither. The transaction id is kept on each event: it orders a stamped
batch (older transactions first) and says which transaction wrote what.

The columns this needs (`transaction_id`, a nullable `notification_id`, an index of unstamped rows)
are made by `concordat migrate` (`concordat.schema`) for either recorder, so a store can be switched
between `stamped` and `locking` while every process of it is stopped: stamping keeps the id sequence
at the highest id, so the locking recorder numbers on from there. All processes of one store must use
the same recorder.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier, Literal

# A pooled connection used less than this many seconds ago is handed out without a ping (see `OneTrip`).
PING_AFTER_IDLE = 1.0


def ping_only_idle_connections(datastore: PostgresDatastore) -> None:
    """Ping (`POSTGRES_PRE_PING`) only connections that have sat idle in the pool, not every checkout.

    A ping is a round trip before every statement; on a busy writer it was 12% of a decision. A
    connection returned to the pool within `PING_AFTER_IDLE` seconds is handed out as it is: if the
    database went away since, the statement fails with a connection error, the pool drops that
    connection, and eventsourcing's recorders try again (`retry` on InterfaceError/OperationalError,
    ten times) on a fresh one. A connection that sat idle (across a restart, say) is still pinged
    first, so our own SQL outside the recorders meets a live connection as before."""
    pool = datastore.pool
    ping = pool._check  # noqa: SLF001 - psycopg_pool keeps its check callback here
    if ping is None or getattr(pool, "_concordat_idle_pings", False):
        return

    # When each connection was last returned, by id (psycopg's connections take no attributes). A new
    # connection that happens to reuse a dropped one's id may go unpinged: it has just connected.
    returned_at: dict[int, float] = {}

    def check(conn: Any) -> None:
        if time.monotonic() - returned_at.get(id(conn), 0.0) > PING_AFTER_IDLE:
            ping(conn)

    def returned(conn: Any) -> None:
        returned_at[id(conn)] = time.monotonic()

    pool._check = check  # noqa: SLF001
    pool._reset = returned  # noqa: SLF001 - eventsourcing sets no reset callback of its own
    pool._concordat_idle_pings = True  # type: ignore[attr-defined]  # noqa: SLF001


class OneTrip(PostgresApplicationRecorder):
    """What both of our PostgreSQL recorders add to eventsourcing's: fewer round trips.

    - `select_with_snapshot`: a case's latest snapshot and the events after it in one statement
      (eventsourcing's repository sends two); `domain.application` uses it when the recorder has it.
    - the events' insert in one round trip: BEGIN, the insert (and, for the locking recorder, its
      lock) and COMMIT sent together in one pipeline with one sync. eventsourcing's insert syncs
      four times (its own sync after the insert, then one for each pipeline that psycopg nests
      around a transaction). A unique violation (another writer stored that version first) still
      comes back as eventsourcing's IntegrityError, a RecordConflictError, and nothing is stored.
    - pings only connections that sat idle (`ping_only_idle_connections`)."""

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        ping_only_idle_connections(self.datastore)
        self._with_snapshot: dict[tuple[str, bool], Composed] = {}

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return None
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            try:
                with conn.pipeline():
                    conn.execute("BEGIN")
                    self._insert_events(curs, stored_events, **kwargs)
                    self._insert_stored_events(curs, stored_events, **kwargs)
                    conn.execute("COMMIT")
            except BaseException:
                if conn.info.transaction_status != TransactionStatus.IDLE:
                    conn.rollback()  # the failed transaction ends here, not when the pool finds it
                raise
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)  # the insert's RETURNING

    def _with_snapshot_statement(self, snapshots_table: str, upto: bool) -> Composed:
        key = (snapshots_table, upto)
        if key not in self._with_snapshot:
            schema = Identifier(self.datastore.schema)
            lte = SQL(" AND originator_version <= %(lte)s") if upto else SQL("")
            self._with_snapshot[key] = SQL(
                "WITH snap AS (SELECT originator_version, topic, state FROM {schema}.{snapshots}"
                "  WHERE originator_id = %(id)s{lte} ORDER BY originator_version DESC LIMIT 1)"
                " SELECT true AS snapshot, originator_version, topic, state FROM snap"
                " UNION ALL"
                " SELECT false, originator_version, topic, state FROM {schema}.{events}"
                "  WHERE originator_id = %(id)s{lte}"
                "  AND originator_version > coalesce((SELECT originator_version FROM snap), 0)"
                " ORDER BY snapshot DESC, originator_version"
            ).format(
                schema=schema,
                snapshots=Identifier(snapshots_table),
                events=Identifier(self.events_table_name),
                lte=lte,
            )
        return self._with_snapshot[key]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_with_snapshot(
        self, originator_id: UUID | str, snapshots: Any, lte: int | None = None
    ) -> tuple[StoredEvent | None, list[StoredEvent]] | None:
        """The latest snapshot (at or below `lte`) in `snapshots`' table and the events after it, or
        None when `snapshots` is not a recorder in this database (then read them one by one)."""
        if not isinstance(snapshots, PostgresAggregateRecorder) or snapshots.datastore is not self.datastore:
            return None
        statement = self._with_snapshot_statement(snapshots.events_table_name, lte is not None)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, {"id": originator_id, "lte": lte}, prepare=True)
            rows = curs.fetchall()
        snapshot = None
        events = []
        for row in rows:
            stored = StoredEvent(
                originator_id=originator_id,
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            if row["snapshot"]:
                snapshot = stored
            else:
                events.append(stored)
        return snapshot, events

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_many_with_snapshot(
        self, originator_ids: Sequence[UUID], snapshots: Any
    ) -> dict[UUID, tuple[StoredEvent | None, list[StoredEvent]]] | None:
        """`select_with_snapshot` for several aggregates in one statement (a case and the partnership)."""
        if not isinstance(snapshots, PostgresAggregateRecorder) or snapshots.datastore is not self.datastore:
            return None
        schema = Identifier(self.datastore.schema)
        statement = SQL(
            "WITH snap AS (SELECT DISTINCT ON (originator_id) originator_id, originator_version, topic, state"
            "  FROM {schema}.{snapshots} WHERE originator_id = ANY(%(ids)s)"
            "  ORDER BY originator_id, originator_version DESC)"
            " SELECT true AS snapshot, originator_id, originator_version, topic, state FROM snap"
            " UNION ALL"
            " SELECT false, e.originator_id, e.originator_version, e.topic, e.state FROM {schema}.{events} AS e"
            "  WHERE e.originator_id = ANY(%(ids)s) AND e.originator_version > coalesce("
            "   (SELECT s.originator_version FROM snap AS s WHERE s.originator_id = e.originator_id), 0)"
            " ORDER BY originator_id, snapshot DESC, originator_version"
        ).format(
            schema=schema, snapshots=Identifier(snapshots.events_table_name), events=Identifier(self.events_table_name)
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, {"ids": list(originator_ids)}, prepare=True)
            rows = curs.fetchall()
        found: dict[UUID, tuple[StoredEvent | None, list[StoredEvent]]] = {}
        for row in rows:
            stored = StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            snapshot, events = found.setdefault(row["originator_id"], (None, []))
            if row["snapshot"]:
                found[row["originator_id"]] = (stored, events)
            else:
                events.append(stored)
        return found


class LockingPostgresApplicationRecorder(OneTrip):
    """eventsourcing's recorder as it is (the table lock on every insert), with fewer round trips:
    `CONCORDAT_PG_RECORDER=locking`."""


def migration_statements(schema: str, table: str) -> list[Composed]:
    """The columns and index both recorders share (idempotent): run by `concordat migrate`."""
    s, t = Identifier(schema), Identifier(table)
    return [
        SQL("ALTER TABLE {}.{} ADD COLUMN IF NOT EXISTS transaction_id xid8").format(s, t),
        SQL("ALTER TABLE {}.{} ALTER COLUMN notification_id DROP NOT NULL").format(s, t),
        SQL("CREATE INDEX IF NOT EXISTS {} ON {}.{} (transaction_id) WHERE notification_id IS NULL").format(
            Identifier(f"{table}_unstamped_idx"), s, t
        ),
    ]


class StampedPostgresApplicationRecorder(OneTrip):
    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema, table = Identifier(self.datastore.schema), Identifier(self.events_table_name)
        self.lock_table_statements = []  # the point of this recorder
        self.sql_create_statements.extend(migration_statements(self.datastore.schema, self.events_table_name))
        self.insert_events_statement = SQL(
            "INSERT INTO {schema}.{table} AS t"
            " (originator_id, originator_version, topic, state, notification_id, transaction_id)"
            " SELECT originator_id, originator_version, topic, state, NULL, pg_current_xact_id()"
            " FROM unnest(%s::{schema}.{stored_event_type}[])"
        ).format(schema=schema, table=table, stored_event_type=Identifier(self.stored_event_type_name))
        self.stamp_lock_statement = SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(
            Literal(f"concordat-stamp:{self.datastore.schema}.{self.events_table_name}")
        )
        # One statement: number the committed events that have no id on from the highest id, and keep
        # the id sequence there (for the locking recorder, were the store switched back to it).
        self.stamp_statement = SQL(
            "WITH pending AS ("
            "  SELECT originator_id, originator_version,"
            "   row_number() OVER (ORDER BY transaction_id, originator_id, originator_version) AS n"
            "  FROM {schema}.{table} WHERE notification_id IS NULL),"
            " base AS (SELECT coalesce(max(notification_id), 0) AS b FROM {schema}.{table}),"
            " stamped AS ("
            "  UPDATE {schema}.{table} AS t SET notification_id = base.b + pending.n FROM pending, base"
            "  WHERE t.originator_id = pending.originator_id AND t.originator_version = pending.originator_version"
            "  RETURNING t.notification_id)"
            " SELECT setval(pg_get_serial_sequence({qualified}, 'notification_id'), max(notification_id))"
            " FROM stamped HAVING count(*) > 0"
        ).format(
            schema=schema,
            table=table,
            qualified=Literal(f"{self.datastore.schema}.{self.events_table_name}"),
        )

    # Writing: no lock, no ids; the NOTIFY still wakes subscribers when the writer commits.
    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **_: Any
    ) -> Sequence[int] | None:
        return None  # issued later, by the stamper, in commit-safe order

    # Reading: stamp what has finished, then read by id exactly as eventsourcing does.
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def stamp(self) -> None:
        """Issue ids to every committed event that has none (the lock, the update and the commit are
        sent together: one round trip)."""
        with self.datastore.get_connection() as conn, conn.pipeline(), conn.transaction(), conn.cursor() as curs:
            curs.execute(self.stamp_lock_statement, prepare=True)
            curs.execute(self.stamp_statement, prepare=True)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        self.stamp()
        return super().select_notifications(start, limit, stop, topics, inclusive_of_start=inclusive_of_start)

    def max_notification_id(self) -> int | None:
        self.stamp()
        return super().max_notification_id()
