"""Projecting a section of notifications at a time, for rebuilds: the same projections, less Python.

A rebuild (`concordat audit replay`) used to turn every stored row back into its domain event (the
mapper's JSON decoding with a hook per object, then the event object) and dispatch it to each
projection, which wrote one statement per row per view. Most of that is not needed to fill a view:

- An event whose class no view projects (a reference issued, a command receipt, a policy adopted)
  moves each view's position and nothing else. It is recognised by its topic, once per topic, and
  not decoded at all.
- An event a view projects is decoded with plain `json.loads` and handed to the projection's own
  handler (the one `process_event` dispatches to for its class) as `Fields`: its recorded fields,
  each turned into what the mapper would make of it (a datetime, a UUID) only when the handler reads
  it. The handlers are the ones the runner uses, so a view has one mapping, not two.
- An event stored under an older `class_version` is decoded by the mapper, which runs its upcasters,
  and handed over as the domain event it makes: the upcasters work on transcoded values, and old
  events are few.

The views' writes for the section are held (`ViewTables.batched`) and go out grouped: each view's
statements of the same text in one `executemany`, with the section's position, in one transaction.

What the section is decoded and projected with is the mapper's cipher and compressor, when the store
has them. Anything else the fast path cannot take (a topic that does not resolve, a handler that
fails) is the caller's to redo the slow way: `concordat.replay` then projects the section one event
at a time through `projections.quarantine.Guard`, which quarantines what fails, as the runner does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from threading import Event
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, JSONTranscoder, Mapper, Notification, Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import resolve_topic

from projections.quarantine import INFRASTRUCTURE, Guard
from projections.tables import ViewTables

Handler = Callable[[Projection[Any], Any, Tracking], None]
_MISSING = object()


class Fields:
    """An event's recorded fields, read from its decoded JSON state without building the event.

    Reading a field gives what the mapper's transcoder would have given: its `{"_type_": …,
    "_data_": …}` objects (datetimes, UUIDs, decimals), at any depth, decoded by the same
    transcodings. A field the event did not record is its class's default, as on the event (a field
    added later with a default); a property or method is not a recorded field and raises
    AttributeError (the section is then done the slow way)."""

    __slots__ = ("_cls", "_names", "_state", "originator_id", "originator_version")

    def __init__(self, state: dict[str, Any], notification: Notification, names: dict[str, Any], cls: type) -> None:
        self._state = state
        self._names = names
        self._cls = cls
        self.originator_id = notification.originator_id
        self.originator_version = notification.originator_version

    def __getattr__(self, name: str) -> Any:
        try:
            value = self._state[name]
        except KeyError:
            default = getattr(self._cls, name, _MISSING)
            if default is _MISSING or hasattr(default, "__get__"):
                raise AttributeError(name) from None
            return default
        if value.__class__ is dict or value.__class__ is list:
            return _transcoded(value, self._names)
        return value


def _transcoded(value: Any, names: dict[str, Any]) -> Any:
    """`value` as the transcoder's object hook leaves it (see `JSONTranscoder._decode_obj`): every
    object of exactly `_type_` and `_data_` decoded by the transcoding of that name, innermost first."""
    if value.__class__ is list:
        return [_transcoded(v, names) for v in value]
    if value.__class__ is dict:
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            data = value["_data_"]
            if data.__class__ is dict or data.__class__ is list:
                data = _transcoded(data, names)
            return names[value["_type_"]].decode(data)
        return {k: _transcoded(v, names) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class _Route:
    """What one topic is to the views: its class, and each projection's handler (None: position only)."""

    cls: type[Any]
    handlers: tuple[Handler | None, ...]
    projected: bool  # by any of the views


@dataclass
class BulkCounts:
    """How a rebuild's events were taken, for tests and the benchmark."""

    skipped: int = 0  # by topic, not decoded
    fields: int = 0  # decoded as JSON and read as fields
    decoded: int = 0  # old versions: the mapper's full decode and upcasting


class BulkProjector:
    """Projects notifications into several views at once, by topic and fields (see the module)."""

    def __init__(self, projections: Sequence[Projection[Any]], mapper: Mapper[Any]) -> None:
        self.projections = list(projections)
        self.views: list[ViewTables] = [p.view for p in self.projections]
        unsafe = [p.name for p in self.projections if not p.view.BULK_SAFE]
        if unsafe:
            raise ValueError(f"not views to build in bulk: {', '.join(unsafe)} (ViewTables.BULK_SAFE)")
        self.mapper = mapper
        transcoder = mapper.transcoder
        # Only the JSON transcoder's stored form is known here; any other is always decoded in full.
        self._names: dict[str, Any] | None = transcoder.names if isinstance(transcoder, JSONTranscoder) else None
        self._routes: dict[str, _Route] = {}
        self.counts = BulkCounts()

    @cached_property
    def _dispatchers(self) -> list[tuple[Any, Handler]]:
        """Each projection's single-dispatch registry and its default (the position-only) handler."""
        found = []
        for projection in self.projections:
            projection.process_event  # noqa: B018 - binding it completes eventsourcing's deferred registrations
            method = next(
                klass.__dict__["process_event"]
                for klass in type(projection).__mro__
                if "process_event" in klass.__dict__
            )
            dispatcher = method.dispatcher
            found.append((dispatcher, dispatcher.dispatch(object)))
        return found

    def route(self, topic: str) -> _Route:
        route = self._routes.get(topic)
        if route is None:
            cls = resolve_topic(topic)  # a TopicError is the caller's: the slow path quarantines it
            handlers = []
            for dispatcher, default in self._dispatchers:
                handler = dispatcher.dispatch(cls)
                handlers.append(None if handler is default else handler)
            route = self._routes[topic] = _Route(cls, tuple(handlers), any(h is not None for h in handlers))
        return route

    def project(self, notification: Notification, tracking: Tracking) -> None:
        """Hold this notification's writes in every view (each inside `ViewTables.batched`)."""
        route = self.route(notification.topic)
        if not route.projected:
            self.counts.skipped += 1
            for view in self.views:
                view.advance(tracking)
            return
        event = self._fields(notification, route)
        key = notification.originator_id
        for projection, view, handler in zip(self.projections, self.views, route.handlers, strict=True):
            if handler is None:
                view.advance(tracking)
            else:
                view.hold_for(key)
                handler(projection, event, tracking)

    def _fields(self, notification: Notification, route: _Route) -> Any:
        if self._names is None:
            self.counts.decoded += 1
            return self.mapper.to_domain_event(notification)
        state = notification.state
        if self.mapper.cipher is not None:
            state = self.mapper.cipher.decrypt(state)
        if self.mapper.compressor is not None:
            state = self.mapper.compressor.decompress(state)
        decoded = json.loads(state.decode())  # bytes would have json sniff their encoding first
        if decoded.get("class_version", 1) < getattr(route.cls, "class_version", 1):
            self.counts.decoded += 1  # its upcasters run on transcoded values: the mapper's whole way
            return self.mapper.to_domain_event(notification)
        self.counts.fields += 1
        return Fields(decoded, notification, self._names, route.cls)


SECTION = 1000


def catch_up(guard: Guard, recorder: ApplicationRecorder, stopping: Event, section: int = SECTION) -> int:
    """Project what the store already holds past the view's position, a section at a time in bulk,
    until a section comes back short (the log's end, for now); the last notification id projected.

    Each section's rows and position commit together, so a runner stopped or killed half-way resumes
    from the last whole section. A section that holds an aggregate the view has quarantined, or that
    the bulk path cannot take (an event that fails), is done again one event at a time by `guard`,
    which quarantines what fails, as the runner always has. A view that is not `BULK_SAFE` is left to
    the runner's event-by-event loop."""
    view = guard.view
    last = view.max_tracking_id(guard.application_name) or 0
    if not view.BULK_SAFE:
        return last
    bulk = BulkProjector([guard.projection], guard.mapper)
    while not stopping.is_set():
        notifications = recorder.select_notifications(start=last + 1, limit=section)
        if not notifications:
            break
        try:
            if guard.held and any(str(n.originator_id) in guard.held for n in notifications):
                raise _OneByOneError
            with view.batched():
                for notification in notifications:
                    bulk.project(notification, Tracking(guard.application_name, notification.id))
        except INFRASTRUCTURE:
            raise
        except Exception:  # noqa: BLE001 - nothing of the section was written: the guard redoes it
            for notification in notifications:
                guard.project(notification)
        last = notifications[-1].id
        if len(notifications) < section:
            break
    return last


class _OneByOneError(Exception):
    """A section with an aggregate the view holds back: its events wait behind the quarantined one."""
