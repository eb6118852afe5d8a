"""A contract variation: a change to a provider's contract, from the JCU's draft to the provider.

Its route is the policy's `[routes.variation]` (ToR 2.9; MOU, Contract Management; governance.md,
"Contract variation"): the JCU drafts it, the board recommends it (it does not approve it), the JCU
decides within its delegated authority or the Programme Board recommends it to each party's own body
in parallel, Public Health signs off where public-health money is in the contract, and the provider
accepts or rejects it; once agreed, a timer waits for the date it takes effect.

Where the variation uses a contractual lever of the NHS standard contract (a Contract Performance
Notice; Managing Activity and Referrals), the Lead Director must record that the provider's Chief
Executive was informed before the lever is executed: the route's provider stage `requires` it, and
this kind supplies the fact (`lever_not_notified`) and the command that records it.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any, ClassVar

from eventsourcing.domain import event
from pydantic import Field

from domain.actor import Actor
from domain.case import SYSTEM_ACTOR, CaseAction, Command, Rules, Timer
from domain.errors import DeadlineNotReachedError, InvalidInputError, NotAllowedError
from domain.funding import Fund
from domain.recorded import upcast_adding
from domain.routes import Facts
from domain.staged import StagedCase
from domain.timing import stage_times
from domain.values import FundName, Name, Note, OptionalTitle, PartyCode, ProviderName, Reference


class StartVariation(Command):
    provider: ProviderName
    contract_ref: Reference
    reason: Name
    value_change_pence: int
    parties: list[PartyCode] = Field(min_length=1, max_length=20)
    # The funds the contract draws on (its funding lines): whether any holds ring-fenced money decides
    # the Public Health sign-off; `public_health`, given, must agree (alone, for a contract with no
    # funding lines named, it decides, as before funds recorded the fact).
    funds: list[FundName] = Field(default=[], max_length=20)
    public_health: bool | None = None
    effective_on: date
    title: OptionalTitle = ""


class InformChiefExecutive(Command):
    note: Note = ""


class Variation(StagedCase):
    ROUTE: ClassVar[str] = "variation"

    @classmethod
    def start(
        cls,
        rules: Rules,
        *,
        reference: str,
        actor: Actor,
        command: StartVariation,
        command_id: str,
        at: datetime,
        funds: list[Fund] | None = None,
    ) -> Variation:
        policy = rules.policy
        route = policy.route(cls.ROUTE)
        if actor.role not in route.started_by:
            raise NotAllowedError(
                f"role {actor.role} may not start a contract variation; allowed: {', '.join(route.started_by)}"
            )
        if command.reason not in policy.variation.reasons:
            raise InvalidInputError(
                f"reason {command.reason!r} is not known; allowed: {', '.join(policy.variation.reasons)}"
            )
        unknown = [p for p in command.parties if p not in policy.partnership.parties]
        if unknown:
            raise InvalidInputError(
                f"parties {','.join(unknown)} not known; allowed: {','.join(policy.partnership.parties)}"
            )
        rules.membership.check_parties(command.parties, "--parties")
        if command.effective_on <= rules.calendar.local_date(at):
            raise InvalidInputError(f"--effective {command.effective_on.isoformat()} must be after today")
        lines = [{"fund": f.name, "ring_fenced": f.ring_fenced} for f in funds or []]
        public_health = _ring_fenced(lines, command.public_health)
        times = stage_times(rules, route.stages[route.start].deadline, at, route.reminder_working_days)
        title = command.title or f"{command.provider} {command.contract_ref}: {command.reason.replace('_', ' ')}"
        return cls._create(
            cls.Started,
            reference=reference,
            title=title,
            provider=command.provider,
            contract_ref=command.contract_ref,
            reason=command.reason,
            lever=command.reason in policy.variation.levers,
            value_change_pence=command.value_change_pence,
            parties=[p for p in policy.partnership.parties if p in command.parties],
            public_health=public_health,
            funding_lines=lines,
            effective_on=command.effective_on.isoformat(),
            takes_effect_at=rules.calendar.at(command.effective_on, time(0, 0)),
            policy_hash=policy.content_hash,
            actor_id=actor.id,
            actor_role=actor.role,
            command_id=command_id,
            at=at,
            stage=route.start,
            deadline=times.deadline,
            reminder_at=times.reminder_at,
        )

    class Started(StagedCase.Created):
        """Version 2 records the contract's funding lines (the funds it draws on, and whether each is
        ring-fenced); version 1 loads with none, its `public_health` as it was given."""

        class_version = 2
        reference: str
        title: str
        provider: str
        contract_ref: str
        reason: str
        lever: bool
        value_change_pence: int
        parties: list[str]
        public_health: bool
        funding_lines: list[dict[str, Any]]
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

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_adding(state, funding_lines=[])

    @event(Started)
    def __init__(
        self,
        *,
        reference: str,
        title: str,
        provider: str,
        contract_ref: str,
        reason: str,
        lever: bool,
        value_change_pence: int,
        parties: list[str],
        public_health: bool,
        funding_lines: list[dict[str, Any]],
        effective_on: str,
        takes_effect_at: datetime,
        policy_hash: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
        stage: str,
        deadline: datetime,
        reminder_at: datetime | None,
    ) -> None:
        self.provider = provider
        self.contract_ref = contract_ref
        self.reason = reason
        self.lever = lever
        self.value_change_pence = value_change_pence
        self.parties = list(parties)
        self.public_health = public_health
        self.funding_lines = [dict(line) for line in funding_lines]
        self.effective_on = effective_on
        self.takes_effect_at = takes_effect_at
        self.chief_executive_informed: dict[str, str] | None = None
        self._begin(
            reference=reference,
            title=title,
            policy_hash=policy_hash,
            actor_id=actor_id,
            actor_role=actor_role,
            command_id=command_id,
            at=at,
            stage=stage,
            deadline=deadline,
            reminder_at=reminder_at,
        )

    ACTIONS: ClassVar[dict[str, tuple[type[Command], str]]] = {
        **StagedCase.ACTIONS,
        "inform_chief_executive": (InformChiefExecutive, "inform_chief_executive"),
    }

    def facts(self) -> Facts:
        flags = {"public_health"} if self.public_health else set()
        if self.lever and not self.chief_executive_informed:
            flags.add("lever_not_notified")
        return Facts(
            kind=self.reason, value_pence=self.value_change_pence, parties=tuple(self.parties), flags=frozenset(flags)
        )

    def details(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "contract_ref": self.contract_ref,
            "reason": self.reason,
            "contractual_lever": self.lever,
            "value_change_pence": self.value_change_pence,
            "parties": list(self.parties),
            "public_health": self.public_health,
            "funding_lines": [dict(line) for line in getattr(self, "funding_lines", [])],  # none in old snapshots
            "effective_on": self.effective_on,
            "chief_executive_informed": self.chief_executive_informed,
        }

    def extra_actions(self, rules: Rules) -> list[CaseAction]:
        if self.lever and not self.chief_executive_informed:
            return [CaseAction("inform_chief_executive", list(rules.policy.variation.informs_chief_executive))]
        return []

    def extra_timers(self) -> list[Timer]:
        return [Timer("effective", self.takes_effect_at)] if self.status == "agreed" else []

    # --- commands ---------------------------------------------------------------------------------

    def inform_chief_executive(
        self, rules: Rules, *, actor: Actor, command: InformChiefExecutive, command_id: str, at: datetime, **_: Any
    ) -> None:
        """MOU, Contract Management: the Lead Director informs the Chief Executive before a lever is used."""
        self._check_open()
        allowed = rules.policy.variation.informs_chief_executive
        if actor.role not in allowed:
            raise NotAllowedError(
                f"role {actor.role} may not record that the Chief Executive was informed; allowed: {', '.join(allowed)}"
            )
        if not self.lever:
            raise InvalidInputError(f"{self.reference} uses no contractual lever; there is nothing to inform of")
        if self.chief_executive_informed:
            raise InvalidInputError(f"{self.reference}: the Chief Executive was informed already")
        self._inform(note=command.note, **self._who(actor, command_id, at))

    @event("ChiefExecutiveInformed")
    def _inform(self, *, note: str, actor_id: str, actor_role: str, command_id: str, at: datetime) -> None:
        self.chief_executive_informed = {"by": f"{actor_role}:{actor_id}", "at": at.isoformat(), "note": note}
        self._done(command_id)

    def fire(self, rules: Rules, *, timer: str, command_id: str, at: datetime, **_: Any) -> None:
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


def _ring_fenced(lines: list[dict[str, Any]], asserted: bool | None) -> bool:
    """Whether the contract holds ring-fenced public-health money: its funding lines say (Cabinet
    report 4.5.1); a flag given must agree with them. With no line that knows (none named, or funds
    opened before funds recorded it), the flag given decides."""
    known = [line for line in lines if line["ring_fenced"] is not None]
    if not known:
        return bool(asserted)
    ring = any(line["ring_fenced"] for line in known)
    if asserted is not None and asserted != ring:
        names = ", ".join(line["fund"] for line in known if line["ring_fenced"] == ring) if ring else "its funds"
        held = f"draws on ring-fenced public-health money ({names})" if ring else "draws on no ring-fenced money"
        raise InvalidInputError(
            f"--public-health {'given' if asserted else 'refused'}, but the contract {held}; leave --public-health out"
        )
    return ring
