"""One active projection runner at a time, however many replicas run.

Two runners writing the same views would race for the same tracking positions (one would fail on
every event the other recorded first). Replicas therefore stand by until they hold a lock that dies
with its holder: a PostgreSQL session-level advisory lock (released when the holder's connection
ends, a kill -9 included), or an exclusive `flock` on a file in the data dir for SQLite (released
by the kernel when the holder's process ends).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import structlog

from concordat import bootstrap
from concordat.settings import Settings

log = structlog.get_logger("concordat.leadership")
# A fixed 64-bit key for "the projection runner of this database" (any constant no one else uses).
ADVISORY_KEY = 0x436F6E636F726461  # "Concorda"
OUTBOX_KEY = 0x436F6E634F757462  # "ConcOutb": the outbox's sender, one at a time like the views' runner
POLL_SECONDS = 1.0


@contextmanager
def projection_leadership(
    settings: Settings, stop: threading.Event, *, what: str = "projections", key: int = ADVISORY_KEY
) -> Iterator[bool]:
    """Yields True once this process leads (False if `stop` was set while standing by). `what` names
    the process in the log and the lock file; `key` is its advisory lock on PostgreSQL."""
    if settings.uses_postgres:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            announced = False
            while not stop.is_set():
                if conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                    log.warning(f"{what}.leading", lock="postgres advisory lock")
                    try:
                        yield True
                    finally:
                        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                    return
                if not announced:
                    log.warning(f"{what}.standing_by", reason="another runner holds the lock")
                    announced = True
                stop.wait(POLL_SECONDS)
            yield False
        return
    path = bootstrap.data_path(settings, "views", ".runner.lock" if what == "projections" else f".{what}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        announced = False
        while not stop.is_set():
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not announced:
                    log.warning(f"{what}.standing_by", reason="another runner holds the lock")
                    announced = True
                stop.wait(POLL_SECONDS)
                continue
            log.warning(f"{what}.leading", lock=str(path))
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            return
        yield False
    finally:
        os.close(fd)
