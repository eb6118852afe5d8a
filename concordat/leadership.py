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
import time
from collections.abc import Callable, Iterator
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
    settings: Settings,
    stop: threading.Event,
    *,
    what: str = "projections",
    key: int = ADVISORY_KEY,
    hold_off: Callable[[], bool] | None = None,
) -> Iterator[bool]:
    """Yields True once this process leads (False if `stop` was set while standing by). `what` names
    the process in the log and the lock file; `key` is its advisory lock on PostgreSQL. While
    `hold_off()` is true the lock is not even tried (an audit replay is waiting for it)."""
    if settings.uses_postgres:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            announced = False
            while not stop.is_set():
                if hold_off is not None and hold_off():
                    stop.wait(POLL_SECONDS)
                    continue
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
            if hold_off is not None and hold_off():
                stop.wait(POLL_SECONDS)
                continue
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


# `concordat audit replay` and the running projection runner: a pause handshake made of two locks that
# die with their holders, so a replay that crashes (kill -9 included) leaves nothing behind to clear.
#
#   1. The replay takes the *replay lock* (REPLAY_KEY / `views/.replay.lock`): the pause request.
#   2. The leading runner sees it between passes (`ReplayWatch.requested`, twice a second), stops its
#      views' threads after the event in hand, and releases its leadership (the lock above).
#      Replicas standing by do not take leadership while the request stands.
#   3. The replay takes leadership (waiting up to `PAUSE_TIMEOUT_SECONDS` for the runner to let go),
#      rebuilds and swaps the views, then releases both locks.
#   4. The runner sees the replay lock free, takes leadership again, and carries on from the rebuilt
#      views' positions. If the replay died, its locks died with it and the runner resumes the same way.
REPLAY_KEY = 0x436F6E6352706C79  # "ConcRply"
PAUSE_TIMEOUT_SECONDS = 60.0
REQUEST_SECONDS = 2.0  # how long a replay tries for the replay lock before saying another holds it


class RunnerDidNotPauseError(Exception):
    """The projection runner kept its leadership past the timeout (an older runner without the
    handshake, or one stuck on an event); nothing was rebuilt."""


class ReplayRunningError(Exception):
    """Another `audit replay` holds the replay lock."""


def _replay_lock_file(settings: Settings) -> str:
    return str(bootstrap.data_path(settings, "views", ".replay.lock"))


class ReplayWatch:
    """The runner's side: is an audit replay asking it to pause? One connection (or file) kept open
    for the runner's life; each question takes the replay lock and gives it back at once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._conn: psycopg.Connection | None = None
        self._fd: int | None = None

    def requested(self) -> bool:
        try:
            if self.settings.uses_postgres:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.settings.database_url, autocommit=True)
                free = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (REPLAY_KEY,)).fetchone()[0]  # type: ignore[index]
                if free:
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (REPLAY_KEY,))
                return not free
            if self._fd is None:
                self._fd = os.open(_replay_lock_file(self.settings), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            return False
        except psycopg.Error as err:  # the database away for a moment: no request seen; ask again next time
            log.warning("projections.replay_watch_failed", error=str(err).splitlines()[0] if str(err) else "")
            if self._conn is not None:
                self._conn.close()
            return False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._fd is not None:
            os.close(self._fd)


@contextmanager
def runner_paused(settings: Settings, *, timeout: float = PAUSE_TIMEOUT_SECONDS) -> Iterator[None]:
    """The replay's side: hold the replay lock (the pause request), then the runner's leadership, for
    the body; both are released as it ends, or when this process dies."""
    deadline = time.monotonic() + timeout
    asked_until = time.monotonic() + REQUEST_SECONDS
    if settings.uses_postgres:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            while not conn.execute("SELECT pg_try_advisory_lock(%s)", (REPLAY_KEY,)).fetchone()[0]:  # type: ignore[index]
                if time.monotonic() > asked_until:
                    raise ReplayRunningError
                time.sleep(0.05)  # a runner asking holds the lock for an instant
            try:
                while not conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)).fetchone()[0]:  # type: ignore[index]
                    if time.monotonic() > deadline:
                        raise RunnerDidNotPauseError
                    time.sleep(POLL_SECONDS / 4)  # waiting for another process to let go of a lock
                try:
                    log.info("replay.views_held", lock="postgres advisory lock")
                    yield
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_KEY,))
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (REPLAY_KEY,))
        return
    request = os.open(_replay_lock_file(settings), os.O_RDWR | os.O_CREAT, 0o600)
    leader = os.open(bootstrap.data_path(settings, "views", ".runner.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(request, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > asked_until:
                    raise ReplayRunningError from None
                time.sleep(0.05)  # a runner asking holds the lock for an instant
        while True:
            try:
                fcntl.flock(leader, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RunnerDidNotPauseError from None
                time.sleep(POLL_SECONDS / 4)  # waiting for another process to let go of a lock
        log.info("replay.views_held", lock=str(bootstrap.data_path(settings, "views", ".runner.lock")))
        yield
    finally:
        os.close(leader)  # closing the descriptors releases their locks
        os.close(request)
