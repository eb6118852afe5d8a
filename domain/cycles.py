"""Review and report cycles (`REV-2026-0001`, `RPT-2026-0001`): the recurring duties of the MOU and
the terms of reference, each opened by a firing of a Temporal Schedule declared in the policy
(`[schedules.NAME]`, `workflows/schedules.py`).

One aggregate, `CycleCase`, serves both duties; `duty` says which (`review` or `report`) and picks
the reference's prefix, so a register can tell them apart at a glance while the lifecycle, commands
and clock stay one piece of code. A case is opened by the system (the schedule) with the schedule's
name, the instant it was scheduled for, its owner role, a deadline (close of business on the
policy's working days after the scheduled day), and for a report the figures it reports, taken when
it opened (so the record says what the report was about, whatever changes later).

Lifecycle: `open` → the owner records it done with a document reference and a note (`done`). A
reminder goes to the owner before the deadline; the deadline passing is recorded (`Overdue`) and
escalated to the schedule's `escalate_to` role, who may then record it done in the owner's place.

Invariants: one case per schedule firing (the command id `schedule:<name>:<scheduled instant>` is
the store's receipt); only the owner (or, once escalated, the escalation role) records it done;
every command id is applied at most once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.actor import Actor
from domain.case import SYSTEM_ACTOR, Case, CaseAction, CaseView, Command, Rules, Timer
from domain.errors import (
    CaseClosedError,
    DeadlineNotReachedError,
    InvalidInputError,
    NotAllowedError,
    TriggeredTooSoonError,
    closed_text,
)
from domain.recorded import Recorded
from domain.values import Note, Reference

OPEN = "open"
DONE = "done"
PREFIXES = {"review": "REV", "report": "RPT"}
# A firing by hand this soon after the last is the same wish twice (ScheduleControl).
TRIGGER_GAP = timedelta(minutes=1)


class RecordDone(Command):
    document_ref: Reference
    note: Note = ""


def scheduled_command_id(schedule: str, scheduled_at: datetime) -> str:
    """The command id of one firing: a repeated firing of the same instant finds its receipt."""
    return f"schedule:{schedule}:{scheduled_at.isoformat()}"


class CycleCase(Case):
    kind: ClassVar[str] = "cycle"

    @classmethod
    def open(
        cls,
        rules: Rules,
        *,
        reference: str,
        schedule: str,
        scheduled_at: datetime,
        figures: dict[str, Any],
        command_id: str,
        at: datetime,
    ) -> CycleCase:
        rule = rules.policy.schedules.get(schedule)
        if rule is None:
            known = ", ".join(rules.policy.schedules) or "none"
            raise InvalidInputError(f"no schedule is named {schedule!r}; schedules: {known}")
        cal = rules.calendar
        deadline = cal.deadline_after(scheduled_at, rule.deadline_working_days)
        return cls._create(
            cls.Opened,
            reference=reference,
            duty=rule.opens,
            schedule=schedule,
            title=rule.title,
            owner=rule.owner,
            escalate_to=rule.escalate_to,
            reminder_working_days=rule.reminder_working_days,
            scheduled_at=scheduled_at,
            deadline=deadline,
            figures=figures,
            policy_hash=rules.policy.content_hash,
            actor_id=SYSTEM_ACTOR.id,
            actor_role=SYSTEM_ACTOR.role,
            command_id=command_id,
            at=at,
        )

    class Opened(Case.Created):
        reference: str
        duty: str
        schedule: str
        title: str
        owner: str
        escalate_to: str
        reminder_working_days: int
        scheduled_at: datetime
        deadline: datetime
        figures: dict[str, Any]
        policy_hash: str
        actor_id: str
        actor_role: str
        command_id: str
        at: datetime

    @event(Opened)
    def __init__(
        self,
        *,
        reference: str,
        duty: str,
        schedule: str,
        title: str,
        owner: str,
        escalate_to: str,
        reminder_working_days: int,
        scheduled_at: datetime,
        deadline: datetime,
        figures: dict[str, Any],
        policy_hash: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.reference = reference
        self.duty = duty
        self.schedule = schedule
        self.title = title
        self.owner = owner
        self.escalate_to = escalate_to
        self.reminder_working_days = reminder_working_days
        self.scheduled_at = scheduled_at
        self.deadline = deadline
        self.figures = dict(figures)
        self.policy_hash = policy_hash
        self.started_by = {"id": actor_id, "role": actor_role}
        self.started_at = at
        self.status = OPEN
        self.reminded = False
        self.escalated = False
        self.done: dict[str, str] | None = None
        self.command_versions: dict[str, int] = {command_id: 1}

    ACTIONS: ClassVar[dict[str, tuple[type[Command], str]]] = {"record_done": (RecordDone, "record_done")}

    def actions(self, rules: Rules) -> list[CaseAction]:
        if self.status != OPEN:
            return []
        roles = [self.owner, *([self.escalate_to] if self.escalated and self.escalate_to != self.owner else [])]
        return [CaseAction("record_done", roles)]

    def timers(self, rules: Rules) -> list[Timer]:
        if self.status != OPEN:
            return []
        found: list[Timer] = []
        if self.reminder_working_days and not self.reminded:
            at = rules.calendar.reminder_before(self.deadline, self.reminder_working_days)
            if at > self.started_at:
                found.append(Timer("remind", at))
        if not self.escalated:
            found.append(Timer("overdue", self.deadline))
        return found

    def view(self, rules: Rules) -> CaseView:
        return CaseView(
            reference=self.reference,
            kind=self.kind,
            title=f"{self.duty.capitalize()}: {self.title}",
            status=self.status,
            stage=self.duty if self.status == OPEN else "",
            deadline=self.deadline if self.status == OPEN else None,
            version=self.version,
            policy_hash=self.policy_hash,
            started_at=self.started_at,
            started_by=dict(self.started_by),
            actions=self.actions(rules),
            timers=self.timers(rules),
            details={
                "duty": self.duty,
                "schedule": self.schedule,
                "owner": self.owner,
                "scheduled_at": self.scheduled_at.isoformat(),
                "due": rules.calendar.local_date(self.deadline).isoformat(),
                "escalated_to": self.escalate_to if self.escalated else None,
                "figures": self.figures,
                "done": dict(self.done) if self.done else None,
            },
        )

    def record_done(self, rules: Rules, *, actor: Actor, command: RecordDone, command_id: str, at: datetime) -> None:
        if self.status != OPEN:
            raise CaseClosedError(closed_text(self.reference, self.status))
        allowed = self.actions(rules)[0].roles
        if actor.role not in allowed:
            raise NotAllowedError(
                f"role {actor.role} may not record {self.reference} done; allowed: {', '.join(allowed)}"
            )
        self._recorded_done(
            document_ref=command.document_ref,
            note=command.note,
            on_time=at <= self.deadline,
            **self._who(actor, command_id, at),
        )

    @event("RecordedDone")
    def _recorded_done(
        self,
        *,
        document_ref: str,
        note: str,
        on_time: bool,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.status = DONE
        self.done = {
            "document_ref": document_ref,
            "note": note,
            "by": f"{actor_role}:{actor_id}",
            "at": at.isoformat(),
            "on_time": "yes" if on_time else "no",
        }
        self._done(command_id)

    def fire(self, rules: Rules, *, timer: str, command_id: str, at: datetime, **others: Any) -> None:
        if self.status != OPEN:
            raise CaseClosedError(closed_text(self.reference, self.status))
        due = {t.name: t.at for t in self.timers(rules)}
        if timer not in due:
            raise DeadlineNotReachedError(f"{self.reference} has no timer {timer!r} pending")
        if at < due[timer]:
            raise DeadlineNotReachedError(f"{timer} for {self.reference} is due at {due[timer].isoformat()}")
        who = self._who(SYSTEM_ACTOR, command_id, at)
        if timer == "remind":
            self._remind(recipient_role=self.owner, **who)
        else:
            self._overdue(escalated_to=self.escalate_to, **who)

    @event("ReminderSent")
    def _remind(self, *, recipient_role: str, actor_id: str, actor_role: str, command_id: str, at: datetime) -> None:
        self.reminded = True
        self._done(command_id)

    @event("Overdue")
    def _overdue(self, *, escalated_to: str, actor_id: str, actor_role: str, command_id: str, at: datetime) -> None:
        self.escalated = True
        self._done(command_id)


class ScheduleControl(Recorded):
    """An operator's pauses, resumptions and firings by hand of one schedule, on the record (id from
    its name). The schedule itself is Temporal's; this is the audit trail of who paused or fired it,
    when, and why.

    Invariant: a firing by hand comes at least `TRIGGER_GAP` after the one before. A report (or a
    review) is one duty for its period; two firings by hand within a minute are the same wish twice
    (a double press, two administrators at once), and each would open its own case, because Temporal
    fires a trigger for the instant it arrives. The second is refused; a minute on, a trigger opens
    another case, for when a report is truly wanted again."""

    @staticmethod
    def create_id(name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"https://concordat.invalid/schedules/{name}")

    @event("Started")
    def __init__(self, *, name: str) -> None:
        self.name = name
        self.paused = False
        self.history: list[dict[str, Any]] = []
        self.command_ids: set[str] = set()

    @event("Paused")
    def pause(self, *, reason: str, actor_id: str, actor_role: str, command_id: str, at: datetime) -> None:
        self.paused = True
        self.history.append({"paused": True, "reason": reason, "by": f"{actor_role}:{actor_id}", "at": at.isoformat()})
        self.command_ids.add(command_id)

    @event("Resumed")
    def resume(self, *, reason: str, actor_id: str, actor_role: str, command_id: str, at: datetime) -> None:
        self.paused = False
        self.history.append({"paused": False, "reason": reason, "by": f"{actor_role}:{actor_id}", "at": at.isoformat()})
        self.command_ids.add(command_id)

    def last_triggered(self) -> dict[str, Any] | None:
        return next((h for h in reversed(self.history) if h.get("triggered")), None)

    def trigger(self, *, reason: str, actor_id: str, actor_role: str, command_id: str, at: datetime) -> None:
        """Fire the schedule now, by hand: refused within `TRIGGER_GAP` of the last firing by hand."""
        last = self.last_triggered()
        if last is not None:
            since = at - datetime.fromisoformat(last["at"])
            if since < TRIGGER_GAP:
                raise TriggeredTooSoonError(
                    f"{self.name} was fired by hand {max(0, int(since.total_seconds()))}s ago by {last['by']}: "
                    f"a second firing within {int(TRIGGER_GAP.total_seconds())}s would open the same "
                    "report or review twice; see `concordat cycles list`"
                )
        self._triggered(reason=reason, actor_id=actor_id, actor_role=actor_role, command_id=command_id, at=at)

    @event("Triggered")
    def _triggered(self, *, reason: str, actor_id: str, actor_role: str, command_id: str, at: datetime) -> None:
        self.history.append(
            {
                "paused": self.paused,
                "triggered": True,
                "reason": reason,
                "by": f"{actor_role}:{actor_id}",
                "at": at.isoformat(),
            }
        )
        self.command_ids.add(command_id)
