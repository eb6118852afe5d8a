"""eventsourcing's projection runner, with a guard that quarantines the events a view cannot project.

eventsourcing's runner decodes each notification and calls the projection in one loop, and stops at
the first exception: one bad event would stop the view (and `concordat up`) for good, and a restart
would meet it again. This runner follows the same subscription, but hands each raw notification to
`projections.quarantine.Guard`, which decodes and projects it, or quarantines it and goes on. An
infrastructure failure still stops the runner, as before. What the store already holds when the
runner starts is projected first in sections, in bulk (`projections.bulk.catch_up`).
"""

from __future__ import annotations

import weakref
from threading import Event
from typing import Any

from eventsourcing.projection import ApplicationSubscription, Projection, ProjectionRunner

from projections.bulk import catch_up
from projections.quarantine import Guard


class GuardedProjectionRunner(ProjectionRunner[Any, Any]):
    @staticmethod
    def _process_events_loop(  # type: ignore[override]
        subscription: ApplicationSubscription[Any],
        projection: Projection[Any],
        is_stopping: Event,
        runner: weakref.ReferenceType[GuardedProjectionRunner],
    ) -> None:
        try:
            guard = Guard(projection, subscription.mapper, subscription.name)
            # Far behind (a new view, a restart after a long stop): catch up in bulk first. The
            # subscription reads the same notifications meanwhile; those are passed over.
            caught_up = catch_up(guard, subscription.recorder, is_stopping)
            for notification in subscription.subscription:  # raw notifications: decoding may fail too
                if notification.id > caught_up:
                    guard.project(notification)
        except BaseException as e:  # noqa: BLE001 - handed to run_forever()/wait(), which re-raise it
            owner = runner()
            if owner is not None:
                owner._thread_error = e  # noqa: SLF001 - the base class's own hand-over slot
        finally:
            is_stopping.set()
