"""The application service: one method per use case, on the event store.

Each command method loads the case, runs the command (the aggregate decides whether it is allowed),
saves, and returns plain data. Commands are idempotent by command id: a command id already applied
returns the case as it stood right after that command, and stores nothing. A refused command raises a
`ConcordatError` and stores nothing.

Optimistic concurrency: two writers of one case conflict at the store (the second insert of the same
aggregate version fails); the loser reloads and runs its command again against the new state, so the
rules are checked against what was actually recorded, never a stale copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import structlog
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import RecordConflictError
from eventsourcing.utils import EnvType

from domain.actor import Actor
from domain.errors import CaseNotFoundError, InvalidInputError, NotAllowedError
from domain.policy import Policy
from domain.proposal import SYSTEM_ACTOR, Proposal, ProposalState, Rules
from domain.references import CommandReceipt, ReferenceSequence

log = structlog.get_logger("concordat.domain")

CONFLICT_ATTEMPTS = 5
# Fields every event carries that `history` shows in their own columns, not as "what changed".
_BOOKKEEPING = {
    "originator_id",
    "originator_version",
    "timestamp",
    "originator_topic",
    "actor_id",
    "actor_role",
    "command_id",
    "at",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class HistoryEntry:
    version: int
    event: str
    recorded_at: datetime
    at: datetime | None
    actor_id: str
    actor_role: str
    command_id: str
    changes: dict[str, Any]


class CaseService(Application):
    """The partnership's cases on one event store (SQLite or PostgreSQL, chosen by `env`)."""

    name = "Cases"

    def __init__(
        self,
        env: EnvType | None = None,
        *,
        policy: Policy | None = None,
        clock: Callable[[], datetime] = utc_now,
        snapshot_interval: int | None = None,
    ) -> None:
        # Snapshots are taken every `snapshot_interval` events of a case, so a long-lived case
        # loads from its latest snapshot and the events after it.
        if snapshot_interval:
            self.is_snapshotting_enabled = True
            self.snapshotting_intervals = {Proposal: snapshot_interval}
            env = {**(env or {}), "IS_SNAPSHOTTING_ENABLED": "y"}
        super().__init__(env)
        self._policy = policy
        self._clock = clock

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            self._policy = Policy.load()
        return self._policy

    @property
    def rules(self) -> Rules:
        rules = getattr(self, "_rules", None)
        if rules is None or rules.policy is not self.policy:
            rules = self._rules = Rules.from_policy(self.policy)
        return rules

    # --- commands ---------------------------------------------------------------------------

    def start_proposal(
        self,
        *,
        actor: Actor,
        title: str,
        kind: str,
        value_pence: int,
        parties: list[str],
        public_health: bool,
        command_id: str,
        at: datetime | None = None,
    ) -> ProposalState:
        """Open a proposal with the next reference of its year (`PRO-2026-0001`)."""
        self._check_actor(actor)
        at = at or self._clock()
        for _ in range(CONFLICT_ATTEMPTS):
            done = self._receipt(command_id)
            if done is not None:
                return self.state(done)
            year = self.rules.calendar.local_date(at).year
            sequence = self._sequence("PRO", year)
            reference = sequence.issue()
            proposal = Proposal.start(
                self.rules,
                reference=reference,
                title=title,
                kind=kind,
                value_pence=value_pence,
                parties=parties,
                public_health=public_health,
                actor=actor,
                command_id=command_id,
                at=at,
            )
            receipt = CommandReceipt(command_id=command_id, reference=reference)
            try:
                self.save(sequence, proposal, receipt)
            except RecordConflictError:
                continue  # another start took this number (or this command id): look again
            log.info("proposal.started", case=reference, actor=str(actor), kind=kind)
            return ProposalState.of(proposal, self.policy)
        raise RecordConflictError(f"could not number a new proposal after {CONFLICT_ATTEMPTS} tries")

    def decide(
        self,
        reference: str,
        *,
        actor: Actor,
        stage: str,
        outcome: str,
        minutes_ref: str = "",
        note: str = "",
        command_id: str,
        at: datetime | None = None,
        stage_outcome: str | None = None,
        new_deadline: date | None = None,
    ) -> ProposalState:
        """Record a forum's decision (see `Proposal.decide` for the rules)."""
        self._check_actor(actor)

        def command(p: Proposal, when: datetime) -> None:
            p.decide(
                self.rules,
                actor=actor,
                stage=stage,
                outcome=outcome,
                minutes_ref=minutes_ref,
                note=note,
                command_id=command_id,
                at=when,
                stage_outcome=stage_outcome,
                new_deadline=new_deadline,
            )

        state = self._apply(reference, command_id, at, command)
        log.info("proposal.decided", case=reference, actor=str(actor), stage=stage, outcome=outcome)
        return state

    def withdraw(
        self, reference: str, *, actor: Actor, note: str = "", command_id: str, at: datetime | None = None
    ) -> ProposalState:
        self._check_actor(actor)
        state = self._apply(
            reference,
            command_id,
            at,
            lambda p, when: p.withdraw(self.rules, actor=actor, note=note, command_id=command_id, at=when),
        )
        log.info("proposal.withdrawn", case=reference, actor=str(actor))
        return state

    def remind(self, reference: str, *, command_id: str, at: datetime | None = None) -> ProposalState:
        state = self._apply(
            reference, command_id, at, lambda p, when: p.remind(self.rules, command_id=command_id, at=when)
        )
        log.info("proposal.reminded", case=reference, stage=state.stage)
        return state

    def escalate(self, reference: str, *, command_id: str, at: datetime | None = None) -> ProposalState:
        state = self._apply(
            reference, command_id, at, lambda p, when: p.escalate(self.rules, command_id=command_id, at=when)
        )
        log.info("proposal.escalated", case=reference, stage=state.stage, to=state.escalated_to)
        return state

    # --- queries ----------------------------------------------------------------------------

    def authorize_read(self, actor: Actor) -> None:
        """Every known role may read every case (the auditor reads everything, changes nothing)."""
        self._check_actor(actor)

    def get(self, reference: str, *, actor: Actor, version: int | None = None) -> ProposalState:
        """The case as it stands (or stood at `version`). Every known role may read."""
        self._check_actor(actor)
        return self.state(reference, version=version)

    def state(self, reference: str, *, version: int | None = None) -> ProposalState:
        return ProposalState.of(self._load(reference, version), self.policy)

    def result_of(self, reference: str, command_id: str) -> ProposalState | None:
        """The case right after `command_id` was applied, or None if it never was."""
        applied = self._load(reference).command_versions.get(command_id)
        return None if applied is None else self.state(reference, version=applied)

    def history(self, reference: str, *, actor: Actor) -> list[HistoryEntry]:
        """Every event of the case in order, with when, who and what changed."""
        self._check_actor(actor)
        self._load(reference)
        entries = []
        for ev in self.events.get(Proposal.create_id(reference)):
            data = {k: v for k, v in ev.__dict__.items() if k not in _BOOKKEEPING}
            entries.append(
                HistoryEntry(
                    version=ev.originator_version,
                    event=type(ev).__name__,
                    recorded_at=ev.timestamp,
                    at=getattr(ev, "at", None),
                    actor_id=getattr(ev, "actor_id", ""),
                    actor_role=getattr(ev, "actor_role", ""),
                    command_id=getattr(ev, "command_id", ""),
                    changes=data,
                )
            )
        return entries

    def max_notification_id(self) -> int:
        return self.recorder.max_notification_id() or 0

    # --- internals --------------------------------------------------------------------------

    def _check_actor(self, actor: Actor) -> None:
        if actor == SYSTEM_ACTOR:
            return
        if not self.policy.is_known_role(actor.role):
            raise NotAllowedError(
                f"role {actor.role!r} is not known; roles: {self.policy.known_roles_text}"
            )

    def _apply(
        self,
        reference: str,
        command_id: str,
        at: datetime | None,
        command: Callable[[Proposal, datetime], None],
    ) -> ProposalState:
        if not command_id:
            raise InvalidInputError("a command needs a command id")
        when = at or self._clock()
        for _ in range(CONFLICT_ATTEMPTS):
            proposal = self._load(reference)
            applied = proposal.command_versions.get(command_id)
            if applied is not None:
                # Already applied (a retry): the same answer as the first time, nothing stored.
                return self.state(reference, version=applied)
            command(proposal, when)
            try:
                self.save(proposal)
            except RecordConflictError:
                continue  # another writer got there first: run the command on what they recorded
            return ProposalState.of(proposal, self.policy)
        raise RecordConflictError(f"{reference} kept changing under {CONFLICT_ATTEMPTS} attempts")

    def _load(self, reference: str, version: int | None = None) -> Proposal:
        try:
            return self.repository.get(Proposal.create_id(reference), version=version)
        except AggregateNotFoundError:
            raise CaseNotFoundError(f"no case has the reference {reference!r}") from None

    def _receipt(self, command_id: str) -> str | None:
        try:
            receipt = self.repository.get(CommandReceipt.create_id(command_id))
        except AggregateNotFoundError:
            return None
        return receipt.reference

    def _sequence(self, prefix: str, year: int) -> ReferenceSequence:
        try:
            return self.repository.get(ReferenceSequence.create_id(prefix, year))
        except AggregateNotFoundError:
            return ReferenceSequence(prefix=prefix, year=year)
