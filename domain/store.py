"""The event store's own identity: one id, made once, kept in the store it names.

Temporal work is bound to it: the task queue is named after it and a Temporal namespace serves one
store. Without that, a second store pointed at the same Temporal would have its worker take up the
first store's cases (finding none of them: `CaseNotFoundError`, and their timers lost), and its case
references (which every store numbers from 0001) would name the first store's workflows.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import event
from eventsourcing.persistence import RecordConflictError

from domain.recorded import Recorded


class StoreIdentity(Recorded):
    """Named once, the first time the engine asks; never changes. A copy of the store (a backup
    restored elsewhere) carries the same id, as it holds the same cases."""

    @staticmethod
    def create_id() -> UUID:
        return uuid5(NAMESPACE_URL, "https://concordat.invalid/store-identity")

    @event("Named")
    def __init__(self, *, store_id: str) -> None:
        self.store_id = store_id


def store_id(app: Application) -> str:
    """The store's id, named now if nothing has asked before. Two first askers at once both try to
    save the identity; the store keeps one (the same aggregate version cannot be stored twice) and
    the other reads it back, so every process agrees."""
    try:
        return app.repository.get(StoreIdentity.create_id()).store_id
    except AggregateNotFoundError:
        pass
    try:
        app.save(StoreIdentity(store_id=uuid4().hex))
    except RecordConflictError:
        pass  # another process named the store first: read its name back
    return app.repository.get(StoreIdentity.create_id()).store_id
