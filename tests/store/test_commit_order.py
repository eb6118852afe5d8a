"""The promise the projections rest on, without eventsourcing's table lock: a reader tailing the event log
on PostgreSQL sees every event exactly once, in an order consistent with each case's versions, while
many writer *processes* insert into different cases and commit after random delays.

`projections/pg_recorder.py` keeps it by issuing ids only to the events of finished transactions. The
same tests run against a naive recorder (eventsourcing's, with its lock taken out, so ids are issued at
insert and read by a reader that ignores transactions in flight), and assert that it *does* lose
events: so the tests can tell a log that keeps the promise from one that does not.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.conninfo import conninfo_to_dict

from concordat import schema
from concordat.settings import Settings
from projections.pg_recorder import StampedPostgresApplicationRecorder

TABLE = "cases_events"
WRITERS, CASES, VERSIONS = 8, 5, 6


def recorder(url: str, kind: str) -> PostgresApplicationRecorder:
    info = conninfo_to_dict(url)
    datastore = PostgresDatastore(
        dbname=str(info["dbname"]),
        host=str(info.get("host") or "127.0.0.1"),
        port=str(info.get("port") or "5432"),
        user=str(info.get("user") or "postgres"),
        password=str(info.get("password") or ""),
        pool_size=4,
    )
    if kind == "stamped":
        return StampedPostgresApplicationRecorder(datastore, events_table_name=TABLE)
    naive = PostgresApplicationRecorder(datastore, events_table_name=TABLE)
    naive.lock_table_statements = []  # ids issued at insert, committed in any order
    return naive


def event(originator: uuid.UUID, version: int, label: str) -> StoredEvent:
    return StoredEvent(originator_id=originator, originator_version=version, topic="t", state=label.encode())


def write(url: str, kind: str, writer: int, seed: int) -> None:
    """One writer process: its own cases, one or two versions per transaction, each transaction held
    open for a random while before it commits. Writer 0 holds its first transaction longest, so that
    others commit later ids while it is open."""
    rng = random.Random(seed)
    rec = recorder(url, kind)
    cases = [uuid.uuid5(uuid.NAMESPACE_URL, f"writer-{writer}-case-{i}") for i in range(CASES)]
    versions = dict.fromkeys(cases, 0)
    first = True
    while any(v < VERSIONS for v in versions.values()):
        case = rng.choice([c for c, v in versions.items() if v < VERSIONS])
        count = min(rng.choice([1, 2]), VERSIONS - versions[case])
        batch = [event(case, versions[case] + i + 1, f"{writer}") for i in range(count)]
        with rec.datastore.transaction(commit=True) as curs:
            rec._insert_stored_events(curs, batch)
            time.sleep(0.3 if first and writer == 0 else rng.uniform(0, 0.02))
        versions[case] += count
        first = False
    rec.datastore.close()


def tail(rec: PostgresApplicationRecorder, done: threading.Event) -> list[Notification]:
    """Read on from the last id seen, as a projection runner does, until the writers are done and a
    last read finds nothing new."""
    seen: list[Notification] = []
    position = 0
    while True:
        finished = done.is_set()
        section = rec.select_notifications(start=position + 1, limit=50)
        seen += section
        if section:
            position = section[-1].id
        elif finished:
            return seen


def problems(seen: list[Notification], written: set[tuple[uuid.UUID, int]]) -> list[str]:
    found = [(n.originator_id, n.originator_version) for n in seen]
    counts = Counter(found)
    out = [f"missed {len(written - set(found))} of {len(written)} events"] if written - set(found) else []
    out += [f"read twice: {k}" for k, n in counts.items() if n > 1]
    ids = [n.id for n in seen]
    if ids != sorted(set(ids)):
        out.append("ids not strictly increasing")
    last: dict[Any, int] = {}
    for originator, version in found:
        if version != last.get(originator, 0) + 1:
            out.append(f"{originator} v{version} read after v{last.get(originator, 0)}")
        last[originator] = version
    return out


@pytest.fixture
def store_url(postgres_url: str, tmp_path: Path) -> str:
    schema.migrate(Settings(data_dir=tmp_path / "data", database_url=postgres_url))
    return postgres_url


@pytest.mark.parametrize("kind", ["stamped", "naive"])
def test_a_tailing_reader_sees_every_event_once_in_case_order_with_writer_processes(store_url: str, kind: str) -> None:
    spawn = multiprocessing.get_context("spawn")
    writers = [spawn.Process(target=write, args=(store_url, kind, w, w * 7919)) for w in range(WRITERS)]
    readers = [recorder(store_url, kind) for _ in range(2)]  # two tailing readers: two stampers at once
    done = threading.Event()
    result: list[list[Notification]] = []
    threads = [threading.Thread(target=lambda r=r: result.append(tail(r, done))) for r in readers]
    for thread in threads:
        thread.start()
    for p in writers:
        p.start()
    for p in writers:
        p.join(timeout=120)
        assert p.exitcode == 0
    done.set()
    for thread in threads:
        thread.join(timeout=60)
    written = {
        (uuid.uuid5(uuid.NAMESPACE_URL, f"writer-{w}-case-{i}"), v)
        for w in range(WRITERS)
        for i in range(CASES)
        for v in range(1, VERSIONS + 1)
    }
    assert len(result) == len(readers)
    found = [problems(seen, written) for seen in result]
    if kind == "stamped":
        assert found == [[], []]
    else:  # the same check catches the naive log losing events
        assert all(any(p.startswith("missed") for p in each) for each in found), found
    for reader in readers:
        reader.datastore.close()


@pytest.mark.parametrize("kind", ["stamped", "naive"])
def test_an_event_committed_late_with_a_lower_id_is_not_passed_over(store_url: str, kind: str) -> None:
    """The interleaving the table lock was for, step by step: A inserts first, B inserts and commits,
    the reader reads, then A commits."""
    rec = recorder(store_url, kind)
    a_case, b_case = uuid.uuid4(), uuid.uuid4()
    with rec.datastore.get_connection() as a, rec.datastore.get_connection() as b:
        a.autocommit = b.autocommit = False
        rec._insert_stored_events(a.cursor(), [event(a_case, 1, "a")])
        rec._insert_stored_events(b.cursor(), [event(b_case, 1, "b")])
        b.commit()
        first = rec.select_notifications(start=1, limit=10)
        a.commit()
        a.autocommit = b.autocommit = True
    position = first[-1].id if first else 0
    later = rec.select_notifications(start=position + 1, limit=10)
    read = [n.originator_id for n in [*first, *later]]
    if kind == "stamped":
        assert read == [b_case, a_case]  # each once: A's event is numbered when it has committed
    else:
        assert read == [b_case]  # A's event, id 1, is behind the reader's position for ever
    rec.datastore.close()
