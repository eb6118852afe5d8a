"""A subscription to an SQLite event store, so eventsourcing's `ProjectionRunner` runs on SQLite too.

eventsourcing's SQLite recorder does not implement `subscribe()` (PostgreSQL's uses LISTEN/NOTIFY).
This one polls the notification log: it reads new notifications in sections, and when there are none
it waits `POLL_INTERVAL` seconds, or less if stopped. SQLite commits one writer at a time, so
notification ids appear in order and a poll never skips one that commits later.

Selected by `APPLICATION_RECORDER_TOPIC` in the store settings that `concordat.bootstrap` builds.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

from eventsourcing.persistence import Notification, Subscription
from eventsourcing.sqlite import SQLiteApplicationRecorder

POLL_INTERVAL = 0.2
SECTION = 500


class PollingSubscription(Subscription[SQLiteApplicationRecorder]):
    def __init__(self, recorder: SQLiteApplicationRecorder, gt: int | None = None, topics: Sequence[str] = ()) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._stopping = threading.Event()
        self._buffer: deque[Notification] = deque()

    def stop(self) -> None:
        super().stop()
        self._stopping.set()

    def __next__(self) -> Notification:
        while not self._has_been_stopped:
            if self._buffer:
                notification = self._buffer.popleft()
                self._last_notification_id = notification.id
                return notification
            start = (self._last_notification_id or 0) + 1
            self._buffer.extend(self._recorder.select_notifications(start=start, limit=SECTION, topics=self._topics))
            if not self._buffer:
                self._stopping.wait(POLL_INTERVAL)
        raise StopIteration


class PollingSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Subscription[SQLiteApplicationRecorder]:
        return PollingSubscription(self, gt=gt, topics=topics)
