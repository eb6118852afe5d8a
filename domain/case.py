"""What every case has, whatever its kind: an id that follows from its reference, the rules it is
judged by, the system actor that runs its clock, and the plain-data view the workflows wait on."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event
from pydantic import BaseModel, ConfigDict

from domain.actor import Actor
from domain.calendar import WorkingDayCalendar
from domain.membership import Membership
from domain.policy import Policy
from domain.recorded import RECEIPTED, Recorded, applying

CASE_NAMESPACE = uuid5(NAMESPACE_URL, "https://concordat.invalid/cases")
SYSTEM_ACTOR = Actor(id="concordat", role="system")


def case_id(reference: str) -> UUID:
    """A case's id follows from its reference, so a reference finds its case without an index."""
    return uuid5(CASE_NAMESPACE, reference)


@dataclass(frozen=True)
class Rules:
    """What a command needs to know besides the case: the policy, the calendar built from it, and
    the partnership's membership as it stands when the command is given (`domain/membership.py`;
    the application service passes it in, from the `Partnership`, with every command)."""

    policy: Policy
    calendar: WorkingDayCalendar
    membership: Membership

    @classmethod
    def from_policy(cls, policy: Policy) -> Rules:
        """The rules of a policy, for a partnership as formed (every party a member)."""
        return cls(
            policy=policy,
            calendar=WorkingDayCalendar(policy),
            membership=Membership.founding(policy.partnership.parties),
        )

    def with_membership(self, membership: Membership) -> Rules:
        return replace(self, membership=membership)


class Command(BaseModel):
    """A command's own fields (who and when travel beside it). Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


@dataclass(frozen=True)
class CaseAction:
    """A command someone may give now: its name and the roles that may give it. A decision names
    its stage and the outcomes allowed there (for an escalation's `decide`, `stage_outcomes` are what
    the escalation forum may decide in the stage's place). `barred` names the people (by id) whom
    the policy's separation of duties would refuse here, whatever roles they hold."""

    name: str
    roles: list[str]
    stage: str = ""
    outcomes: list[str] = field(default_factory=list)
    stage_outcomes: list[str] = field(default_factory=list)
    barred: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Timer:
    """An instant the case's workflow must wake at, and what it then asks the domain to do. Names
    are unique within a case, so each firing is its own idempotent command."""

    name: str
    at: datetime


@dataclass(frozen=True)
class CaseView:
    """A case of any kind as plain data: what `show` prints, the API returns and the workflow waits on.
    `stage` names the stages the case awaits (several, comma-separated, while parallel branches are
    open); `awaiting` has one entry per open stage; `route` the stages done, current and to come."""

    reference: str
    kind: str
    title: str
    status: str
    stage: str
    deadline: datetime | None
    version: int
    policy_hash: str
    started_at: datetime
    started_by: dict[str, str]
    actions: list[CaseAction]
    timers: list[Timer]
    details: dict[str, Any] = field(default_factory=dict)
    stage_seq: int = 0
    awaiting: list[dict[str, Any]] = field(default_factory=list)
    route: list[dict[str, Any]] = field(default_factory=list)
    last_decision: str | None = None


class Case(Recorded):
    """Base of the case aggregates: an id from the reference, and what is left of the command-id
    ledger in the aggregate (`command_versions`: command id → the version it produced).

    Every command on a case is now kept idempotent by a receipt of its own, saved with the case's
    new events (`domain/references.py`, `CaseService._apply`); its events say so in their `meta`,
    and the aggregate does not remember their command ids, so nothing here grows with every
    command. The ledger keeps the command that started the case, and the commands recorded before
    receipts (their events carry no mark): a repeat of one of those is still answered from it."""

    if TYPE_CHECKING:  # set by each kind's creation event; an annotation at run time would be an event field
        command_versions: dict[str, int]

    @staticmethod
    def create_id(reference: str) -> UUID:
        return case_id(reference)

    @staticmethod
    def _who(actor: Actor, command_id: str, at: datetime) -> dict[str, Any]:
        """The fields every event of a command carries: who, which command, when."""
        return {"actor_id": actor.id, "actor_role": actor.role, "command_id": command_id, "at": at}

    def _done(self, command_id: str) -> None:
        """Called in an event body: this command produced the version being applied. Remembered only
        for an event recorded before receipts; a receipted command's receipt remembers it."""
        applied = applying()
        meta = getattr(applied, "meta", None) or {}
        # The mark names the command's case (by its reference): another aggregate the command changed
        # (a meeting whose agenda item it records) keeps its own ledger as before.
        if meta.get(RECEIPTED) and case_id(str(meta.get("reference", ""))) == self.id:
            return
        self.command_versions[command_id] = self.version + 1

    class WorkflowInterrupted(Recorded.Event):
        """The case's Temporal workflow ended outside the engine's control while the case was live
        (`how`: terminated, canceled, timed_out, failed, completed, or missing), noticed by the engine
        at `at` and started again from the store. `workflow_status`, `reason` and `identity` are
        Temporal's own words (the reason and identity are whatever the one who ended it gave). It
        changes nothing of the case: no stage, deadline, timer or rule."""

        how: str
        workflow_status: str
        reason: str
        identity: str
        run_id: str
        closed_at: datetime | None
        actor_id: str
        actor_role: str
        command_id: str
        at: datetime

    def record_interruption(
        self,
        *,
        how: str,
        workflow_status: str,
        reason: str,
        identity: str,
        run_id: str,
        closed_at: datetime | None,
        command_id: str,
        at: datetime,
    ) -> None:
        self._interrupted(
            how=how,
            workflow_status=workflow_status,
            reason=reason,
            identity=identity,
            run_id=run_id,
            closed_at=closed_at,
            **self._who(SYSTEM_ACTOR, command_id, at),
        )

    @event(WorkflowInterrupted)
    def _interrupted(
        self,
        *,
        how: str,
        workflow_status: str,
        reason: str,
        identity: str,
        run_id: str,
        closed_at: datetime | None,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self._done(command_id)
