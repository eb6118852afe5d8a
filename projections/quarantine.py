"""No event can stop a view: one it cannot project is quarantined, and projected again on request.

An event that fails to decode (a cipher or JSON error, a topic this code does not know) or that its
projection cannot write (PostgreSQL refuses a NUL in text; SQLite an integer beyond 64 bits) is
recorded in the view's quarantine with its error, in the same transaction that moves the view's
position past it, and the view goes on with the next event. A view applies an aggregate's events in
order, so once one of an aggregate's events is held back every later event of that aggregate is held
behind it, untried, until it is released: the view never shows a case that skipped a step.

An infrastructure failure (the database unreachable, locked or restarting) is not the event's fault:
it propagates, and the runner stops as before, to be restarted, without quarantining anything.

`retry` projects the held events again, oldest first, each in one transaction with the deletion of
its quarantine row; one that fails again stays, with its new error, and so do the events behind it.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from eventsourcing.persistence import (
    ConnectionPoolClosedError,
    InterfaceError,
    InternalError,
    Mapper,
    Notification,
    OperationalError,
    Tracking,
)
from eventsourcing.projection import Projection

from projections.tables import ViewTables

log = structlog.get_logger("concordat.projections")

# Failures of the store or the view's database, not of the event: never quarantined.
INFRASTRUCTURE = (
    OperationalError,
    InterfaceError,
    InternalError,
    ConnectionPoolClosedError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
    sqlite3.InterfaceError,
    OSError,
    MemoryError,
)
ERROR_CHARS = 500

# Events no view shows, passed over undecoded (the view's position still moves past them): the
# receipt saved with every command on a case (`domain.references.CaseCommandReceipt`), as many rows
# as the cases' own events. By topic, so the views need not import the domain's references.
PASSED_OVER = frozenset({"domain.references:CaseCommandReceipt.Received"})


def passed_over(notification: Notification) -> bool:
    """Whether no view projects `notification` (see `PASSED_OVER`)."""
    return notification.topic in PASSED_OVER


def describe(err: BaseException) -> str:
    """The error as one storable, printable line: its type and first line, without NUL or control
    characters (the error may quote the event's own bad text), and bounded."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    line = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return printable(line)[:ERROR_CHARS]


def printable(text: str) -> str:
    return "".join(ch if unicodedata.category(ch)[0] != "C" else "\N{REPLACEMENT CHARACTER}" for ch in text)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Guard:
    """Projects notifications into one view, quarantining the events it cannot project."""

    def __init__(
        self,
        projection: Projection[Any],
        mapper: Mapper[Any],
        application_name: str,
        on_quarantine: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.projection = projection
        self.view: ViewTables = projection.view
        self.mapper = mapper
        self.application_name = application_name
        self.on_quarantine = on_quarantine
        # Only this runner adds to the quarantine; a retry elsewhere only removes. So an aggregate
        # not in this set is not held, and one in it is asked of the view again before holding.
        self.held = self.view.held_originators(application_name)

    def project(self, notification: Notification) -> bool:
        """Project one notification; False if it was quarantined instead."""
        tracking = Tracking(self.application_name, notification.id)
        originator = str(notification.originator_id)
        if originator in self.held:
            first = self.view.first_quarantined(self.application_name, originator)
            if first is not None:
                self._quarantine(notification, tracking, f"held behind event {first} of the same aggregate", first)
                return False
            self.held.discard(originator)
        if passed_over(notification):
            self.view.write([], tracking)
            return True
        try:
            self.projection.process_event(self.mapper.to_domain_event(notification), tracking)
        except INFRASTRUCTURE:
            raise
        except Exception as err:  # noqa: BLE001 - the event's fault: recorded with its error, not swallowed
            self._quarantine(notification, tracking, describe(err), None)
            return False
        return True

    def _quarantine(self, notification: Notification, tracking: Tracking, error: str, behind: int | None) -> None:
        row = {
            "application_name": self.application_name,
            "notification_id": notification.id,
            "originator_id": str(notification.originator_id),
            "originator_version": notification.originator_version,
            "topic": printable(notification.topic)[:ERROR_CHARS],
            "error": error,
            "held_behind": behind,
            "quarantined_at": _now(),
        }
        self.view.quarantine(row, tracking)  # if this fails too, it propagates: the runner stops
        self.held.add(row["originator_id"])
        log.error(
            "projections.quarantined",
            view=self.projection.name,
            notification_id=notification.id,
            originator_id=row["originator_id"],
            error=error,
        )
        if self.on_quarantine is not None:
            self.on_quarantine(row)


@dataclass
class RetryResult:
    view: str
    reprojected: list[int] = field(default_factory=list)
    still: list[dict[str, Any]] = field(default_factory=list)


def retry(projection: Projection[Any], recorder: Any, mapper: Mapper[Any], application_name: str) -> RetryResult:
    """Project this view's quarantined events again, oldest first (see the module's docstring)."""
    view: ViewTables = projection.view
    result = RetryResult(view=projection.name)
    failed: set[str] = set()
    for row in view.quarantined(application_name):
        nid, originator = int(row["notification_id"]), row["originator_id"]
        if originator in failed:  # an earlier event of the aggregate is still held: this one waits
            result.still.append(row)
            continue
        found = recorder.select_notifications(start=nid, limit=1, stop=nid)
        try:
            if not found:
                raise LookupError(f"event {nid} is not in the store")
            with view.releasing(application_name, nid):
                projection.process_event(mapper.to_domain_event(found[0]), Tracking(application_name, nid))
        except INFRASTRUCTURE:
            raise
        except Exception as err:  # noqa: BLE001 - still the event's fault: kept, with its new error
            error = describe(err)
            view.retry_failed(application_name, nid, error, _now())
            failed.add(originator)
            result.still.append({**row, "error": error, "held_behind": None})
            log.info("projections.retry_failed", view=projection.name, notification_id=nid, error=error)
            continue
        result.reprojected.append(nid)
        log.info("projections.released", view=projection.name, notification_id=nid)
    return result
