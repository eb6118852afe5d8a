"""Cases that move through forums stage by stage, with a deadline, a reminder and escalation at
each: the shared machinery of contract variations and funding changes.

A subclass names its policy section (`RULES`), the outcomes each stage allows (`outcomes`) and where
each outcome leads (`route`); this class records decisions, withdrawals, reminders and escalations.
A missed deadline is escalated: recorded, with the escalation forum named, and the stage stays open
for its own forum (the seeds give the escalation forum no power to decide in its place for these
kinds; proposals, whose escalation the governance doc spells out, run their own richer rules).
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime
from typing import Any, ClassVar

from eventsourcing.domain import event
from pydantic import Field

from domain.actor import Actor
from domain.case import SYSTEM_ACTOR, Case, CaseAction, Command, Rules, Timer
from domain.errors import (
    CaseClosedError,
    DeadlineNotReachedError,
    NotAllowedError,
    NotYourForumError,
    OutcomeNotAllowedError,
    WrongStageError,
)
from domain.policy import FundingRules, StageRule, VariationRules
from domain.timing import StageTimes, stage_times

OPEN = "open"


class Decide(Command):
    stage: str = Field(min_length=1)
    outcome: str = Field(min_length=1)
    minutes_ref: str = ""
    note: str = ""


class Withdraw(Command):
    note: str = ""


class StagedCase(Case):
    RULES: ClassVar[str]  # "variation" or "funding": the policy section with stages and deadlines
    WITHDRAWN_BY: ClassVar[str] = "starts_variations"

    # --- what a subclass says -----------------------------------------------------------------

    @abstractmethod
    def outcomes(self, rules: Rules, stage: str) -> list[str]:
        """The outcomes `stage` allows for this case."""

    @abstractmethod
    def route(self, rules: Rules, stage: str, outcome: str) -> tuple[str, str]:
        """(next stage or "", status) after `outcome` at `stage`."""

    def check_route(self, rules: Rules, stage: str, outcome: str, next_stage: str) -> None:
        """A subclass may refuse a move the route allows (e.g. a lever not yet notified)."""

    # --- shared state -------------------------------------------------------------------------

    def _begin(self, *, reference: str, title: str, policy_hash: str, actor_id: str, actor_role: str,
               command_id: str, at: datetime, stage: str, deadline: datetime, reminder_at: datetime | None) -> None:
        self.reference = reference
        self.title = title
        self.policy_hash = policy_hash
        self.started_by = {"id": actor_id, "role": actor_role}
        self.started_at = at
        self.status = OPEN
        self.stage = ""
        self.stage_seq = 0
        self.deadline: datetime | None = None
        self.reminder_at: datetime | None = None
        self.reminder_sent = False
        self.escalated_to: str | None = None
        self.decisions: list[dict[str, Any]] = []
        self.command_versions: dict[str, int] = {command_id: 1}
        self._open_stage(stage, deadline, reminder_at)

    def section(self, rules: Rules) -> VariationRules | FundingRules:
        return getattr(rules.policy, self.RULES)

    def stage_rule(self, rules: Rules, stage: str) -> StageRule:
        return self.section(rules).stages[stage]

    def times(self, rules: Rules, stage: str, at: datetime) -> StageTimes:
        section = self.section(rules)
        return stage_times(rules, section.stages[stage].deadline, at, section.reminder_working_days)

    def stage_actions(self, rules: Rules) -> list[CaseAction]:
        if self.status != OPEN:
            return []
        decider = rules.policy.decider_of(self.stage_rule(rules, self.stage).forum)
        withdrawers = getattr(rules.policy.roles, self.WITHDRAWN_BY)
        return [CaseAction("decide", [decider]), CaseAction("withdraw", list(withdrawers))]

    def timers(self) -> list[Timer]:
        if self.status != OPEN or self.deadline is None:
            return []
        timers = []
        if self.reminder_at and not self.reminder_sent:
            timers.append(Timer(f"remind:{self.stage_seq}", self.reminder_at))
        if not self.escalated_to:
            timers.append(Timer(f"escalate:{self.stage_seq}", self.deadline))
        return timers

    def stage_details(self) -> dict[str, Any]:
        return {"escalated_to": self.escalated_to, "decisions": [dict(d) for d in self.decisions]}

    # --- commands -----------------------------------------------------------------------------

    def decide(self, rules: Rules, *, actor: Actor, command: Decide, command_id: str, at: datetime) -> None:
        """Record a forum's decision at the current stage and move the case on."""
        self._check_open()
        if command.stage != self.stage:
            last = self.decisions[-1] if self.decisions else None
            already = f"; decision already recorded: {last['stage']}: {last['outcome']} by {last['by']}" if last else ""
            raise WrongStageError(f"{self.reference} is awaiting {self.stage}, not {command.stage}{already}")
        forum = self.stage_rule(rules, self.stage).forum
        decider = rules.policy.decider_of(forum)
        if actor.role != decider:
            error = NotYourForumError if actor.role.startswith("secretary:") else NotAllowedError
            raise error(f"role {actor.role} may not decide at {self.stage} for {self.reference}; {decider} decides there")
        allowed = self.outcomes(rules, self.stage)
        if command.outcome not in allowed:
            raise OutcomeNotAllowedError(
                f"outcome {command.outcome!r} is not allowed at {self.stage} for {self.reference}; "
                f"allowed: {', '.join(allowed)}"
            )
        next_stage, status = self.route(rules, self.stage, command.outcome)
        self.check_route(rules, self.stage, command.outcome, next_stage)
        times = self.times(rules, next_stage, at) if status == OPEN else None
        self._decide(stage=self.stage, forum=forum, outcome=command.outcome, minutes_ref=command.minutes_ref,
                     note=command.note, next_stage=next_stage, status=status,
                     deadline=times.deadline if times else None, reminder_at=times.reminder_at if times else None,
                     **self._who(actor, command_id, at))

    @event("Decided")
    def _decide(self, *, stage: str, forum: str, outcome: str, minutes_ref: str, note: str, next_stage: str,
                status: str, deadline: datetime | None, reminder_at: datetime | None, actor_id: str,
                actor_role: str, command_id: str, at: datetime) -> None:
        self.decisions.append({"stage": stage, "forum": forum, "outcome": outcome, "minutes_ref": minutes_ref,
                               "note": note, "by": f"{actor_role}:{actor_id}", "at": at.isoformat()})
        self._done(command_id)
        self.status = status
        self.escalated_to = None
        if status != OPEN:
            self.deadline = self.reminder_at = None
        elif deadline is not None:
            self._open_stage(next_stage, deadline, reminder_at)

    def withdraw(self, rules: Rules, *, actor: Actor, command: Withdraw, command_id: str, at: datetime) -> None:
        self._check_open()
        allowed = getattr(rules.policy.roles, self.WITHDRAWN_BY)
        if actor.role not in allowed:
            raise NotAllowedError(f"role {actor.role} may not withdraw {self.reference}; allowed: {', '.join(allowed)}")
        self._withdraw(note=command.note, **self._who(actor, command_id, at))

    @event("Withdrawn")
    def _withdraw(self, *, note: str, actor_id: str, actor_role: str, command_id: str, at: datetime) -> None:
        self.status = "withdrawn"
        self.deadline = self.reminder_at = None
        self._done(command_id)

    def fire(self, rules: Rules, *, timer: str, command_id: str, at: datetime) -> None:
        self._check_open()
        due = {t.name: t.at for t in self.timers()}
        if timer not in due:
            raise DeadlineNotReachedError(f"{self.reference} has no timer {timer!r} pending")
        if at < due[timer]:
            raise DeadlineNotReachedError(f"{timer} for {self.reference} is due at {due[timer].isoformat()}")
        who = self._who(SYSTEM_ACTOR, command_id, at)
        forum = self.stage_rule(rules, self.stage).forum
        if timer.startswith("remind:"):
            self._remind(stage=self.stage, forum=forum, recipient_role=rules.policy.decider_of(forum),
                         deadline=self.deadline, **who)
        else:
            self._escalate(stage=self.stage, missed_deadline=self.deadline,
                           to_forum=self.section(rules).escalation_forum, **who)

    @event("ReminderSent")
    def _remind(self, *, stage: str, forum: str, recipient_role: str, deadline: datetime | None, actor_id: str,
                actor_role: str, command_id: str, at: datetime) -> None:
        self.reminder_sent = True
        self._done(command_id)

    @event("Escalated")
    def _escalate(self, *, stage: str, missed_deadline: datetime | None, to_forum: str, actor_id: str,
                  actor_role: str, command_id: str, at: datetime) -> None:
        self.escalated_to = to_forum
        self._done(command_id)

    # --- internals ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.status != OPEN:
            raise CaseClosedError(f"{self.reference} is {self.status}; it takes no more commands")

    def _open_stage(self, stage: str, deadline: datetime, reminder_at: datetime | None) -> None:
        self.stage = stage
        self.stage_seq += 1
        self.deadline = deadline
        self.reminder_at = reminder_at
        self.reminder_sent = False
        self.escalated_to = None
