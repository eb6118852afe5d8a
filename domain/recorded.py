"""What every stored event carries, and the hash chain that makes tampering evident.

Metadata. Every event of every aggregate carries `meta`: the actor's id and role, the command id
(causation), the case reference and the workflow id (correlation), and the governance-policy hash in
force — taken from a context variable that the application sets around each command (and the worker
sets the workflow id). The UTC time it was recorded is eventsourcing's own `timestamp`.

Hash chain. Every event records `prev_hash`, the hash of the event before it in its aggregate
(empty for the first). An event's hash is the SHA-256 of a canonical JSON encoding of its topic, its
aggregate's id and all its recorded fields except the version number (the chain itself orders the
events, which is what lets a verifier tell a reordering from an edit). Because the hash is over the
recorded fields, an upcaster that adds a field records which fields the event was stored with
(`recorded_fields`), and the hash keeps covering only those: old chains stay valid after the event
class evolves.
"""

from __future__ import annotations

import hashlib
import json
from contextvars import ContextVar
from dataclasses import field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

meta_cvar: ContextVar[dict[str, str]] = ContextVar("concordat_event_meta", default={})  # noqa: B039 - read-only
workflow_id_cvar: ContextVar[str] = ContextVar("concordat_workflow_id", default="")
_prev_hash_cvar: ContextVar[str] = ContextVar("concordat_prev_hash", default="")
_applying_cvar: ContextVar[Any] = ContextVar("concordat_applying", default=None)
# In `meta`: the command that made this event has a receipt of its own (`CaseCommandReceipt`), so the
# case's aggregate need not remember its command id (`Case._done`).
RECEIPTED = "receipted"
_EXCLUDED = {"originator_version", "class_version", "recorded_fields"}


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    return value


def state_hash(topic: str, originator_id: UUID | str, state: dict[str, Any]) -> str:
    """The hash of an event given its topic, aggregate id and recorded fields (as stored)."""
    recorded = state.get("recorded_fields")
    fields = {
        k: v
        for k, v in state.items()
        if k not in _EXCLUDED and k != "originator_id" and (recorded is None or k in recorded)
    }
    body = {"topic": topic, "originator_id": str(originator_id), "state": _canonical(fields)}
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def event_hash(event: Any) -> str:
    return state_hash(get_topic(type(event)), event.originator_id, dict(vars(event)))


def upcast_adding(state: dict[str, Any], **defaults: Any) -> None:
    """For an upcaster: add fields with defaults, remembering the fields the event was stored with
    so its hash (and the chain through it) is unchanged."""
    state.setdefault("recorded_fields", sorted(k for k in state if k not in ("originator_id", "originator_version")))
    for name, value in defaults.items():
        state.setdefault(name, value)


def applying() -> Any:
    """The event whose body is running now (None outside one)."""
    return _applying_cvar.get()


class Recorded(Aggregate):
    """Base of every aggregate Concordat stores: its events carry metadata and a hash chain."""

    class Event(Aggregate.Event):
        meta: dict[str, str] = field(default_factory=lambda: dict(meta_cvar.get()), init=False)
        prev_hash: str = field(default_factory=_prev_hash_cvar.get, init=False)

        def apply(self, aggregate: Any) -> None:
            aggregate.head_hash = event_hash(self)

        def mutate(self, aggregate: Any) -> Any:
            """As eventsourcing's, with the event being applied at hand for the event body's helpers
            (`applying()`): what the event says of itself beyond its fields (its `meta`)."""
            token = _applying_cvar.set(self)
            try:
                return super().mutate(aggregate)
            finally:
                _applying_cvar.reset(token)

    class Created(Event, Aggregate.Created):
        pass

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        """Every new event links to the one before it: the aggregate's head hash."""
        token = _prev_hash_cvar.set(getattr(self, "head_hash", ""))
        try:
            super().trigger_event(event_class, **kwargs)
        finally:
            _prev_hash_cvar.reset(token)
