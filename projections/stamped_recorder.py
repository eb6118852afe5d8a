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

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import (
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier, Literal


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


class StampedPostgresApplicationRecorder(PostgresApplicationRecorder):
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

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        super().insert_events(stored_events, **kwargs)
        return None

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
