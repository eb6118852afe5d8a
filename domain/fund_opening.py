"""Opening a fund: the JCU proposes an aligned or pooled fund, and it opens only once the Programme
Board agrees (ToR 4.2: the board "obtains agreement from the CCG Children's Programme Board to further
align or pool funding").

Its way is the policy's `[routes.fund]`: the board considers the proposal and proposes it (or rejects
or defers it); where the fund will hold ring-fenced public-health money Public Health is consulted
(Cabinet report 4.5.1: "consulted on any changes to funding arrangements"); the Programme Board agrees
or refuses. The decision that agrees it opens the `Fund` (with its ring-fenced fact and each party's
contribution), saved in the same transaction; a fund of the same name opened meanwhile refuses it
whole.

Invariants: the name is free when the case starts and when the fund opens; each contribution is a
member's and not negative; a ring-fenced fund names each party's contribution.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from eventsourcing.domain import event

from domain.actor import Actor
from domain.case import Rules
from domain.errors import InvalidInputError, NotAllowedError
from domain.funding import Fund, OpenFund, money
from domain.routes import Facts
from domain.staged import Decide, StagedCase
from domain.timing import stage_times

OPENED = "opened"


class FundOpening(StagedCase):
    ROUTE: ClassVar[str] = "fund"
    COLLABORATORS: ClassVar[tuple[str, ...]] = ("new_aggregates",)

    @classmethod
    def start(
        cls,
        rules: Rules,
        *,
        reference: str,
        actor: Actor,
        command: OpenFund,
        members: list[str],
        name_taken: bool,
        command_id: str,
        at: datetime,
    ) -> FundOpening:
        policy = rules.policy
        route = policy.route(cls.ROUTE)
        if actor.role not in route.started_by:
            raise NotAllowedError(f"role {actor.role} may not open a fund; allowed: {', '.join(route.started_by)}")
        if name_taken:
            raise InvalidInputError(f"a fund named {command.name!r} exists already")
        balance = command.opening_balance(members)
        times = stage_times(rules, route.stages[route.start].deadline, at, route.reminder_working_days)
        ring = ", ring-fenced public health" if command.ring_fenced else ""
        order = policy.partnership.parties
        return cls._create(
            cls.Started,
            reference=reference,
            title=command.title or f"Open {command.type} fund {command.name} ({money(balance)}{ring})",
            name=command.name,
            fund_type=command.type,
            ring_fenced=command.ring_fenced,
            contributions={p: command.contributions[p] for p in sorted(command.contributions, key=order.index)},
            balance_pence=balance,
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
        reference: str
        title: str
        name: str
        fund_type: str
        ring_fenced: bool
        contributions: dict[str, int]
        balance_pence: int
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
        name: str,
        fund_type: str,
        ring_fenced: bool,
        contributions: dict[str, int],
        balance_pence: int,
        policy_hash: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
        stage: str,
        deadline: datetime,
        reminder_at: datetime | None,
    ) -> None:
        self.name = name
        self.fund_type = fund_type
        self.ring_fenced = ring_fenced
        self.contributions = dict(contributions)
        self.balance_pence = balance_pence
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
            kind="fund",
            value_pence=self.balance_pence,
            parties=tuple(self.contributions),
            flags=frozenset({"public_health"} if self.ring_fenced else ()),
        )

    def details(self) -> dict[str, Any]:
        return {
            "fund": self.name,
            "fund_type": self.fund_type,
            "ring_fenced": self.ring_fenced,
            "contributions": dict(self.contributions),
            "balance_pence": self.balance_pence,
            "parties": list(self.contributions),
        }

    def decide(
        self,
        rules: Rules,
        *,
        actor: Actor,
        command: Decide,
        command_id: str,
        at: datetime,
        new_aggregates: list[Any] | None = None,
        fund_exists: bool = False,
        **rest: Any,
    ) -> None:
        """As any staged decision; the one that agrees opens the fund, saved with the decision."""
        super().decide(rules, actor=actor, command=command, command_id=command_id, at=at, **rest)
        if self.status != OPENED:
            return
        if fund_exists:
            raise InvalidInputError(f"a fund named {self.name!r} was opened meanwhile; refuse {self.reference}")
        if new_aggregates is None:
            raise InvalidInputError(f"{self.reference}: nowhere to open the fund")
        opening = OpenFund(
            name=self.name,
            type=self.fund_type,  # type: ignore[arg-type]
            ring_fenced=self.ring_fenced,
            contributions=self.contributions,
            balance_pence=self.balance_pence,
        )
        new_aggregates.append(
            Fund.open(
                rules,
                command=opening,
                balance_pence=self.balance_pence,
                case=self.reference,
                actor=actor,
                command_id=command_id,
                at=at,
            )
        )
