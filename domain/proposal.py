"""A proposal: a service commissioning, pathway change, service redesign or procurement, taken from
the Joint Commissioning Unit to whichever bodies must decide it.

Its way through the forums is the policy's `[routes.proposal]` (governance.md, "Proposal"; MOU
Schedule 1; ToR 2.7): the JCU approves within its delegated authority; beyond it the case goes to the
board and the Programme Board, which recommends it to each party's own body in parallel — the
councils' bodies for PCC and CCC, CMET then the Governing Body for the CCG — and the case is approved
when every one of them has approved. `StagedCase` runs the route; a proposal adds its facts (kind,
value a year, parties, whether ring-fenced public-health money is involved).

Events written before routes were data (`Decided`, `Escalated`, `ReminderSent`, `DeadlineMissed`,
`Withdrawn` of this class) still load: the legacy classes below apply them to today's state, and are
never written again. A snapshot taken before (aggregate version 1) is upcast the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import event

from domain.actor import Actor
from domain.case import Case, Rules
from domain.errors import InvalidInputError, NotAllowedError
from domain.recorded import upcast_adding
from domain.routes import Facts
from domain.staged import OPEN, StagedCase, compact_decisions, decided_v1_as_v2
from domain.timing import stage_times
from domain.values import Title, check_pence, checked


class Proposal(StagedCase):
    ROUTE = "proposal"
    # Version 2: stage bookkeeping as open stages (several at once); see `upcast_v1_v2`. Version 3:
    # the rules' part of the decisions (`StagedCase`'s version 2); see `upcast_v2_v3`.
    class_version = 3

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
        """Open a proposal at its route's first stage, by a role the route lets start one."""
        policy = rules.policy
        route = policy.route(cls.ROUTE)
        if actor.role not in route.started_by:
            raise NotAllowedError(f"role {actor.role} may not start a proposal; allowed: {', '.join(route.started_by)}")
        title = checked(Title, title, field="title").strip()
        if kind not in policy.proposal.kinds:
            raise InvalidInputError(f"kind {kind!r} is not known; allowed: {', '.join(policy.proposal.kinds)}")
        if value_pence < 0:
            raise InvalidInputError("value must be zero or more (pence a year)")
        check_pence(value_pence, policy.limits.max_value_pounds, field="value")
        unknown = [p for p in parties if p not in policy.partnership.parties]
        if unknown or not parties:
            raise InvalidInputError(
                f"parties {','.join(unknown) or '(none)'} not known; allowed: " + ",".join(policy.partnership.parties)
            )
        rules.membership.check_parties(parties, "--parties")
        ordered = [p for p in policy.partnership.parties if p in parties]
        stage = route.start
        times = stage_times(rules, route.stages[stage].deadline, at, route.reminder_working_days)
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
            stage=stage,
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
        self.kind = kind
        self.value_pence = value_pence
        self.parties = list(parties)
        self.public_health = public_health
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

    def facts(self) -> Facts:
        return Facts(
            kind=self.kind,
            value_pence=self.value_pence,
            parties=tuple(self.parties),
            flags=frozenset({"public_health"} if self.public_health else ()),
        )

    def details(self) -> dict[str, Any]:
        return {
            "proposal_kind": self.kind,
            "value_pence": self.value_pence,
            "parties": list(self.parties),
            "public_health": self.public_health,
        }

    # --- events written before routes were data (loaded, never written) ----------------------

    class Decided(Case.Event):
        """Legacy: a decision recorded one stage at a time."""

        def apply(self, aggregate: Any) -> None:
            s = self.__dict__
            v2 = decided_v1_as_v2(s)
            aggregate._apply_decision({"stage_outcome": None, **s, **v2, "forked": None, "joined": None})
            aggregate._done(s["command_id"])
            super().apply(aggregate)

    class Escalated(Case.Event):
        """Legacy: an escalation, with the escalation forum's deadline."""

        def apply(self, aggregate: Any) -> None:
            s = self.__dict__
            aggregate._apply_escalation(s["stage"], s["to_forum"], s.get("deadline"), s.get("reminder_at"))
            aggregate._done(s["command_id"])
            super().apply(aggregate)

    class ReminderSent(Case.Event):
        """Legacy: the reminder before the stage's deadline."""

        def apply(self, aggregate: Any) -> None:
            entry = aggregate.open_stages.get(self.__dict__["stage"])
            if entry is not None:
                entry["reminder_sent"] = True
            aggregate._done(self.__dict__["command_id"])
            super().apply(aggregate)

    class DeadlineMissed(Case.Event):
        """Legacy: a deadline missed where there was nowhere to escalate."""

        def apply(self, aggregate: Any) -> None:
            entry = aggregate.open_stages.get(self.__dict__["stage"])
            if entry is not None:
                entry["missed"] = True
            aggregate._done(self.__dict__["command_id"])
            super().apply(aggregate)

    class Withdrawn(Case.Event):
        """Legacy: a withdrawal. Version 2 recorded `from_stage`; version 1 loads with it empty."""

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_adding(state, from_stage="")

        def apply(self, aggregate: Any) -> None:
            aggregate._apply_withdrawal()
            aggregate._done(self.__dict__["command_id"])
            super().apply(aggregate)

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """A snapshot taken when a proposal had one stage at a time, in today's shape."""
        stage = state.pop("stage", "")
        deadline = state.pop("deadline", None)
        path = state.pop("path", [])
        escalated_to = state.pop("escalated_to", None)
        open_stages: dict[str, dict[str, Any]] = {}
        if state.get("status") == OPEN and stage:
            open_stages[stage] = {
                "branch": "",
                "back": path[-2] if len(path) > 1 else "",
                "seq": state.get("stage_seq", 0),
                "deadline": deadline,
                "reminder_at": state.pop("reminder_at", None),
                "reminder_sent": state.pop("reminder_sent", False),
                "escalated_to": escalated_to,
                "missed": state.pop("deadline_missed", False),
            }
        for key in ("reminder_at", "reminder_sent", "deadline_missed", "deadlines", "public_health_signed_off"):
            state.pop(key, None)
        deferrals = state.pop("deferrals", 0)
        state["open_stages"] = open_stages
        state["joins"] = {}
        state["counts"] = {"board:defer": deferrals} if deferrals else {}
        state["backs"] = {s: (path[i - 1] if i else "") for i, s in enumerate(path)}
        for d in state.get("decisions", []):
            d.setdefault("by", f"{d.get('actor_role', '')}:{d.get('actor_id', '')}")

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        """A snapshot that held only the whole decision history: the rules' part of it beside."""
        compact_decisions(state)
