"""A contract variation: a change to a provider's contract, from the JCU's draft to the provider.

Lifecycle (ToR 2.9; MOU, Contract Management; governance.md, "Contract variation"):

    jcu ──refer──▶ board ──approve──▶ [cmet ──▶ governing_body]  (over the threshold, CCG a party)
                                      [public_health sign-off]   (public-health money in the contract)
                                      provider ──accepted──▶ agreed ──(its date)──▶ effective

Any forum may reject; the provider may reject (the variation ends `provider_rejected`); a JCU lead
may withdraw it while open. Where the variation uses a contractual lever of the NHS standard contract
(a Contract Performance Notice; Managing Activity and Referrals), the Lead Director must record that
the Chief Executive was informed before the lever is executed: the engine refuses to send the
variation to the provider until that is recorded (MOU, Contract Management).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import ClassVar

from eventsourcing.domain import event
from pydantic import Field

from domain.actor import Actor
from domain.case import SYSTEM_ACTOR, CaseAction, CaseView, Command, Rules, Timer
from domain.errors import (
    ChiefExecutiveNotInformedError,
    DeadlineNotReachedError,
    InvalidInputError,
    NotAllowedError,
)
from domain.staged import OPEN, Decide, StagedCase, Withdraw
from domain.timing import stage_times


class StartVariation(Command):
    provider: str = Field(min_length=1)
    contract_ref: str = Field(min_length=1)
    reason: str
    value_change_pence: int
    parties: list[str] = Field(min_length=1)
    public_health: bool = False
    effective_on: date
    title: str = ""


class InformChiefExecutive(Command):
    note: str = ""


class Variation(StagedCase):
    kind: ClassVar[str] = "variation"
    RULES: ClassVar[str] = "variation"
    WITHDRAWN_BY: ClassVar[str] = "starts_variations"

    @classmethod
    def start(cls, rules: Rules, *, reference: str, actor: Actor, command: StartVariation, command_id: str,
              at: datetime) -> Variation:
        policy = rules.policy
        if actor.role not in policy.roles.starts_variations:
            raise NotAllowedError(
                f"role {actor.role} may not start a contract variation; allowed: {', '.join(policy.roles.starts_variations)}"
            )
        if command.reason not in policy.variation.reasons:
            raise InvalidInputError(f"reason {command.reason!r} is not known; allowed: {', '.join(policy.variation.reasons)}")
        unknown = [p for p in command.parties if p not in policy.partnership.parties]
        if unknown:
            raise InvalidInputError(f"parties {','.join(unknown)} not known; allowed: {','.join(policy.partnership.parties)}")
        if command.effective_on <= rules.calendar.local_date(at):
            raise InvalidInputError(f"--effective {command.effective_on.isoformat()} must be after today")
        v = policy.variation
        times = stage_times(rules, v.stages["jcu"].deadline, at, v.reminder_working_days)
        title = command.title or f"{command.provider} {command.contract_ref}: {command.reason.replace('_', ' ')}"
        return cls._create(
            cls.Started, reference=reference, title=title, provider=command.provider, contract_ref=command.contract_ref,
            reason=command.reason, lever=command.reason in policy.variation.levers,
            value_change_pence=command.value_change_pence,
            parties=[p for p in policy.partnership.parties if p in command.parties],
            public_health=command.public_health, effective_on=command.effective_on.isoformat(),
            takes_effect_at=rules.calendar.at(command.effective_on, time(0, 0)),
            policy_hash=policy.content_hash, actor_id=actor.id, actor_role=actor.role, command_id=command_id, at=at,
            stage="jcu", deadline=times.deadline, reminder_at=times.reminder_at,
        )

    class Started(StagedCase.Created):
        reference: str
        title: str
        provider: str
        contract_ref: str
        reason: str
        lever: bool
        value_change_pence: int
        parties: list[str]
        public_health: bool
        effective_on: str
        takes_effect_at: datetime
        policy_hash: str
        actor_id: str
        actor_role: str
        command_id: str
        at: datetime
        stage: str
        deadline: datetime
        reminder_at: datetime | None

    @event(Started)
    def __init__(self, *, reference: str, title: str, provider: str, contract_ref: str, reason: str, lever: bool,
                 value_change_pence: int, parties: list[str], public_health: bool, effective_on: str,
                 takes_effect_at: datetime, policy_hash: str, actor_id: str, actor_role: str, command_id: str,
                 at: datetime, stage: str, deadline: datetime, reminder_at: datetime | None) -> None:
        self.provider = provider
        self.contract_ref = contract_ref
        self.reason = reason
        self.lever = lever
        self.value_change_pence = value_change_pence
        self.parties = list(parties)
        self.public_health = public_health
        self.effective_on = effective_on
        self.takes_effect_at = takes_effect_at
        self.chief_executive_informed: dict[str, str] | None = None
        self.public_health_signed_off = False
        self._begin(reference=reference, title=title, policy_hash=policy_hash, actor_id=actor_id,
                    actor_role=actor_role, command_id=command_id, at=at, stage=stage, deadline=deadline,
                    reminder_at=reminder_at)

    ACTIONS: ClassVar[dict[str, tuple[type[Command], str]]] = {
        "decide": (Decide, "decide"),
        "withdraw": (Withdraw, "withdraw"),
        "inform_chief_executive": (InformChiefExecutive, "inform_chief_executive"),
    }

    # --- the route ------------------------------------------------------------------------------

    def goes_to_ccg(self, rules: Rules) -> bool:
        return (abs(self.value_change_pence) > rules.policy.variation.threshold_pence
                and rules.policy.partnership.ccg_party in self.parties)

    def outcomes(self, rules: Rules, stage: str) -> list[str]:
        return {
            "jcu": ["refer", "reject"],
            "board": ["approve", "reject"],
            "cmet": ["recommend_approval", "recommend_rejection"],
            "governing_body": ["approve", "reject"],
            "public_health": ["sign_off", "refuse"],
            "provider": ["accepted", "rejected"],
        }.get(stage, [])

    def route(self, rules: Rules, stage: str, outcome: str) -> tuple[str, str]:
        if outcome in ("reject", "refuse"):
            return "", "rejected"
        if outcome == "rejected":
            return "", "provider_rejected"
        if outcome == "accepted":
            return "", "agreed"
        if stage == "jcu":
            return "board", OPEN
        if stage == "board" and self.goes_to_ccg(rules):
            return "cmet", OPEN
        if stage == "cmet":
            return "governing_body", OPEN
        if self.public_health and stage != "public_health":
            return "public_health", OPEN
        return "provider", OPEN

    def check_route(self, rules: Rules, stage: str, outcome: str, next_stage: str) -> None:
        if next_stage == "provider" and self.lever and not self.chief_executive_informed:
            raise ChiefExecutiveNotInformedError(
                f"{self.reference} uses a contractual lever ({self.reason.replace('_', ' ')}): the Lead Director must "
                f"record that the Chief Executive was informed before it goes to the provider "
                f"(`concordat variation inform-ce {self.reference}`)"
            )

    def actions(self, rules: Rules) -> list[CaseAction]:
        actions = self.stage_actions(rules)
        if self.status == OPEN and self.lever and not self.chief_executive_informed:
            actions.append(CaseAction("inform_chief_executive", list(rules.policy.variation.informs_chief_executive)))
        return actions

    def all_timers(self) -> list[Timer]:
        if self.status == "agreed":
            return [Timer("effective", self.takes_effect_at)]
        return self.timers()

    def view(self, rules: Rules) -> CaseView:
        return CaseView(
            reference=self.reference, kind=self.kind, title=self.title, status=self.status, stage=self.stage
            if self.status == OPEN else "", deadline=self.deadline, version=self.version, policy_hash=self.policy_hash,
            started_at=self.started_at, started_by=dict(self.started_by), actions=self.actions(rules),
            timers=self.all_timers(), stage_seq=self.stage_seq,
            details={
                "provider": self.provider, "contract_ref": self.contract_ref, "reason": self.reason,
                "contractual_lever": self.lever, "value_change_pence": self.value_change_pence,
                "parties": list(self.parties), "public_health": self.public_health,
                "effective_on": self.effective_on, "chief_executive_informed": self.chief_executive_informed,
                **self.stage_details(),
            },
        )

    # --- commands ---------------------------------------------------------------------------------

    def inform_chief_executive(self, rules: Rules, *, actor: Actor, command: InformChiefExecutive,
                               command_id: str, at: datetime) -> None:
        """MOU, Contract Management: the Lead Director informs the Chief Executive before a lever is used."""
        self._check_open()
        allowed = rules.policy.variation.informs_chief_executive
        if actor.role not in allowed:
            raise NotAllowedError(f"role {actor.role} may not record that the Chief Executive was informed; "
                                  f"allowed: {', '.join(allowed)}")
        if not self.lever:
            raise InvalidInputError(f"{self.reference} uses no contractual lever; there is nothing to inform of")
        if self.chief_executive_informed:
            raise InvalidInputError(f"{self.reference}: the Chief Executive was informed already")
        self._inform(note=command.note, **self._who(actor, command_id, at))

    @event("ChiefExecutiveInformed")
    def _inform(self, *, note: str, actor_id: str, actor_role: str, command_id: str, at: datetime) -> None:
        self.chief_executive_informed = {"by": f"{actor_role}:{actor_id}", "at": at.isoformat(), "note": note}
        self._done(command_id)

    def fire(self, rules: Rules, *, timer: str, command_id: str, at: datetime) -> None:
        if timer != "effective":
            super().fire(rules, timer=timer, command_id=command_id, at=at)
            return
        if self.status != "agreed":
            raise DeadlineNotReachedError(f"{self.reference} is {self.status}; it has no effective date pending")
        if at < self.takes_effect_at:
            raise DeadlineNotReachedError(f"{self.reference} takes effect at {self.takes_effect_at.isoformat()}")
        self._take_effect(on=self.effective_on, **self._who(SYSTEM_ACTOR, command_id, at))

    @event("TookEffect")
    def _take_effect(self, *, on: str, actor_id: str, actor_role: str, command_id: str, at: datetime) -> None:
        self.status = "effective"
        self._done(command_id)
