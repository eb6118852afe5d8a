"""The refusal log: every command the engine refused, on the record an auditor reads.

A refusal is what happened when someone was not let through: a sign-in that failed, a request without
a valid token (401) or with roles that may not (403), a role or rule refusal of a command, a command
sent into Temporal that was unsigned or forged. Each is recorded with who (as proven, or as claimed
when nothing was proven), what they tried, why it was refused, when, and through which door (`cli`,
`api`, `web`, `temporal`).

Each refusal is an event of its own small aggregate in the cases' event store, so it has the same
metadata, hash chain, encryption at rest and seals over the whole log as every other event: the log
is append-only and hash-chained because the store is. A refusal that carries a command id is stored
once for that id (a retried activity, a repeated request records it once). Text is bounded and kept
as given (renderers show it inert): an attacker's 10 MB user id is not stored whole.

Recording a refusal never turns the refusal into another error: if the store cannot take it, the
failure is logged and the person still gets the refusal they earned.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import event
from eventsourcing.persistence import RecordConflictError
from eventsourcing.utils import get_topic

from domain.actor import Actor
from domain.recorded import Recorded

REFUSAL_NAMESPACE = uuid5(NAMESPACE_URL, "https://concordat.invalid/refusals")
DOORS = ("cli", "api", "web", "temporal")
TEXT_LIMIT = 500
SECTION = 500
log = structlog.get_logger("concordat.refusals")


def _bounded(text: Any, limit: int = TEXT_LIMIT) -> str:
    text = "" if text is None else str(text)
    text = "".join(c if c.isprintable() or c in "\n\t" else "\ufffd" for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Refusal(Recorded):
    """One refused attempt. One event: it is never changed after."""

    @event("Refused")
    def __init__(
        self,
        key: str,
        at: datetime,
        door: str,
        actor_id: str,
        actor_role: str,
        proven: bool,
        command: str,
        reference: str,
        rule: str,
        reason: str,
        command_id: str,
    ) -> None:
        self.key = key
        self.at = at
        self.door = door
        self.actor_id = actor_id
        self.actor_role = actor_role
        self.proven = proven
        self.command = command
        self.reference = reference
        self.rule = rule
        self.reason = reason
        self.command_id = command_id

    @classmethod
    def create_id(cls, key: str) -> UUID:
        return uuid5(REFUSAL_NAMESPACE, key)


REFUSED_TOPIC = get_topic(Refusal.Refused)  # type: ignore[attr-defined]  # made by @event


@dataclass(frozen=True)
class RefusalEntry:
    """A refusal as the auditor reads it."""

    position: int
    at: str
    door: str
    actor: str
    proven: bool
    command: str
    reference: str
    rule: str
    reason: str
    command_id: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RefusalLog:
    """Records refusals in a store (any eventsourcing `Application` with Concordat's events), and
    reads them back in the order they were recorded."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def record(
        self,
        *,
        door: str,
        command: str,
        reason: str,
        rule: str,
        actor: Actor | None = None,
        claimed: str = "",
        reference: str = "",
        command_id: str = "",
        at: datetime | None = None,
    ) -> bool:
        """Record one refusal; True if it is on the record (now or before, for its command id)."""
        # One refusal per door, case, rule, person and command id: a retried activity or a repeated
        # request records once; the same command refused again for another reason is another refusal,
        # and so is another person's command with the same key (keys are scoped to the person).
        who = actor or Actor(id=_bounded(claimed, 100) or "unknown", role="unproven")
        key = f"{door}:{reference}:{rule}:{who.id}:{command_id}" if command_id else str(uuid.uuid4())
        try:
            stamp = getattr(self.app, "stamp", None)
            refusal_id = Refusal.create_id(key)
            if command_id and self._exists(refusal_id):
                return True
            reference, command_id = _bounded(reference, 100), _bounded(command_id, 200)

            def make() -> Refusal:
                return Refusal(
                    key=key,
                    at=at or datetime.now(UTC),
                    door=door if door in DOORS else "cli",
                    actor_id=_bounded(who.id, 100),
                    actor_role=_bounded(who.role, 100),
                    proven=actor is not None,
                    command=_bounded(command, 100),
                    reference=reference,
                    rule=_bounded(rule, 100),
                    reason=_bounded(reason),
                    command_id=command_id,
                )

            if stamp is not None:
                with stamp(reference or "refusals", command_id or key, who):
                    refusal = make()
            else:
                refusal = make()
            self.app.save(refusal)
            return True
        except RecordConflictError:
            return True  # the same refusal (same command id) was recorded by another attempt
        except Exception as err:  # noqa: BLE001 - a refusal stays a refusal even if the log cannot take it
            log.error("refusal.not_recorded", door=door, command=command, rule=rule, error=type(err).__name__)
            return False

    def _exists(self, refusal_id: UUID) -> bool:
        try:
            self.app.repository.get(refusal_id)
        except AggregateNotFoundError:
            return False
        return True

    def entries(self, *, since: int = 0, limit: int = 1000) -> list[RefusalEntry]:
        """Refusals recorded after notification `since`, oldest first, at most `limit`."""
        found: list[RefusalEntry] = []
        start = since + 1
        mapper = self.app.mapper
        while len(found) < limit:
            section = self.app.recorder.select_notifications(start=start, limit=SECTION, topics=[REFUSED_TOPIC])
            for n in section:
                e = mapper.to_domain_event(n)
                found.append(
                    RefusalEntry(
                        position=n.id,
                        at=e.at.isoformat(),
                        door=e.door,
                        actor=f"{e.actor_role}:{e.actor_id}",
                        proven=e.proven,
                        command=e.command,
                        reference=e.reference,
                        rule=e.rule,
                        reason=e.reason,
                        command_id=e.command_id,
                    )
                )
                if len(found) >= limit:
                    break
            if len(section) < SECTION:
                break
            start = section[-1].id + 1
        return found
