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

import random
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from itertools import chain
from time import sleep
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError, Application, Repository, project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import RecordConflictError
from eventsourcing.utils import EnvType, get_topic, strtobool
from pydantic import BaseModel, ValidationError

from domain.actor import Actor
from domain.errors import (
    CaseClosedError,
    CaseNotFoundError,
    IdempotencyKeyReusedError,
    InvalidInputError,
    NotAllowedError,
)
from domain.idempotency import scope_of
from domain.membership import Membership
from domain.policy import ADMIN_ROLE, Policy, PolicyVersion
from domain.recorded import RECEIPTED, Recorded, event_hash, meta_cvar, workflow_id_cvar
from domain.values import check_pence, field_path

if TYPE_CHECKING:
    from domain.agreement import TerminationAgreement
    from domain.case import Case, CaseView, Rules
    from domain.cycles import CycleCase, ScheduleControl
    from domain.dispute import Dispute
    from domain.foi import FoiRequest
    from domain.fund_opening import FundOpening
    from domain.funding import Fund, FundingChange
    from domain.proposal import Proposal
    from domain.references import CaseCommandReceipt, CommandReceipt, ReferenceSequence
    from domain.risk import Risk
    from domain.termination import Partnership, TerminationNotice
    from domain.variation import Variation

log = structlog.get_logger("concordat.domain")

# Every kind of case, by module and class (StagedCase: proposals, variations, funding changes and
# fund openings); and the kinds snapshotted, by the topic eventsourcing names them with. Named, not
# imported: opening the store imports only the aggregates that what it does needs.
CASE_KINDS = (
    ("domain.staged", "StagedCase"),
    ("domain.dispute", "Dispute"),
    ("domain.termination", "TerminationNotice"),
    ("domain.agreement", "TerminationAgreement"),
    ("domain.foi", "FoiRequest"),
    ("domain.cycles", "CycleCase"),
    ("domain.risk", "Risk"),
)
SNAPSHOTTED = (
    "domain.proposal:Proposal",
    "domain.variation:Variation",
    "domain.funding:FundingChange",
    "domain.fund_opening:FundOpening",
)


class SnapshotIntervals(dict[str, int]):
    """eventsourcing's `snapshotting_intervals` (how many events between snapshots, by aggregate
    class), keyed by each class's topic instead of the class, so that the classes need not be
    imported to say so. eventsourcing asks it only `.get(type(aggregate))`."""

    def get(self, kind: Any, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(kind if isinstance(kind, str) else get_topic(kind), default)


REUSED_KEY = (
    "this Idempotency-Key was used for a different request; "
    "send the same request again with it, or use a new key for a new request"
)
CONFLICT_ATTEMPTS = 5
START_ATTEMPTS = 50
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
    "meta",
    "prev_hash",
}


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], fields: dict[str, Any]) -> M:
    """A command's fields, checked by its model; the first problem in one line."""
    try:
        return model.model_validate(fields)
    except ValidationError as err:
        first = err.errors()[0]
        where = field_path(first["loc"]) or model.__name__
        raise InvalidInputError(f"{where.replace('_', '-')}: {first['msg']}") from None


def utc_now() -> datetime:
    return datetime.now(UTC)


def _receipt_id(reference: str, command_id: str) -> UUID:
    from domain.references import CaseCommandReceipt

    return CaseCommandReceipt.create_id(reference, command_id)


def _applied(case: Any, command_id: str, receipt: CaseCommandReceipt | None) -> int | None:
    """The version of the case `command_id` produced, or None if it was never applied: from its
    receipt, or (for the start, and for commands recorded before receipts) the case's own ledger."""
    if receipt is not None and receipt.command_id == command_id:
        return receipt.version
    applied: int | None = case.command_versions.get(command_id)
    return applied


def _scope_reused(case: Any, command_id: str, receipt: CaseCommandReceipt | None) -> bool:
    """Whether the same person's key on the same route and case was applied with other fields."""
    scope = scope_of(command_id)
    if scope is None:
        return False
    if receipt is not None and receipt.command_id != command_id:
        return True
    return any(scope_of(c) == scope for c in case.command_versions)


@dataclass(frozen=True)
class StoredRoster:
    """The directory's people as a case's commands read them (`domain.identity.Roster`): the roles a
    person holds now, read from their `User` aggregate in this store. Read only: nothing is saved."""

    repository: Repository

    def roles_of(self, user_id: str) -> tuple[str, ...] | None:
        from domain.identity import User

        try:
            found: Any = self.repository.get(User.create_id(user_id))
        except AggregateNotFoundError:
            return None
        return tuple(found.roles) if isinstance(found, User) else None


def _changed(collaborators: dict[str, Any]) -> list[Any]:
    """The collaborators to save with the case: the aggregates, and those the command made (a list:
    the fund its opening agrees); facts read, like the roster, are not saved."""
    found: list[Any] = []
    for c in collaborators.values():
        if isinstance(c, list):
            found.extend(a for a in c if isinstance(a, Aggregate))
        elif isinstance(c, Aggregate):
            found.append(c)
    return found


@dataclass(frozen=True)
class HistoryEntry:
    """One event as an auditor reads it: when it was recorded (UTC), for whom, under which command,
    case, workflow and policy, and what it changed."""

    version: int
    event: str
    recorded_at: datetime
    at: datetime | None
    actor_id: str
    actor_role: str
    command_id: str
    changes: dict[str, Any]
    reference: str = ""
    workflow_id: str = ""
    policy_hash: str = ""
    forum: str = ""
    prev_hash: str = ""
    hash: str = ""


# The partnership's membership as one command read it (`CaseService._one_read_of_membership`).
_command_membership: ContextVar[Membership | None] = ContextVar("command_membership", default=None)


class OneReadRepository(Repository):
    """eventsourcing's repository, reading a case's latest snapshot and the events after it in one
    statement where the store's recorder offers that (`select_with_snapshot`: our PostgreSQL
    recorders, `projections/pg_recorder.py`) rather than two; elsewhere exactly as eventsourcing does."""

    def _reconstruct_aggregate(self, aggregate_id: Any, version: int | None, projector_func: Any) -> Any:
        read = getattr(self.event_store.recorder, "select_with_snapshot", None)
        found = None
        if read is not None and self.snapshot_store is not None:
            found = read(aggregate_id, self.snapshot_store.recorder, lte=version)
        if found is None or self.snapshot_store is None:
            return super()._reconstruct_aggregate(aggregate_id, version, projector_func)
        snapshot, stored = found
        snapshots = [] if snapshot is None else [self.snapshot_store.mapper.to_domain_event(snapshot)]
        events = (self.event_store.mapper.to_domain_event(e) for e in stored)
        aggregate = projector_func(None, chain(snapshots, events))
        if aggregate is None:
            raise AggregateNotFoundError(f"Aggregate {aggregate_id!r} version {version!r} not found.")
        return aggregate

    def get_many(self, aggregate_ids: list[UUID]) -> dict[UUID, Any]:
        """Several aggregates as they stand, in one statement where the recorder offers that; an id
        with no aggregate is left out."""
        read = getattr(self.event_store.recorder, "select_many_with_snapshot", None)
        found = None
        if read is not None and self.snapshot_store is not None and self.cache is None:
            found = read(aggregate_ids, self.snapshot_store.recorder)
        if found is None or self.snapshot_store is None:
            loaded: dict[UUID, Any] = {}
            for aggregate_id in aggregate_ids:
                try:
                    loaded[aggregate_id] = self.get(aggregate_id)
                except AggregateNotFoundError:
                    pass
            return loaded
        aggregates: dict[UUID, Any] = {}
        for aggregate_id, (snapshot, stored) in found.items():
            snapshots = [] if snapshot is None else [self.snapshot_store.mapper.to_domain_event(snapshot)]
            events = (self.event_store.mapper.to_domain_event(e) for e in stored)
            aggregate = project_aggregate(None, chain(snapshots, events))
            if aggregate is not None:
                aggregates[aggregate_id] = aggregate
        return aggregates


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
            # Per instance (each store's settings say how often): eventsourcing reads it from `self`.
            self.snapshotting_intervals = SnapshotIntervals(  # type: ignore[misc, assignment]
                dict.fromkeys(SNAPSHOTTED, snapshot_interval)
            )
            env = {**(env or {}), "IS_SNAPSHOTTING_ENABLED": "y"}
        super().__init__(env)
        self._policy = policy
        self._clock = clock
        self._policies: dict[str, Rules] = {}
        self._start_lock = threading.Lock()

    def construct_repository(self) -> Repository:
        """eventsourcing's repository with its settings from `env`, reading each load in one statement."""
        maxsize = self.env.get(self.AGGREGATE_CACHE_MAXSIZE)
        return OneReadRepository(
            event_store=self.events,
            snapshot_store=self.snapshots,
            cache_maxsize=int(maxsize) if maxsize else None,
            fastforward=strtobool(self.env.get(self.AGGREGATE_CACHE_FASTFORWARD, "y")),
            fastforward_skipping=strtobool(self.env.get(self.AGGREGATE_CACHE_FASTFORWARD_SKIPPING, "n")),
            deepcopy_from_cache=strtobool(self.env.get(self.DEEPCOPY_FROM_AGGREGATE_CACHE, "y")),
        )

    def now(self) -> datetime:
        """The service's clock (fixed in tests): what a command given now is stamped with."""
        return self._clock()

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            self._policy = Policy.load()
        return self._policy

    @property
    def rules(self) -> Rules:
        """The rules of the current policy: those a new case starts under. (A command on an existing
        case runs under `rules_for(case)`, the policy it started under.)"""
        from domain.case import Rules

        rules = getattr(self, "_rules", None)
        if rules is None or rules.policy is not self.policy:
            rules = self._rules = Rules.from_policy(self.policy)
        return rules

    def membership(self) -> Membership:
        """Who takes part in the partnership now (domain/membership.py), from the `Partnership`: read
        once for the whole of a command (`_one_read_of_membership`), else each time asked."""
        held = _command_membership.get()
        if held is not None:
            return held
        return self.partnership().membership(self.rules.calendar)

    @contextmanager
    def _one_read_of_membership(self, partnership: Partnership | None = None) -> Iterator[None]:
        """One command reads the partnership once, not at each of its checks (who may act, the rules,
        the answer): the same answer, in fewer round trips. Nested commands share the outer read.
        `partnership`: as the caller just read it."""
        if _command_membership.get() is not None:
            yield
            return
        held = self.membership() if partnership is None else partnership.membership(self.rules.calendar)
        token = _command_membership.set(held)
        try:
            yield
        finally:
            _command_membership.reset(token)

    def rules_now(self, case: Any = None) -> Rules:
        """The rules a command is judged by: the policy the case started under (the current one for
        a new case), with the partnership's membership as it stands now."""
        rules = self.rules if case is None else self.rules_for(case)
        return rules.with_membership(self.membership())

    def rules_for(self, case: Any) -> Rules:
        """The rules of the policy a case started under. Every policy a case started under is stored
        (`PolicyVersion`), so a running case keeps its rules when the policy file changes."""
        from domain.case import Rules

        digest = getattr(case, "policy_hash", "")
        if not digest or digest == self.policy.content_hash:
            return self.rules
        cached = self._policies.get(digest)
        if cached is None:
            try:
                stored: PolicyVersion = self.repository.get(PolicyVersion.create_id(digest))
            except AggregateNotFoundError:
                log.warning("policy.not_stored", policy_hash=digest, using=self.policy.content_hash)
                return Rules.from_policy(self.policy)
            cached = self._policies[digest] = Rules.from_policy(
                Policy.from_bytes(stored.text.encode("utf-8"), f"policy {digest[:12]}")
            )
        return cached

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
    ) -> CaseView:
        """Open a proposal with the next reference of its year (`PRO-2026-0001`)."""

        from domain.proposal import Proposal

        rules = self.rules_now()

        def build(reference: str, when: datetime) -> Proposal:
            return Proposal.start(
                rules,
                reference=reference,
                title=title,
                kind=kind,
                value_pence=value_pence,
                parties=parties,
                public_health=public_health,
                actor=actor,
                command_id=command_id,
                at=when,
            )

        return self._start("PRO", actor, command_id, at, build)

    def raise_dispute(
        self, *, actor: Actor, fields: dict[str, Any], command_id: str, at: datetime | None = None
    ) -> CaseView:
        """A party's representative raises a dispute against other parties (`DSP-2026-0001`)."""
        from domain.dispute import Dispute, RaiseDispute

        command = _parse(RaiseDispute, fields)
        if command.linked_case and command.linked_case not in self:
            raise CaseNotFoundError(f"no case has the reference {command.linked_case!r} (linked case)")

        rules = self.rules_now()

        def build(reference: str, when: datetime) -> Dispute:
            return Dispute.raise_(
                rules,
                reference=reference,
                actor=actor,
                command=command,
                members=self.partnership().members,
                command_id=command_id,
                at=when,
            )

        return self._start("DSP", actor, command_id, at, build)

    def serve_notice(
        self, *, actor: Actor, fields: dict[str, Any], command_id: str, at: datetime | None = None
    ) -> CaseView:
        """A party's representative serves notice to leave the partnership (`TRM-2026-0001`)."""
        from domain.termination import ServeNotice, TerminationNotice

        command = _parse(ServeNotice, fields)
        partnership = self.partnership()
        if not partnership.is_active:
            raise CaseClosedError("the partnership has ended; there is nothing to give notice of")

        rules = self.rules_now()

        def build(reference: str, when: datetime) -> TerminationNotice:
            pending = [n for n in self._pending_notices() if n.party == actor.party]
            if pending:
                raise InvalidInputError(f"{actor.party} already has notice pending: {pending[0].reference}")
            return TerminationNotice.serve(
                rules,
                reference=reference,
                actor=actor,
                command=command,
                members=partnership.members,
                command_id=command_id,
                at=when,
            )

        return self._start("TRM", actor, command_id, at, build)

    def propose_agreement(
        self, *, actor: Actor, fields: dict[str, Any], command_id: str, at: datetime | None = None
    ) -> CaseView:
        """A party's representative proposes that a party leaves, or that the partnership ends, by
        everyone's agreement on a date (`AGR-2026-0001`); they sign it for their party as they do."""
        from domain.agreement import ProposeAgreement, TerminationAgreement

        command = _parse(ProposeAgreement, fields)
        rules = self.rules_now()
        if not self.partnership().is_active:
            raise CaseClosedError("the partnership has ended; there is nothing left to agree")

        def build(reference: str, when: datetime) -> TerminationAgreement:
            return TerminationAgreement.propose(
                rules, reference=reference, actor=actor, command=command, command_id=command_id, at=when
            )

        return self._start("AGR", actor, command_id, at, build)

    def receive_foi(
        self, *, actor: Actor, fields: dict[str, Any], command_id: str, at: datetime | None = None
    ) -> CaseView:
        """The party first approached records an FOI request about the partnership (`FOI-2026-0001`)."""
        from domain.foi import FoiRequest, ReceiveRequest

        command = _parse(ReceiveRequest, fields)
        rules = self.rules_now()

        def build(reference: str, when: datetime) -> FoiRequest:
            return FoiRequest.receive(
                rules, reference=reference, actor=actor, command=command, command_id=command_id, at=when
            )

        return self._start("FOI", actor, command_id, at, build)

    def open_scheduled(
        self,
        *,
        schedule: str,
        scheduled_at: datetime,
        figures: Callable[[], dict[str, Any]],
        command_id: str,
        at: datetime | None = None,
    ) -> CaseView:
        """A schedule's firing opens its review (`REV-`) or report (`RPT-`) case, as the system. The
        command id names the schedule and the instant it fired for: a repeated firing finds the case
        the first one opened (and the figures are taken only when a case is opened)."""
        from domain.case import SYSTEM_ACTOR
        from domain.cycles import PREFIXES as CYCLE_PREFIXES
        from domain.cycles import CycleCase
        from domain.risk import due_by

        rules = self.rules_now()
        rule = rules.policy.schedules.get(schedule)
        if rule is None:
            raise InvalidInputError(
                f"no schedule is named {schedule!r}; schedules: {', '.join(rules.policy.schedules)}"
            )
        done = self._receipt(command_id)
        if done is not None:
            return self.state(done)
        taken = figures() if set(rule.figures) - {"risks_due"} else {}
        if "risks_due" in rule.figures:
            day = rules.calendar.add_working_days(rules.calendar.local_date(scheduled_at), rule.deadline_working_days)
            taken["risks_due"] = due_by(self.risk_register(actor=SYSTEM_ACTOR), day)

        def build(reference: str, when: datetime) -> CycleCase:
            return CycleCase.open(
                rules,
                reference=reference,
                schedule=schedule,
                scheduled_at=scheduled_at,
                figures=taken,
                command_id=command_id,
                at=when,
            )

        return self._start(CYCLE_PREFIXES[rule.opens], SYSTEM_ACTOR, command_id, at, build)

    def record_schedule_control(
        self, *, actor: Actor, name: str, paused: bool, reason: str, command_id: str, at: datetime | None = None
    ) -> dict[str, Any]:
        """An administrator paused or resumed a schedule: on the record, once per command id."""
        from domain.cycles import ScheduleControl

        if actor.role != ADMIN_ROLE:
            raise NotAllowedError(f"role {actor.role} may not pause or resume a schedule; allowed: {ADMIN_ROLE}")
        if name not in self.policy.schedules:
            raise InvalidInputError(f"no schedule is named {name!r}; schedules: {', '.join(self.policy.schedules)}")
        if not reason.strip():
            raise InvalidInputError("--reason is empty: say why, for the record")
        try:
            control: ScheduleControl = self.repository.get(ScheduleControl.create_id(name))
        except AggregateNotFoundError:
            control = ScheduleControl(name=name)
        if command_id not in control.command_ids:
            step = control.pause if paused else control.resume
            step(
                reason=reason.strip(),
                actor_id=actor.id,
                actor_role=actor.role,
                command_id=command_id,
                at=at or self._clock(),
            )
            self.save(control)
        return {"name": name, "paused": control.paused, "history": list(control.history)}

    def record_schedule_trigger(
        self, *, actor: Actor, name: str, reason: str, command_id: str, at: datetime | None = None
    ) -> dict[str, Any]:
        """An administrator fired a schedule by hand (a report wanted early, a firing missed while the
        schedule was paused): on the record before Temporal is asked to fire it. `fire` in the answer
        says whether this call recorded it (fire it now) or found the command id already recorded (a
        repeat: the caller fires again only if Temporal never started a firing since the record). A second firing within a minute of the last is refused
        (`ScheduleControl`); two administrators at once: one is recorded, the other refused."""
        from domain.cycles import ScheduleControl

        if actor.role != ADMIN_ROLE:
            raise NotAllowedError(f"role {actor.role} may not fire a schedule; allowed: {ADMIN_ROLE}")
        if name not in self.policy.schedules:
            raise InvalidInputError(f"no schedule is named {name!r}; schedules: {', '.join(self.policy.schedules)}")
        if not reason.strip():
            raise InvalidInputError("--reason is empty: say why, for the record")
        for _ in range(CONFLICT_ATTEMPTS):
            try:
                control: ScheduleControl = self.repository.get(ScheduleControl.create_id(name))
            except AggregateNotFoundError:
                control = ScheduleControl(name=name)
            fire = command_id not in control.command_ids
            if fire:
                control.trigger(
                    reason=reason.strip(),
                    actor_id=actor.id,
                    actor_role=actor.role,
                    command_id=command_id,
                    at=at or self._clock(),
                )
                try:
                    self.save(control)
                except RecordConflictError:
                    continue  # another administrator's write came first: decide again on what they recorded
            last = control.last_triggered() or {}
            return {
                "name": name,
                "paused": control.paused,
                "fire": fire,
                "at": last.get("at"),
                "history": list(control.history),
            }
        raise RecordConflictError(f"schedule {name} kept changing under {CONFLICT_ATTEMPTS} attempts")

    def add_risk(
        self, *, actor: Actor, fields: dict[str, Any], command_id: str, at: datetime | None = None
    ) -> CaseView:
        """A risk on the board's register (`RSK-2026-0001`; domain/risk.py)."""
        from domain.risk import AddRisk, Risk

        command = _parse(AddRisk, fields)
        rules = self.rules_now()

        def build(reference: str, when: datetime) -> Risk:
            return Risk.add(rules, reference=reference, actor=actor, command=command, command_id=command_id, at=when)

        return self._start("RSK", actor, command_id, at, build)

    def risk_register(self, *, actor: Actor, include_closed: bool = False) -> list[dict[str, Any]]:
        """Every risk, highest score first (closed ones only when asked)."""
        self._check_actor(actor)
        rows = [self.state(r).details for r in self.references(("RSK",))]
        rows = [r for r in rows if include_closed or r["status"] == "open"]
        return sorted(rows, key=lambda r: (-r["score"], r["review_on"], r["reference"]))

    def cycles(self, *, actor: Actor) -> list[CaseView]:
        """Every review and report case, oldest first (read from the store: a few dozen a year)."""
        self._check_actor(actor)
        return [self.state(reference) for reference in self.references(("REV", "RPT"))]

    def foi_register(self, *, actor: Actor) -> dict[str, Any]:
        """Every FOI request as it stands, oldest first, and the share answered on time per quarter
        (`domain/foi_register.py`). Read from the store, not a view: there are a few a year."""
        from domain import foi_register

        self._check_actor(actor)
        requests = [self.state(reference) for reference in self.references(("FOI",))]
        return foi_register.register(self.rules, requests, self.rules.calendar.local_date(self._clock()))

    def start_variation(
        self, *, actor: Actor, fields: dict[str, Any], command_id: str, at: datetime | None = None
    ) -> CaseView:
        """A JCU lead starts a contract variation (`VAR-2026-0001`)."""
        from domain.variation import StartVariation, Variation

        command = _parse(StartVariation, fields)
        check_pence(command.value_change_pence, self.policy.limits.max_value_pounds, field="value-change")
        funds = [self._fund(name) for name in dict.fromkeys(command.funds)]

        rules = self.rules_now()

        def build(reference: str, when: datetime) -> Variation:
            return Variation.start(
                rules,
                reference=reference,
                actor=actor,
                command=command,
                command_id=command_id,
                at=when,
                funds=funds,
            )

        return self._start("VAR", actor, command_id, at, build)

    def start_funding_change(
        self, *, actor: Actor, fields: dict[str, Any], command_id: str, at: datetime | None = None
    ) -> CaseView:
        """A JCU lead starts an in-year change to a fund (`FUN-2026-0001`)."""
        from domain.funding import FundingChange, StartFundingChange

        command = _parse(StartFundingChange, fields)
        for party, pence in command.changes.items():
            check_pence(pence, self.policy.limits.max_value_pounds, field=f"change.{party}")
        fund = self._fund(command.fund)

        rules = self.rules_now()

        def build(reference: str, when: datetime) -> FundingChange:
            return FundingChange.start(
                rules,
                reference=reference,
                actor=actor,
                command=command,
                fund=fund,
                members=self.partnership().members,
                command_id=command_id,
                at=when,
            )

        return self._start("FUN", actor, command_id, at, build)

    def open_fund(
        self, *, actor: Actor, fields: dict[str, Any], command_id: str, at: datetime | None = None
    ) -> CaseView:
        """A JCU lead proposes to open an aligned or pooled fund (`FND-2026-0001`); it opens once the
        Programme Board agrees (ToR 4.2, `[routes.fund]`)."""
        from domain.fund_opening import FundOpening
        from domain.funding import Fund, OpenFund

        command = _parse(OpenFund, fields)
        for party, pence in command.contributions.items():
            check_pence(pence, self.policy.limits.max_value_pounds, field=f"contribution {party}")
        if command.balance_pence is not None:
            check_pence(command.balance_pence, self.policy.limits.max_value_pounds, field="balance")
        rules = self.rules_now()

        def build(reference: str, when: datetime) -> FundOpening:
            return FundOpening.start(
                rules,
                reference=reference,
                actor=actor,
                command=command,
                members=self.partnership().members,
                name_taken=Fund.create_id(command.name) in self.repository,
                command_id=command_id,
                at=when,
            )

        return self._start("FND", actor, command_id, at, build)

    def fund_view(self, name: str, *, actor: Actor) -> dict[str, Any]:
        self._check_actor(actor)
        return self._fund(name).view()

    def _fund(self, name: str) -> Fund:
        from domain.funding import Fund

        try:
            return self.repository.get(Fund.create_id(name))
        except AggregateNotFoundError:
            raise CaseNotFoundError(
                f"no fund is named {name!r}; open it with `concordat fund open` (the Programme Board agrees it)"
            ) from None

    def _collaborators(self, case: Any) -> dict[str, Any]:
        """What a command needs besides its case: other aggregates it changes, saved in the same
        transaction (the partnership, a fund), and facts it reads (`people`: the directory's roster).
        Each kind names them (`COLLABORATORS`), and every command and timer of that kind receives them."""
        from domain.forward_plan import ForwardPlan
        from domain.funding import Fund
        from domain.meeting import MeetingBook
        from domain.staged import StagedCase

        found: dict[str, Any] = {}
        for name in getattr(type(case), "COLLABORATORS", ()):
            if name == "partnership":
                found["partnership"] = self.partnership()
            elif name == "fund":
                found["fund"] = self._fund(case.fund)
            elif name == "new_aggregates":  # aggregates the command makes (a fund its opening agrees)
                found["new_aggregates"] = []
                found["fund_exists"] = Fund.create_id(case.name) in self.repository
            elif name == "people":
                found["people"] = StoredRoster(self.repository)
        if isinstance(case, StagedCase):
            # The meetings a decision may name (domain/meeting.py); one it records an item on is
            # saved with the case.
            book = found["meetings"] = MeetingBook(self.repository)
            found["meetings_changed"] = book.changed
            found["forward_plan"] = ForwardPlan(self.repository)
        return found

    def act(
        self,
        reference: str,
        *,
        actor: Actor,
        action: str,
        fields: dict[str, Any],
        command_id: str,
        at: datetime | None = None,
    ) -> Any:
        """A person's command on a case of any kind, by name (see the aggregate's
        ACTIONS). The fields are checked by the command's own model; the rules by the aggregate."""
        # The case, the partnership and the command's receipt in one read (one round trip on PostgreSQL).
        from domain.case import case_id
        from domain.termination import Partnership

        receipt_id = _receipt_id(reference, command_id)
        found = self.repository.get_many([case_id(reference), Partnership.create_id(), receipt_id])  # type: ignore[attr-defined]
        with self._one_read_of_membership(found.get(Partnership.create_id()) or self._first_partnership()):
            return self._act(
                reference,
                actor=actor,
                action=action,
                fields=fields,
                command_id=command_id,
                at=at,
                loaded=(found.get(case_id(reference)), found.get(receipt_id)),
            )

    def _act(
        self,
        reference: str,
        *,
        actor: Actor,
        action: str,
        fields: dict[str, Any],
        command_id: str,
        at: datetime | None,
        loaded: tuple[Any, Any],
    ) -> Any:

        self._check_acting(actor, reference)
        aggregate = self._checked(reference, loaded[0])
        actions = getattr(type(aggregate), "ACTIONS", {})
        if action not in actions:
            raise InvalidInputError(
                f"{reference} takes no {action!r}; it takes: {', '.join(actions) or 'decide, withdraw'}"
            )
        model, method = actions[action]
        command = _parse(model, fields)
        if isinstance(getattr(command, "cost_pence", None), int):
            check_pence(command.cost_pence, self.policy.limits.max_value_pounds, field="cost")

        def run(case: Any, rules: Rules, when: datetime) -> list[Any]:
            others = self._collaborators(case)
            getattr(case, method)(rules, actor=actor, command=command, command_id=command_id, at=when, **others)
            return _changed(others)

        state = self._apply(actor, reference, command_id, at, run, loaded=(aggregate, loaded[1]))
        log.info("case.acted", case=reference, actor=str(actor), action=action)
        return state

    def fire_timer(self, reference: str, *, timer: str, command_id: str, at: datetime | None = None) -> Any:
        """What a case's clock asks for at one of its timers: a reminder, an escalation, maturity."""

        from domain.case import SYSTEM_ACTOR

        def run(case: Any, rules: Rules, when: datetime) -> list[Any]:
            others = self._collaborators(case)
            case.fire(rules, timer=timer, command_id=command_id, at=when, **others)
            return _changed(others)

        state = self._apply(SYSTEM_ACTOR, reference, command_id, at, run)
        log.info("case.timer_fired", case=reference, timer=timer)
        return state

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
        meeting: str = "",
        taking_part: list[str] | None = None,
        written_procedure: bool = False,
    ) -> CaseView:
        """A forum's decision on a case of any routed kind (the `decide` action, spelled out)."""
        fields = {
            "stage": stage,
            "outcome": outcome,
            "minutes_ref": minutes_ref,
            "note": note,
            "stage_outcome": stage_outcome,
            "new_deadline": new_deadline,
            "meeting": meeting,
            "taking_part": taking_part or [],
            "written_procedure": written_procedure,
        }
        return self.act(reference, actor=actor, action="decide", fields=fields, command_id=command_id, at=at)

    def withdraw(
        self, reference: str, *, actor: Actor, note: str = "", command_id: str, at: datetime | None = None
    ) -> CaseView:
        return self.act(reference, actor=actor, action="withdraw", fields={"note": note}, command_id=command_id, at=at)

    def record_interruption(
        self,
        reference: str,
        *,
        how: str,
        workflow_status: str,
        reason: str = "",
        identity: str = "",
        run_id: str = "",
        closed_at: datetime | None = None,
        command_id: str,
        at: datetime | None = None,
    ) -> CaseView:
        """On the case's record: its workflow ended outside the engine's control (`Case.WorkflowInterrupted`).
        Keyed by `command_id` (the engine derives it from the run that ended), so noticing it twice records it once."""

        from domain.case import SYSTEM_ACTOR

        def run(case: Any, rules: Rules, when: datetime) -> list[Any]:
            case.record_interruption(
                how=how,
                workflow_status=workflow_status,
                reason=reason,
                identity=identity,
                run_id=run_id,
                closed_at=closed_at,
                command_id=command_id,
                at=when,
            )
            return []

        state = self._apply(SYSTEM_ACTOR, reference, command_id, at, run)
        log.warning("case.workflow_interrupted", case=reference, how=how, run_id=run_id)
        return state

    # --- queries ----------------------------------------------------------------------------

    def authorize_read(self, actor: Actor) -> None:
        """Every known role may read every case (the auditor reads everything, changes nothing)."""
        self._check_actor(actor)

    def get(self, reference: str, *, actor: Actor, version: int | None = None) -> CaseView:
        """The case as it stands (or stood at `version`). Every known role may read."""
        self._check_actor(actor)
        return self.state(reference, version=version)

    def state(self, reference: str, *, version: int | None = None, history: bool = True) -> CaseView:
        """A case of any kind as plain data. A routed case's decision history (`details["decisions"]`)
        is read from its events, not its snapshot, so only where it is shown (`history`); commands'
        answers, and what the workflows wait on, go without it."""
        case = self._load(reference, version)
        view = self._view(case)
        return self._with_history(case, view) if history else view

    def _with_history(self, case: Any, view: CaseView) -> CaseView:
        shown = getattr(case, "decision_history", None)
        if shown is None:
            return view
        events = self.events.get(case.id, lte=case.version)
        return replace(view, details={**view.details, "decisions": shown(events)})

    def result_of(self, reference: str, command_id: str) -> CaseView | None:
        """The case right after `command_id` was applied, or None if it never was."""
        case, receipt = self._load_with_receipt(reference, command_id)
        applied = _applied(case, command_id, receipt)
        return None if applied is None else self.state(reference, version=applied, history=False)

    def history(self, reference: str, *, actor: Actor) -> list[HistoryEntry]:
        """Every event of the case in order, with when, who and what changed."""
        from domain.case import case_id

        self._check_actor(actor)
        self._load(reference)
        entries = []
        for ev in self.events.get(case_id(reference)):
            data = {k: v for k, v in ev.__dict__.items() if k not in _BOOKKEEPING}
            meta = getattr(ev, "meta", {}) or {}
            entries.append(
                HistoryEntry(
                    version=ev.originator_version,
                    event=type(ev).__name__,
                    recorded_at=cast(Recorded.Event, ev).timestamp,
                    at=getattr(ev, "at", None),
                    actor_id=getattr(ev, "actor_id", "") or meta.get("actor_id", ""),
                    actor_role=getattr(ev, "actor_role", "") or meta.get("actor_role", ""),
                    command_id=getattr(ev, "command_id", "") or meta.get("command_id", ""),
                    changes=data,
                    reference=meta.get("reference", reference),
                    workflow_id=meta.get("workflow_id", ""),
                    policy_hash=meta.get("policy_hash", ""),
                    forum=str(data.get("forum", "")),
                    prev_hash=getattr(ev, "prev_hash", ""),
                    hash=event_hash(ev),
                )
            )
        return entries

    def version_at(self, reference: str, instant: datetime) -> int:
        """The case's version as it stood at `instant` (the last event recorded at or before it)."""
        from domain.case import case_id

        self._load(reference)
        versions = [
            e.originator_version
            for e in self.events.get(case_id(reference))
            if cast(Recorded.Event, e).timestamp <= instant
        ]
        if not versions:
            raise CaseNotFoundError(f"{reference} did not exist yet at {instant.isoformat()}")
        return versions[-1]

    def max_notification_id(self) -> int:
        return self.recorder.max_notification_id() or 0

    def stamp(self, reference: str, command_id: str, actor: Actor) -> Any:
        """Metadata for events made inside (for other services writing to this store: the directory)."""
        return self._stamp(reference, command_id, actor)

    # --- internals --------------------------------------------------------------------------

    @contextmanager
    def _stamp(
        self,
        reference: str,
        command_id: str,
        actor: Actor,
        policy_hash: str | None = None,
        *,
        receipted: bool = False,
    ) -> Iterator[None]:
        """What the events made inside record beside their own fields (domain/recorded.py): who, which
        command, which case and workflow, and the policy the case runs under (the current one unless
        the case's own is given); `receipted`: the command is saved with its own receipt."""
        meta = {
            "actor_id": actor.id,
            "actor_role": actor.role,
            "command_id": command_id,
            "reference": reference,
            "workflow_id": workflow_id_cvar.get(),
            "policy_hash": policy_hash or self.rules.policy.content_hash,
        }
        if receipted:
            meta[RECEIPTED] = "1"
        token = meta_cvar.set(meta)
        try:
            yield
        finally:
            meta_cvar.reset(token)

    def _check_actor(self, actor: Actor) -> None:
        from domain.case import SYSTEM_ACTOR

        if actor == SYSTEM_ACTOR:
            return
        if not self.policy.is_known_role(actor.role):
            raise NotAllowedError(f"role {actor.role!r} is not known; roles: {self.policy.known_roles_text}")

    def _check_acting(self, actor: Actor, reference: str = "") -> None:
        """A command's actor: a known role, and not one that acts for a party that has left the
        partnership (its representative, or its own body's secretary): such a party takes no part."""
        self._check_actor(actor)
        self.check_role_takes_part(actor.role, reference)

    def check_role_takes_part(self, role: str, reference: str = "") -> None:
        """Refuse (FormerPartyError) a role that acts for a party that has left the partnership."""
        party = self.policy.party_acted_for(role)
        if party is not None:
            self.membership().check_acting_for(party, f"{reference or 'new cases'} (acting as {role})")

    def _apply(
        self,
        actor: Actor,
        reference: str,
        command_id: str,
        at: datetime | None,
        command: Callable[[Any, Rules, datetime], Any],
        *,
        loaded: Any = None,
    ) -> Any:
        """Load → command → save, idempotent by command id, retried on a concurrent write. The
        command may return other aggregates it changed (the partnership), saved atomically with it.
        `loaded`: the case and the command's receipt (or None) as the caller just read them, used
        for the first attempt.

        Idempotency: the command's receipt (`CaseCommandReceipt`: the version it produced) is saved
        in the same transaction as the case's new events. A repeat finds the receipt and is answered
        as the first time was, storing nothing; a duplicate running at the same moment collides with
        the first at the store (the receipt's id, or the case's version), reads again and finds it.
        Commands recorded before receipts are found in the case's own ledger (`Case._done`)."""
        from domain.references import CaseCommandReceipt
        from domain.termination import Partnership

        if not command_id:
            raise InvalidInputError("a command needs a command id")
        when = at or self._clock()
        with self._one_read_of_membership():
            for attempt in range(CONFLICT_ATTEMPTS):
                if attempt == 0 and loaded is not None:
                    case, receipt = loaded
                else:
                    case, receipt = self._load_with_receipt(reference, command_id)
                applied = _applied(case, command_id, receipt)
                if applied is not None:
                    # Already applied (a retry): the same answer as the first time, nothing stored.
                    return self.state(reference, version=applied, history=False)
                if _scope_reused(case, command_id, receipt):
                    raise IdempotencyKeyReusedError(REUSED_KEY)  # the same person's key, route and case: other fields
                if attempt:
                    _command_membership.set(self.partnership().membership(self.rules.calendar))  # read afresh
                rules = self.rules_now(case)
                with self._stamp(reference, command_id, actor, rules.policy.content_hash, receipted=True):
                    others = command(case, rules, when) or []
                    done = CaseCommandReceipt(reference=reference, command_id=command_id, version=case.version)
                try:
                    self.save(case, done, *others)
                except RecordConflictError:
                    continue  # another writer got there first: run the command on what they recorded
                for other in others:
                    if isinstance(other, Partnership):  # the answer shows the partnership as it now stands
                        _command_membership.set(other.membership(self.rules.calendar))
                return self._view(case)
        raise RecordConflictError(f"{reference} kept changing under {CONFLICT_ATTEMPTS} attempts")

    def _start(
        self, prefix: str, actor: Actor, command_id: str, at: datetime | None, build: Callable[[str, datetime], Any]
    ) -> Any:
        """Number a new case in its year's sequence and save it with the sequence and a receipt for
        its command id, in one transaction (so a repeated start returns the case it opened)."""
        self._check_acting(actor)
        if not command_id:
            raise InvalidInputError("a command needs a command id")
        at = at or self._clock()
        # Every start of a year's kind takes the next number of one sequence: a hot spot. Starts in
        # this process take turns; starts in other processes conflict at the store and try again
        # after a short random pause, so they do not keep colliding in step.
        with self._start_lock:
            return self._start_numbered(prefix, actor, command_id, at, build)

    def _start_numbered(
        self, prefix: str, actor: Actor, command_id: str, at: datetime, build: Callable[[str, datetime], Any]
    ) -> Any:
        from domain.references import CommandReceipt

        for _ in range(START_ATTEMPTS):
            done = self._receipt(command_id)
            if done is not None:
                return self.state(done, history=False)
            year = self.rules.calendar.local_date(at).year
            with self._stamp(f"{prefix}-{year}", command_id, actor):
                sequence = self._sequence(prefix, year)
                reference = sequence.issue()
            with self._stamp(reference, command_id, actor):
                case = build(reference, at)
                receipt = CommandReceipt(command_id=scope_of(command_id) or command_id, reference=reference)
                adopted = self._policy_version()
            try:
                self.save(sequence, case, receipt, adopted)
            except RecordConflictError:
                sleep(random.uniform(0, 0.05))  # another start took this number: look again
                continue
            log.info("case.started", case=reference, actor=str(actor), kind=type(case).__name__)
            return self._view(case)
        raise RecordConflictError(f"could not number a new case after {START_ATTEMPTS} tries")

    def _policy_version(self) -> PolicyVersion | None:
        """The current policy's text, to be stored with the first case that starts under it."""
        if PolicyVersion.create_id(self.policy.content_hash) in self.repository:
            return None
        return PolicyVersion(content_hash=self.policy.content_hash, text=self.policy.source_text)

    def _view(self, case: Any) -> CaseView:
        return case.view(self.rules_now(case))

    def _load_with_receipt(self, reference: str, command_id: str) -> tuple[Any, CaseCommandReceipt | None]:
        """The case and the receipt of `command_id` on it (None if it has none), in one read where
        the store offers that."""
        from domain.case import case_id
        from domain.references import CaseCommandReceipt

        receipt_id = _receipt_id(reference, command_id)
        found = self.repository.get_many([case_id(reference), receipt_id])  # type: ignore[attr-defined]
        receipt = found.get(receipt_id)
        return self._checked(reference, found.get(case_id(reference))), (
            receipt if isinstance(receipt, CaseCommandReceipt) else None
        )

    def _load(self, reference: str, version: int | None = None) -> Any:
        from domain.case import case_id

        try:
            case: Case = self.repository.get(case_id(reference), version=version)
        except AggregateNotFoundError:
            raise CaseNotFoundError(f"no case has the reference {reference!r}") from None
        return self._checked(reference, case)

    @staticmethod
    def _checked(reference: str, case: Any) -> Any:
        """`case` if it is a case (not None, not another kind of aggregate under that id). Only the
        kinds whose modules are loaded are asked about: a case's class was imported to load it, so
        one never imported cannot be its kind, and reading a proposal need not import them all."""
        kinds = tuple(getattr(sys.modules[module], name) for module, name in CASE_KINDS if module in sys.modules)
        if not isinstance(case, kinds):
            raise CaseNotFoundError(f"no case has the reference {reference!r}")
        return case

    def __contains__(self, reference: str) -> bool:
        from domain.case import case_id

        return case_id(reference) in self.repository

    # --- the partnership --------------------------------------------------------------------

    def partnership(self) -> Partnership:
        """The partnership's members. Until its first change is stored, it is formed afresh from the
        policy's parties (MOU start date) and saved with that change, so reading writes nothing."""
        from domain.termination import Partnership

        try:
            return self.repository.get(Partnership.create_id())
        except AggregateNotFoundError:
            return self._first_partnership()

    def _first_partnership(self) -> Partnership:
        from domain.termination import Partnership

        p = self.policy.partnership
        return Partnership(members=list(p.parties), started_on=self.rules.calendar.at(p.started_on, time(0, 0)))

    def partnership_view(self, *, actor: Actor) -> dict[str, Any]:
        self._check_actor(actor)
        p = self.partnership()
        return {
            "members": list(p.members),
            "started_on": p.started_on.isoformat(),
            "ended_on": p.ended_on.isoformat() if p.ended_on else None,
            "departures": list(p.departures),
            "pending_notices": [
                {
                    "reference": n.reference,
                    "party": n.party,
                    "served_on": n.served_on,
                    "effective": n.effective,
                    "mutual_termination_on": n.agreed_on,
                }
                for n in self._pending_notices()
            ],
            "agreements": [
                {
                    "reference": a.reference,
                    "leaving": a.leaving,
                    "effective": a.effective,
                    "status": a.status,
                    "signed": sorted(a.signed),
                }
                for a in self._live_agreements()
            ],
        }

    def references(
        self, prefixes: tuple[str, ...] = ("PRO", "DSP", "TRM", "AGR", "VAR", "FUN", "FND", "FOI", "REV", "RPT")
    ) -> Iterator[str]:
        """Every case reference issued, kind by kind and year by year (from the reference sequences)."""
        from domain.references import ReferenceSequence

        last_year = self.rules.calendar.local_date(self._clock()).year + 1
        for prefix in prefixes:
            for year in range(self.policy.partnership.started_on.year, last_year + 1):
                try:
                    sequence: ReferenceSequence = self.repository.get(ReferenceSequence.create_id(prefix, year))
                except AggregateNotFoundError:
                    continue
                for n in range(1, sequence.last + 1):
                    yield f"{prefix}-{year}-{n:04d}"

    def _pending_notices(self) -> list[TerminationNotice]:
        """Notices not yet concluded, found through the reference sequences (there are few)."""
        from domain.case import case_id

        notices: Iterator[TerminationNotice] = (
            self.repository.get(case_id(reference)) for reference in self.references(("TRM",))
        )
        return [n for n in notices if n.status == "pending"]

    def _live_agreements(self) -> list[TerminationAgreement]:
        """Termination agreements awaiting signatures or in force and not yet taken effect."""
        from domain.case import case_id

        agreements: Iterator[TerminationAgreement] = (
            self.repository.get(case_id(reference)) for reference in self.references(("AGR",))
        )
        return [a for a in agreements if a.status in ("open", "in_force")]

    def _receipt(self, command_id: str) -> str | None:
        """The case (or `fund:NAME`) a start command opened, or None. A scoped command id's receipt is
        kept under its scope (person, route, key), so the same scope with other fields is refused."""
        from domain.references import CommandReceipt

        scope = scope_of(command_id)
        try:
            receipt: CommandReceipt = self.repository.get(CommandReceipt.create_id(scope or command_id))
        except AggregateNotFoundError:
            return None
        if scope is not None and self._first_meta(receipt.id).get("command_id") != command_id:
            raise IdempotencyKeyReusedError(REUSED_KEY)
        return receipt.reference

    def _first_meta(self, aggregate_id: UUID) -> dict[str, str]:
        """Who, under which command id, recorded an aggregate's first event."""
        first = next(iter(self.events.get(aggregate_id, lte=1)), None)
        return dict(getattr(first, "meta", None) or {})

    def started_by(self, command_id: str) -> tuple[str, str, str] | None:
        """For a command id recorded as it was given (before keys were scoped): the case (or
        `fund:NAME`) its start opened, and the id and role of the person who gave it; None if none."""
        from domain.references import CommandReceipt

        try:
            receipt: CommandReceipt = self.repository.get(CommandReceipt.create_id(command_id))
        except AggregateNotFoundError:
            return None
        meta = self._first_meta(receipt.id)
        return receipt.reference, meta.get("actor_id", ""), meta.get("actor_role", "")

    def replay(self, reference: str, command_id: str, *, user_id: str, legacy_key: str = "") -> tuple[int, str] | None:
        """Whether `user_id`'s command was applied to the case already: the version it produced and
        the role it was given in, or None for a new command. A scoped command id answers only itself;
        the same scope with other fields is refused. `legacy_key`, a command id recorded as it was
        given before keys were scoped, answers only the person who gave it."""
        from domain.case import case_id

        case, own = self._load_with_receipt(reference, command_id)
        for cid in (command_id, legacy_key):
            if not cid:
                continue
            receipt = own if cid == command_id else self._load_with_receipt(reference, cid)[1]
            applied = _applied(case, cid, receipt)
            if applied is None:
                continue
            event = next(iter(self.events.get(case_id(reference), gt=applied - 1, lte=applied)), None)
            meta = getattr(event, "meta", None) or {}
            actor_id = getattr(event, "actor_id", "") or meta.get("actor_id", "")
            if actor_id == user_id:
                return applied, getattr(event, "actor_role", "") or meta.get("actor_role", "")
        if _scope_reused(case, command_id, own):
            raise IdempotencyKeyReusedError(REUSED_KEY)
        return None

    def _sequence(self, prefix: str, year: int) -> ReferenceSequence:
        from domain.references import ReferenceSequence

        try:
            return self.repository.get(ReferenceSequence.create_id(prefix, year))
        except AggregateNotFoundError:
            return ReferenceSequence(prefix=prefix, year=year)
