"""A proposal: a service commissioning, pathway change, service redesign or procurement, taken from
the Joint Commissioning Unit to whichever forums must decide it.

Lifecycle (governance.md, "Proposal"; MOU Schedule 1; ToR 2.7):

    jcu ──approve (within delegated authority)──────────────────────────────▶ approved
     │ refer
     ▼
    board ──approve (no higher forum must decide)────────────────────────────▶ approved
     │ recommend          (defer: to the next meeting, at most as often as the policy allows)
     ├──── major redesign ──▶ programme_board ──approve──┐
     ▼                                                    ▼
    cmet (only when the CCG is a party) ──recommend_*──▶ governing_body ──approve──▶ approved

Any forum may `reject` (the case ends rejected); a JCU lead may withdraw an open case. Where
public-health ring-fenced money is involved (Cabinet report 4.5.1), the final approval is not complete
until Public Health signs off the service specification and outcome measures: the approving decision
opens a `public_health` stage, whose `sign_off` approves the case and whose `refuse` rejects it.

Every stage has a deadline (policy data, computed on the working-day calendar when the stage opens)
and a reminder instant before it. A stage with no decision by its deadline is escalated to the
escalation forum (the Programme Board), which may `extend` the deadline, `decide` in the stage's
place, or `send_back` to the previous stage. When a stage that does not escalate misses its
deadline, the miss is recorded and the case waits, overdue.

Invariants: a closed case takes no command; a decision is recorded only by the forum's decider, only
at the case's current stage, and only with an outcome the stage allows for this case; every command
id is applied at most once (`command_versions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from eventsourcing.domain import event

from domain.actor import Actor
from domain.case import SYSTEM_ACTOR, Case, Rules
from domain.errors import (
    CaseClosedError,
    DeadlineNotReachedError,
    InvalidInputError,
    NotAllowedError,
    NotYourForumError,
    OutcomeNotAllowedError,
    WrongStageError,
    closed_text,
)
from domain.policy import Policy
from domain.recorded import upcast_adding
from domain.timing import StageTimes, stage_times, with_reminder

OPEN, APPROVED, REJECTED, WITHDRAWN = "open", "approved", "rejected", "withdrawn"


@dataclass(frozen=True)
class AllowedAction:
    """One thing a role may do now: decide `stage` with one of `outcomes`. For an escalation
    `decide`, `stage_outcomes` lists what the escalation forum may decide in the stage's place."""

    stage: str
    role: str
    outcomes: list[str]
    stage_outcomes: list[str]


class Proposal(Case):
    # --- creation ---------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        rules: Rules,
        *,
        reference: str,
        title: str,
        kind: str,
        value_pence: int,
        parties: list[str],
        public_health: bool,
        actor: Actor,
        command_id: str,
        at: datetime,
    ) -> Proposal:
        """Open a proposal at the JCU stage. Only a JCU lead may (governance.md, Roles)."""
        policy = rules.policy
        if actor.role not in policy.roles.starts_proposals:
            raise NotAllowedError(
                f"role {actor.role} may not start a proposal; allowed: "
                + ", ".join(policy.roles.starts_proposals)
            )
        title = title.strip()
        if not title:
            raise InvalidInputError("title is empty; give the proposal a title")
        if kind not in policy.proposal.kinds:
            raise InvalidInputError(
                f"kind {kind!r} is not known; allowed: {', '.join(policy.proposal.kinds)}"
            )
        if value_pence < 0:
            raise InvalidInputError("value must be zero or more (pence a year)")
        unknown = [p for p in parties if p not in policy.partnership.parties]
        if unknown or not parties:
            raise InvalidInputError(
                f"parties {','.join(unknown) or '(none)'} not known; allowed: "
                + ",".join(policy.partnership.parties)
            )
        ordered = [p for p in policy.partnership.parties if p in parties]
        times = _stage_times(rules, "jcu", at)
        return cls._create(
            cls.Started,
            reference=reference,
            title=title,
            kind=kind,
            value_pence=value_pence,
            parties=ordered,
            public_health=public_health,
            policy_hash=policy.content_hash,
            actor_id=actor.id,
            actor_role=actor.role,
            command_id=command_id,
            at=at,
            stage="jcu",
            deadline=times.deadline,
            reminder_at=times.reminder_at,
        )

    class Started(Case.Created):
        reference: str
        title: str
        kind: str
        value_pence: int
        parties: list[str]
        public_health: bool
        policy_hash: str
        actor_id: str
        actor_role: str
        command_id: str
        at: datetime
        stage: str
        deadline: datetime
        reminder_at: datetime | None

    @event(Started)
    def __init__(
        self,
        *,
        reference: str,
        title: str,
        kind: str,
        value_pence: int,
        parties: list[str],
        public_health: bool,
        policy_hash: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
        stage: str,
        deadline: datetime,
        reminder_at: datetime | None,
    ) -> None:
        self.reference = reference
        self.title = title
        self.kind = kind
        self.value_pence = value_pence
        self.parties = list(parties)
        self.public_health = public_health
        self.policy_hash = policy_hash
        self.started_by = {"id": actor_id, "role": actor_role}
        self.started_at = at
        self.status = OPEN
        self.stage = ""
        self.path: list[str] = []
        self.stage_seq = 0
        self.escalated_to: str | None = None
        self.deadline: datetime | None = None
        self.reminder_at: datetime | None = None
        self.reminder_sent = False
        self.deadline_missed = False
        self.deadlines: dict[str, str] = {}
        self.deferrals = 0
        self.public_health_signed_off = False
        self.decisions: list[dict[str, Any]] = []
        self.command_versions: dict[str, int] = {command_id: 1}
        self._open_stage(stage, deadline, reminder_at)

    # --- questions --------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    def last_decision_text(self) -> str | None:
        """The latest decision in a line, to tell a person who was beaten to it what was recorded."""
        if not self.decisions:
            return None
        d = self.decisions[-1]
        outcome = f"{d['outcome']} {d['stage_outcome']}" if d.get("stage_outcome") else d["outcome"]
        return f"{d['stage']}: {outcome} by {d['actor_role']}:{d['actor_id']} at {d['at']}"

    def within_delegated_authority(self, policy: Policy) -> bool:
        """MOU Schedule 1 (h): the JCU decides within its delegated authority; a major redesign never is."""
        rules = policy.proposal
        return (
            self.value_pence <= rules.delegated_authority_pence
            and self.kind not in rules.kinds_decided_above_board
        )

    def ccg_is_party(self, policy: Policy) -> bool:
        return policy.partnership.ccg_party in self.parties

    def stage_outcomes(self, policy: Policy, stage: str) -> list[str]:
        """The outcomes `stage` allows for this case, in the governance vocabulary."""
        major = self.kind in policy.proposal.kinds_decided_above_board
        if stage == "jcu":
            return (["approve"] if self.within_delegated_authority(policy) else []) + [
                "refer",
                "reject",
            ]
        if stage == "board":
            higher = major or self.ccg_is_party(policy)
            outcomes = ["recommend"] if higher else ["approve"]
            outcomes.append("reject")
            if self.deferrals < policy.proposal.board_deferrals_allowed:
                outcomes.append("defer")
            return outcomes
        if stage in ("programme_board", "governing_body"):
            return ["approve", "reject"]
        if stage == "cmet":
            return ["recommend_approval", "recommend_rejection"]
        if stage == "public_health":
            return ["sign_off", "refuse"]
        return []

    def allowed_actions(self, policy: Policy) -> list[AllowedAction]:
        """Who may decide what now. The workflow's update validators check against this list."""
        if not self.is_open:
            return []
        if self.escalated_to:
            outcomes = ["extend", "decide"] + (["send_back"] if len(self.path) > 1 else [])
            return [
                AllowedAction(
                    stage=self.escalated_to,
                    role=policy.decider_of(self.escalated_to),
                    outcomes=outcomes,
                    stage_outcomes=[
                        o for o in self.stage_outcomes(policy, self.stage) if o != "defer"
                    ],
                )
            ]
        forum = policy.stage(self.stage).forum
        return [
            AllowedAction(
                stage=self.stage,
                role=policy.decider_of(forum),
                outcomes=self.stage_outcomes(policy, self.stage),
                stage_outcomes=[],
            )
        ]

    # --- commands ---------------------------------------------------------------------------

    def decide(
        self,
        rules: Rules,
        *,
        actor: Actor,
        stage: str,
        outcome: str,
        minutes_ref: str,
        note: str,
        command_id: str,
        at: datetime,
        stage_outcome: str | None = None,
        new_deadline: date | None = None,
    ) -> None:
        """Record a forum's decision at the case's current stage and move the case on.

        Only the forum's decider may record it (`secretary:<forum>` for that forum only; the Lead
        Director at the JCU); only at the current stage; only with an outcome the stage allows."""
        policy = rules.policy
        self._check_open()
        actions = self.allowed_actions(policy)
        action = next((a for a in actions if a.stage == stage), None)
        if action is None:
            current = actions[0].stage if actions else self.stage
            last = self.last_decision_text()
            already = f"; decision already recorded: {last}" if last else ""
            raise WrongStageError(f"{self.reference} is awaiting {current}, not {stage}{already}")
        if actor.role != action.role:
            cls = NotYourForumError if actor.role.startswith("secretary:") else NotAllowedError
            raise cls(
                f"role {actor.role} may not decide at {stage} for {self.reference}; "
                f"{action.role} decides there"
            )
        if outcome not in action.outcomes:
            raise OutcomeNotAllowedError(
                f"outcome {outcome!r} is not allowed at {stage} for {self.reference}; "
                f"allowed: {', '.join(action.outcomes)}"
            )
        decided_stage = self.stage
        effective = outcome
        if self.escalated_to:
            if outcome == "decide":
                if stage_outcome not in action.stage_outcomes:
                    raise OutcomeNotAllowedError(
                        f"decide in place of {self.stage} needs --stage-outcome, one of: "
                        + ", ".join(action.stage_outcomes)
                    )
                effective = stage_outcome
            elif stage_outcome:
                raise InvalidInputError("--stage-outcome goes only with the outcome 'decide'")
        elif stage_outcome:
            raise InvalidInputError("--stage-outcome goes only with an escalation's 'decide'")
        if new_deadline is not None and outcome != "extend":
            raise InvalidInputError("--deadline goes only with the outcome 'extend'")

        next_stage, status, times = self._route(rules, effective, outcome, at, new_deadline)
        self._record_decision(
            stage=decided_stage,
            forum=stage if self.escalated_to else policy.stage(decided_stage).forum,
            outcome=outcome,
            stage_outcome=stage_outcome,
            minutes_ref=minutes_ref.strip(),
            note=note.strip(),
            actor_id=actor.id,
            actor_role=actor.role,
            command_id=command_id,
            at=at,
            next_stage=next_stage,
            status=status,
            deadline=times.deadline if times else None,
            reminder_at=times.reminder_at if times else None,
        )

    def _route(
        self,
        rules: Rules,
        outcome: str,
        escalation_outcome: str,
        at: datetime,
        new_deadline: date | None,
    ) -> tuple[str, str, StageTimes | None]:
        """Where the case goes after `outcome` at its current stage: (next stage, status, times)."""
        policy = rules.policy
        stage = self.stage
        if self.escalated_to and escalation_outcome == "extend":
            if new_deadline is not None:
                if new_deadline <= rules.calendar.local_date(at):
                    raise InvalidInputError(
                        f"new deadline {new_deadline.isoformat()} is not after today"
                    )
                deadline = rules.calendar.close_of_business_on(new_deadline)
                return stage, OPEN, _with_reminder(rules, deadline, at)
            return stage, OPEN, _stage_times(rules, stage, at)
        if self.escalated_to and escalation_outcome == "send_back":
            previous = self.path[-2]
            return previous, OPEN, _stage_times(rules, previous, at)
        if outcome in ("reject", "refuse"):
            return "", REJECTED, None
        if outcome == "defer":
            after = rules.calendar.local_date(self.deadline or at)
            return stage, OPEN, _stage_times(rules, stage, at, after=after)
        if outcome == "sign_off":
            return "", APPROVED, None
        follow = {
            ("jcu", "refer"): "board",
            ("cmet", "recommend_approval"): "governing_body",
            ("cmet", "recommend_rejection"): "governing_body",
        }
        if (stage, outcome) in follow:
            nxt = follow[(stage, outcome)]
            return nxt, OPEN, _stage_times(rules, nxt, at)
        if stage == "board" and outcome == "recommend":
            nxt = (
                "programme_board"
                if self.kind in policy.proposal.kinds_decided_above_board
                else "cmet"
            )
            return nxt, OPEN, _stage_times(rules, nxt, at)
        if stage == "programme_board" and outcome == "approve" and self.ccg_is_party(policy):
            return "cmet", OPEN, _stage_times(rules, "cmet", at)
        if outcome == "approve":
            if self.public_health and not self.public_health_signed_off:
                return "public_health", OPEN, _stage_times(rules, "public_health", at)
            return "", APPROVED, None
        raise OutcomeNotAllowedError(f"outcome {outcome!r} has no route from {stage}")

    @event("Decided")
    def _record_decision(
        self,
        *,
        stage: str,
        forum: str,
        outcome: str,
        stage_outcome: str | None,
        minutes_ref: str,
        note: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
        next_stage: str,
        status: str,
        deadline: datetime | None,
        reminder_at: datetime | None,
    ) -> None:
        self.decisions.append(
            {
                "stage": stage,
                "forum": forum,
                "outcome": outcome,
                "stage_outcome": stage_outcome,
                "minutes_ref": minutes_ref,
                "note": note,
                "actor_id": actor_id,
                "actor_role": actor_role,
                "at": at.isoformat(),
            }
        )
        self.command_versions[command_id] = self.version + 1
        if stage == "public_health" and (stage_outcome or outcome) == "sign_off":
            self.public_health_signed_off = True
        if (stage_outcome or outcome) == "defer" and stage == "board":
            self.deferrals += 1
        self.status = status
        self.escalated_to = None
        if status != OPEN:
            self.deadline = self.reminder_at = None
            return
        if deadline is not None:  # an open case always has one; the route computed it
            self._open_stage(next_stage, deadline, reminder_at)

    def withdraw(self, rules: Rules, *, actor: Actor, note: str, command_id: str, at: datetime) -> None:
        """A JCU lead withdraws an open proposal (governance.md, Roles: jcu_lead)."""
        self._check_open()
        allowed = rules.policy.roles.withdraws_proposals
        if actor.role not in allowed:
            raise NotAllowedError(
                f"role {actor.role} may not withdraw {self.reference}; allowed: {', '.join(allowed)}"
            )
        self._withdraw(
            note=note.strip(), from_stage=self.stage, actor_id=actor.id, actor_role=actor.role,
            command_id=command_id, at=at,
        )

    class Withdrawn(Case.Event):
        """Version 2 records the stage the proposal was withdrawn from (`from_stage`). Version 1
        events, stored before, load with `from_stage` empty: nobody recorded it then, and inventing
        it from later reasoning would put words in the record."""

        class_version = 2
        note: str
        from_stage: str
        actor_id: str
        actor_role: str
        command_id: str
        at: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_adding(state, from_stage="")

    @event(Withdrawn)
    def _withdraw(self, *, note: str, from_stage: str, actor_id: str, actor_role: str, command_id: str,
                  at: datetime) -> None:
        self.status = WITHDRAWN
        self.deadline = self.reminder_at = None
        self.escalated_to = None
        self.command_versions[command_id] = self.version + 1

    def remind(self, rules: Rules, *, command_id: str, at: datetime) -> None:
        """Record the reminder sent to the awaited forum before its deadline."""
        self._check_open()
        if self.reminder_sent or self.reminder_at is None:
            raise DeadlineNotReachedError(f"{self.reference} has no reminder due at {self.stage}")
        if at < self.reminder_at:
            raise DeadlineNotReachedError(
                f"the reminder for {self.reference} is due at {self.reminder_at.isoformat()}"
            )
        forum = self.escalated_to or rules.policy.stage(self.stage).forum
        self._remind(
            stage=self.stage,
            forum=forum,
            recipient_role=rules.policy.decider_of(forum),
            deadline=self.deadline,
            actor_id=SYSTEM_ACTOR.id,
            actor_role=SYSTEM_ACTOR.role,
            command_id=command_id,
            at=at,
        )

    @event("ReminderSent")
    def _remind(
        self,
        *,
        stage: str,
        forum: str,
        recipient_role: str,
        deadline: datetime | None,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.reminder_sent = True
        self.command_versions[command_id] = self.version + 1

    def escalate(self, rules: Rules, *, command_id: str, at: datetime) -> None:
        """At a missed deadline: escalate to the escalation forum where the stage escalates
        (MOU Schedule 1 (h)); otherwise record the miss and leave the case overdue."""
        self._check_open()
        if self.deadline is None or self.deadline_missed:
            raise DeadlineNotReachedError(f"{self.reference} has no pending deadline at {self.stage}")
        if at < self.deadline:
            raise DeadlineNotReachedError(
                f"the {self.stage} deadline for {self.reference} is {self.deadline.isoformat()}"
            )
        policy = rules.policy
        escalates = not self.escalated_to and policy.stage(self.stage).escalates
        if escalates:
            times = _stage_times(rules, "escalated", at)
            self._escalate(
                stage=self.stage,
                missed_deadline=self.deadline,
                to_forum=policy.proposal.escalation_forum,
                deadline=times.deadline,
                reminder_at=times.reminder_at,
                actor_id=SYSTEM_ACTOR.id,
                actor_role=SYSTEM_ACTOR.role,
                command_id=command_id,
                at=at,
            )
        else:
            self._miss_deadline(
                stage=self.stage,
                forum=self.escalated_to or policy.stage(self.stage).forum,
                missed_deadline=self.deadline,
                actor_id=SYSTEM_ACTOR.id,
                actor_role=SYSTEM_ACTOR.role,
                command_id=command_id,
                at=at,
            )

    @event("Escalated")
    def _escalate(
        self,
        *,
        stage: str,
        missed_deadline: datetime,
        to_forum: str,
        deadline: datetime,
        reminder_at: datetime | None,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.command_versions[command_id] = self.version + 1
        self.escalated_to = to_forum
        self.stage_seq += 1
        self.deadline = deadline
        self.reminder_at = reminder_at
        self.reminder_sent = False
        self.deadline_missed = False
        self.deadlines[f"{self.stage}:escalated"] = deadline.isoformat()

    @event("DeadlineMissed")
    def _miss_deadline(
        self,
        *,
        stage: str,
        forum: str,
        missed_deadline: datetime,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.command_versions[command_id] = self.version + 1
        self.deadline_missed = True

    # --- internals --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if not self.is_open:
            raise CaseClosedError(closed_text(self.reference, self.status, self.last_decision_text()))

    def _open_stage(self, stage: str, deadline: datetime, reminder_at: datetime | None) -> None:
        # `path` is the way back for an escalation's send_back: sending back pops the stage left.
        if len(self.path) > 1 and stage == self.path[-2]:
            self.path.pop()
        elif not self.path or stage != self.path[-1]:
            self.path.append(stage)
        self.stage = stage
        self.stage_seq += 1
        self.deadline = deadline
        self.reminder_at = reminder_at
        self.reminder_sent = False
        self.deadline_missed = False
        self.deadlines[stage] = deadline.isoformat()


def _with_reminder(rules: Rules, deadline: datetime, opened: datetime) -> StageTimes:
    return with_reminder(rules, deadline, opened, rules.policy.proposal.reminder_working_days)


def _stage_times(rules: Rules, stage: str, opened: datetime, *, after: date | None = None) -> StageTimes:
    """The deadline of `stage` opened at `opened`, and the reminder instant before it."""
    return stage_times(rules, rules.policy.stage(stage).deadline, opened, rules.policy.proposal.reminder_working_days,
                       after=after)


@dataclass(frozen=True)
class ProposalState:
    """A proposal as plain data: what `show` prints and what the workflow waits on."""

    reference: str
    kind: str
    title: str
    value_pence: int
    parties: list[str]
    public_health: bool
    status: str
    stage: str
    escalated_to: str | None
    deadline: datetime | None
    reminder_at: datetime | None
    reminder_sent: bool
    deadline_missed: bool
    stage_seq: int
    version: int
    policy_hash: str
    started_at: datetime
    started_by: dict[str, str]
    deadlines: dict[str, str]
    decisions: list[dict[str, Any]]
    allowed_actions: list[AllowedAction]
    withdraw_roles: list[str]
    last_decision: str | None
    public_health_signed_off: bool

    @classmethod
    def of(cls, proposal: Proposal, policy: Policy) -> ProposalState:
        return cls(
            reference=proposal.reference,
            kind=proposal.kind,
            title=proposal.title,
            value_pence=proposal.value_pence,
            parties=list(proposal.parties),
            public_health=proposal.public_health,
            status=proposal.status,
            stage=proposal.stage,
            escalated_to=proposal.escalated_to,
            deadline=proposal.deadline,
            reminder_at=proposal.reminder_at,
            reminder_sent=proposal.reminder_sent,
            deadline_missed=proposal.deadline_missed,
            stage_seq=proposal.stage_seq,
            version=proposal.version,
            policy_hash=proposal.policy_hash,
            started_at=proposal.started_at,
            started_by=dict(proposal.started_by),
            deadlines=dict(proposal.deadlines),
            decisions=[dict(d) for d in proposal.decisions],
            allowed_actions=proposal.allowed_actions(policy),
            withdraw_roles=list(policy.roles.withdraws_proposals) if proposal.is_open else [],
            last_decision=proposal.last_decision_text(),
            public_health_signed_off=proposal.public_health_signed_off,
        )
