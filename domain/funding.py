"""Funds, and in-year changes to them.

A `Fund` is an aligned or pooled budget of the partnership (ToR 2.6): its balance, each party's
contributions, and the ledger of changes applied to it. Aligned and pooled funds must not overspend:
a change that would take the balance below zero is refused, naming the fund, its balance and the
shortfall, and nothing is written.

A `FundingChange` is an in-year financial variation (ToR 4.1) on the policy's `[routes.funding]`:
the board considers it and proposes action; the Programme Board agrees it and each party's own body
whose budget changes approves it — for public-health services the Directors of Public Health decide
instead (Cambridgeshire's with the Health Committee, Peterborough's with the Cabinet portfolio
holder). Where ring-fenced public-health money is involved, Public Health is consulted first
(Cabinet report 4.5.1). An approved change is applied to its fund in the same transaction as the
decision that approves it. Ring-fenced contributions are
identified separately, by UK financial year and quarter (Q1 = April–June), so they can be reported
quarterly.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID, uuid5

from eventsourcing.domain import event
from pydantic import Field

from domain.actor import Actor
from domain.case import CASE_NAMESPACE, Command, Rules
from domain.errors import FundWouldOverspendError, InvalidInputError, NotAllowedError
from domain.recorded import Recorded
from domain.routes import Facts
from domain.staged import Decide, StagedCase
from domain.timing import stage_times
from domain.values import FundName, OptionalTitle, PartyCode


def money(pence: int) -> str:
    sign = "-" if pence < 0 else ""
    pounds, rest = divmod(abs(pence), 100)
    return f"{sign}£{pounds:,}.{rest:02d}"


def financial_quarter(rules: Rules, day: date) -> tuple[int, int]:
    """(financial year, quarter) of a date; the year is named by its first calendar year (2026 =
    April 2026 – March 2027) and Q1 is its first three months."""
    start = rules.policy.reporting.financial_year_starts
    months = (day.month - start.month) % 12
    year = day.year if (day.month, day.day) >= (start.month, start.day) else day.year - 1
    return year, months // 3 + 1


class OpenFund(Command):
    name: FundName
    type: Literal["aligned", "pooled"]
    balance_pence: int = Field(ge=0)


class Fund(Recorded):
    @staticmethod
    def create_id(name: str) -> UUID:
        return uuid5(CASE_NAMESPACE, f"fund:{name.strip().lower()}")

    @classmethod
    def open(cls, rules: Rules, *, actor: Actor, command: OpenFund, command_id: str, at: datetime) -> Fund:
        allowed = rules.policy.roles.manages_funds
        if actor.role not in allowed:
            raise NotAllowedError(f"role {actor.role} may not open a fund; allowed: {', '.join(allowed)}")
        return cls(
            name=command.name,
            type=command.type,
            balance_pence=command.balance_pence,
            actor_id=actor.id,
            actor_role=actor.role,
            command_id=command_id,
            at=at,
        )

    @event("Opened")
    def __init__(
        self, *, name: str, type: str, balance_pence: int, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.name = name
        self.type = type
        self.balance_pence = balance_pence
        self.opened = {"by": f"{actor_role}:{actor_id}", "at": at.isoformat()}
        self.contributions: dict[str, int] = {}
        self.ledger: list[dict[str, Any]] = []

    def apply_change(
        self,
        rules: Rules,
        *,
        reference: str,
        changes: dict[str, int],
        public_health: bool,
        command_id: str,
        at: datetime,
    ) -> None:
        """ToR 2.6: aligned and pooled funds must not overspend."""
        total = sum(changes.values())
        after = self.balance_pence + total
        if after < 0:
            raise FundWouldOverspendError(
                f"fund {self.name} ({self.type}) has a balance of {money(self.balance_pence)}; the change of "
                f"{money(total)} in {reference} would overspend it by {money(-after)}"
            )
        year, quarter = financial_quarter(rules, rules.calendar.local_date(at))
        self._apply_change(
            reference=reference,
            changes=dict(changes),
            total_pence=total,
            balance_after=after,
            public_health=public_health,
            financial_year=year,
            quarter=quarter,
            command_id=command_id,
            at=at,
        )

    @event("ChangeApplied")
    def _apply_change(
        self,
        *,
        reference: str,
        changes: dict[str, int],
        total_pence: int,
        balance_after: int,
        public_health: bool,
        financial_year: int,
        quarter: int,
        command_id: str,
        at: datetime,
    ) -> None:
        self.balance_pence = balance_after
        for party, pence in changes.items():
            self.contributions[party] = self.contributions.get(party, 0) + pence
        self.ledger.append(
            {"reference": reference, "total_pence": total_pence, "public_health": public_health, "at": at.isoformat()}
        )

    def view(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "balance_pence": self.balance_pence,
            "contributions": dict(self.contributions),
            "ledger": list(self.ledger),
            "opened": dict(self.opened),
        }


class StartFundingChange(Command):
    fund: FundName
    changes: dict[PartyCode, int] = Field(min_length=1, max_length=20)
    public_health: bool = False
    public_health_service: bool = False
    title: OptionalTitle = ""


class FundingChange(StagedCase):
    ROUTE: ClassVar[str] = "funding"
    COLLABORATORS: ClassVar[tuple[str, ...]] = ("fund",)

    @classmethod
    def start(
        cls,
        rules: Rules,
        *,
        reference: str,
        actor: Actor,
        command: StartFundingChange,
        fund: Fund,
        members: list[str],
        command_id: str,
        at: datetime,
    ) -> FundingChange:
        policy = rules.policy
        route = policy.route(cls.ROUTE)
        if actor.role not in route.started_by:
            raise NotAllowedError(
                f"role {actor.role} may not start a funding change; allowed: " + ", ".join(route.started_by)
            )
        rules.membership.check_parties(command.changes, "--change")
        strangers = [p for p in command.changes if p not in members]
        if strangers:
            raise InvalidInputError(
                f"--change {', '.join(map(repr, strangers))}: not members; members: {','.join(members)}"
            )
        if not any(command.changes.values()):
            raise InvalidInputError("the change moves no money: give at least one non-zero --change PARTY=POUNDS")
        times = stage_times(rules, route.stages[route.start].deadline, at, route.reminder_working_days)
        title = command.title or f"In-year change to {fund.name} ({money(sum(command.changes.values()))})"
        order = policy.partnership.parties
        return cls._create(
            cls.Started,
            reference=reference,
            title=title,
            fund=fund.name,
            fund_type=fund.type,
            changes={p: command.changes[p] for p in sorted(command.changes, key=order.index)},
            public_health=command.public_health,
            public_health_service=command.public_health_service,
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
        fund: str
        fund_type: str
        changes: dict[str, int]
        public_health: bool
        public_health_service: bool
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
        fund: str,
        fund_type: str,
        changes: dict[str, int],
        public_health: bool,
        public_health_service: bool,
        policy_hash: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
        stage: str,
        deadline: datetime,
        reminder_at: datetime | None,
    ) -> None:
        self.fund = fund
        self.fund_type = fund_type
        self.changes = dict(changes)
        self.public_health = public_health
        self.public_health_service = public_health_service
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
        flags = {
            f
            for f, on in (("public_health", self.public_health), ("public_health_service", self.public_health_service))
            if on
        }
        return Facts(
            kind="funding", value_pence=sum(self.changes.values()), parties=tuple(self.changes), flags=frozenset(flags)
        )

    def details(self) -> dict[str, Any]:
        return {
            "fund": self.fund,
            "fund_type": self.fund_type,
            "changes": dict(self.changes),
            "parties": list(self.changes),
            "public_health": self.public_health,
            "public_health_service": self.public_health_service,
        }

    def decide(
        self,
        rules: Rules,
        *,
        actor: Actor,
        command: Decide,
        command_id: str,
        at: datetime,
        fund: Fund | None = None,
        **_: Any,
    ) -> None:
        """As any staged decision; the decision that approves the change applies it to the fund, saved
        in the same transaction, and is refused whole (nothing written) if it would overspend."""
        super().decide(rules, actor=actor, command=command, command_id=command_id, at=at)
        if self.status == "approved":
            assert fund is not None  # the application passes the fund with every decision
            fund.apply_change(
                rules,
                reference=self.reference,
                changes=self.changes,
                public_health=self.public_health,
                command_id=command_id,
                at=at,
            )
