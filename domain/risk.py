"""The risk register (ToR: the board "will develop and maintain a risk register"): each risk an
aggregate (`RSK-2026-0001`) whose every change is an event on the record.

A risk has a title, an owner (a role), likelihood and impact (1–5 each; its score is their product),
mitigations, and the day it is next to be reviewed. The JCU lead, the Lead Director and the board's
secretary keep the register (`MANAGED_BY`); a risk's owner may also update and review it. A review
records a note and the next review day; a closed risk takes no further change. The policy's
`[schedules.risk_review]` opens a review case listing the risks due by then (`due_by`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from eventsourcing.domain import event
from pydantic import Field

from domain.actor import Actor
from domain.case import Case, CaseView, Command, Rules
from domain.errors import CaseClosedError, InvalidInputError, NotAllowedError, closed_text
from domain.values import Note, Title

OPEN = "open"
CLOSED = "closed"
MANAGED_BY = ("jcu_lead", "lead_director", "secretary:board")


class AddRisk(Command):
    title: Title
    owner: str = Field(min_length=1, max_length=100)
    likelihood: int = Field(ge=1, le=5)
    impact: int = Field(ge=1, le=5)
    mitigations: list[Note] = Field(default_factory=list, max_length=20)
    review_on: date


class UpdateRisk(Command):
    likelihood: int | None = Field(None, ge=1, le=5)
    impact: int | None = Field(None, ge=1, le=5)
    owner: str | None = Field(None, min_length=1, max_length=100)
    mitigations: list[Note] | None = Field(None, max_length=20)
    note: Note = ""


class ReviewRisk(Command):
    note: Note
    next_review_on: date


class CloseRisk(Command):
    reason: Note


class Risk(Case):
    kind: ClassVar[str] = "risk"

    @classmethod
    def add(
        cls, rules: Rules, *, reference: str, actor: Actor, command: AddRisk, command_id: str, at: datetime
    ) -> Risk:
        _may(actor, None)
        if not rules.policy.is_known_role(command.owner):
            raise InvalidInputError(f"--owner {command.owner!r} is not a role; roles: {rules.policy.known_roles_text}")
        _not_past(rules, command.review_on, at, "--review-on")
        return cls._create(
            cls.Added,
            reference=reference,
            title=command.title.strip(),
            owner=command.owner,
            likelihood=command.likelihood,
            impact=command.impact,
            mitigations=list(command.mitigations),
            review_on=command.review_on.isoformat(),
            policy_hash=rules.policy.content_hash,
            actor_id=actor.id,
            actor_role=actor.role,
            command_id=command_id,
            at=at,
        )

    class Added(Case.Created):
        reference: str
        title: str
        owner: str
        likelihood: int
        impact: int
        mitigations: list[str]
        review_on: str
        policy_hash: str
        actor_id: str
        actor_role: str
        command_id: str
        at: datetime

    @event(Added)
    def __init__(
        self,
        *,
        reference: str,
        title: str,
        owner: str,
        likelihood: int,
        impact: int,
        mitigations: list[str],
        review_on: str,
        policy_hash: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.reference = reference
        self.title = title
        self.owner = owner
        self.likelihood = likelihood
        self.impact = impact
        self.mitigations = list(mitigations)
        self.review_on = review_on
        self.policy_hash = policy_hash
        self.started_by = {"id": actor_id, "role": actor_role}
        self.started_at = at
        self.status = OPEN
        self.reviews: list[dict[str, str]] = []
        self.closed: dict[str, str] | None = None
        self.command_versions: dict[str, int] = {command_id: 1}

    ACTIONS: ClassVar[dict[str, tuple[type[Command], str]]] = {
        "update": (UpdateRisk, "update"),
        "review": (ReviewRisk, "review"),
        "close": (CloseRisk, "close"),
    }

    def view(self, rules: Rules) -> CaseView:
        return CaseView(
            reference=self.reference,
            kind=self.kind,
            title=f"Risk: {self.title}",
            status=self.status,
            stage="",
            deadline=None,
            version=self.version,
            policy_hash=self.policy_hash,
            started_at=self.started_at,
            started_by=dict(self.started_by),
            actions=[],
            timers=[],
            details=self.row(),
        )

    def row(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "title": self.title,
            "owner": self.owner,
            "likelihood": self.likelihood,
            "impact": self.impact,
            "score": self.likelihood * self.impact,
            "mitigations": list(self.mitigations),
            "review_on": self.review_on,
            "status": self.status,
            "reviews": [dict(r) for r in self.reviews],
            "closed": dict(self.closed) if self.closed else None,
        }

    def update(self, rules: Rules, *, actor: Actor, command: UpdateRisk, command_id: str, at: datetime) -> None:
        self._open_for(actor)
        changes = command.model_dump(exclude_none=True, exclude={"note"})
        if not changes:
            raise InvalidInputError("nothing to change: give --likelihood, --impact, --owner or --mitigation")
        if "owner" in changes and not rules.policy.is_known_role(changes["owner"]):
            raise InvalidInputError(
                f"--owner {changes['owner']!r} is not a role; roles: {rules.policy.known_roles_text}"
            )
        self._updated(changes=changes, note=command.note, **self._who(actor, command_id, at))

    @event("Updated")
    def _updated(
        self, *, changes: dict[str, Any], note: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        for key, value in changes.items():
            setattr(self, key, list(value) if key == "mitigations" else value)
        self._done(command_id)

    def review(self, rules: Rules, *, actor: Actor, command: ReviewRisk, command_id: str, at: datetime) -> None:
        self._open_for(actor)
        _not_past(rules, command.next_review_on, at, "--next-review-on")
        self._reviewed(
            note=command.note, next_review_on=command.next_review_on.isoformat(), **self._who(actor, command_id, at)
        )

    @event("Reviewed")
    def _reviewed(
        self, *, note: str, next_review_on: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.reviews.append({"on": at.isoformat(), "by": f"{actor_role}:{actor_id}", "note": note})
        self.review_on = next_review_on
        self._done(command_id)

    def close(self, rules: Rules, *, actor: Actor, command: CloseRisk, command_id: str, at: datetime) -> None:
        self._open_for(actor)
        self._closed(reason=command.reason, **self._who(actor, command_id, at))

    @event("Closed")
    def _closed(self, *, reason: str, actor_id: str, actor_role: str, command_id: str, at: datetime) -> None:
        self.status = CLOSED
        self.closed = {"reason": reason, "by": f"{actor_role}:{actor_id}", "at": at.isoformat()}
        self._done(command_id)

    def _open_for(self, actor: Actor) -> None:
        if self.status != OPEN:
            raise CaseClosedError(closed_text(self.reference, self.status))
        _may(actor, self.owner)


def _may(actor: Actor, owner: str | None) -> None:
    allowed = [*MANAGED_BY, *([owner] if owner and owner not in MANAGED_BY else [])]
    if actor.role not in allowed:
        raise NotAllowedError(f"role {actor.role} may not change the risk register; allowed: {', '.join(allowed)}")


def _not_past(rules: Rules, day: date, at: datetime, name: str) -> None:
    today = rules.calendar.local_date(at)
    if day < today:
        raise InvalidInputError(f"{name} {day.isoformat()} is in the past; today is {today.isoformat()}")


def due_by(risks: list[dict[str, Any]], day: date) -> list[dict[str, Any]]:
    """The open risks to be reviewed on or before `day`, highest score first."""
    due = [r for r in risks if r["status"] == OPEN and r["review_on"] <= day.isoformat()]
    return sorted(due, key=lambda r: (-r["score"], r["review_on"], r["reference"]))
