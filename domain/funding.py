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
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID, uuid5

from eventsourcing.domain import event
from pydantic import Field

from domain.actor import Actor
from domain.case import CASE_NAMESPACE, Command, Rules
from domain.errors import FundWouldOverspendError, InvalidInputError, NotAllowedError
from domain.recorded import Recorded, upcast_adding
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
    """A fund as the JCU proposes to open it: aligned or pooled, whether it holds ring-fenced
    public-health money, and what each party puts in (Cabinet report 4.5.1: ring-fenced contributions
    are identified separately). `balance_pence` alone (no contributions) is the form before funds
    knew their contributors; it is refused for a ring-fenced fund."""

    name: FundName
    type: Literal["aligned", "pooled"]
    ring_fenced: bool = False
    contributions: dict[PartyCode, Annotated[int, Field(ge=0)]] = Field(default={}, max_length=20)
    balance_pence: int | None = Field(default=None, ge=0)
    title: str = ""

    def opening_balance(self, members: list[str]) -> int:
        """The balance the fund opens with; refuses contributions that do not add up."""
        strangers = [p for p in self.contributions if p not in members]
        if strangers:
            raise InvalidInputError(
                f"--contribution {', '.join(map(repr, strangers))}: not members; members: {','.join(members)}"
            )
        if not self.contributions:
            if self.ring_fenced:
                raise InvalidInputError(
                    "a ring-fenced fund names each party's contribution (--contribution PARTY=POUNDS): "
                    "ring-fenced contributions are identified separately (Cabinet report 4.5.1)"
                )
            if self.balance_pence is None:
                raise InvalidInputError("give each party's contribution: --contribution PARTY=POUNDS, repeated")
            return self.balance_pence
        total = sum(self.contributions.values())
        if self.balance_pence is not None and self.balance_pence != total:
            raise InvalidInputError(
                f"--balance {money(self.balance_pence)} is not the sum of the contributions ({money(total)})"
            )
        return total


class Fund(Recorded):
    """An aligned or pooled fund, opened once the Programme Board agrees (ToR 4.2; its case is a
    `FundOpening`). Whether it holds ring-fenced public-health money is a fact of the fund, recorded
    when it opens: it decides the Public Health consultation of every change to it and whether the
    change is reported quarterly. Invariant: the balance never goes below zero (ToR 2.6)."""

    @staticmethod
    def create_id(name: str) -> UUID:
        return uuid5(CASE_NAMESPACE, f"fund:{name.strip().lower()}")

    @classmethod
    def open(
        cls,
        rules: Rules,
        *,
        command: OpenFund,
        balance_pence: int,
        case: str,
        actor: Actor,
        command_id: str,
        at: datetime,
    ) -> Fund:
        """The fund its opening case proposed, opened by the decision that agrees it."""
        year, quarter = financial_quarter(rules, rules.calendar.local_date(at))
        return cls(
            name=command.name,
            type=command.type,
            balance_pence=balance_pence,
            ring_fenced=command.ring_fenced,
            contributions=dict(command.contributions),
            case=case,
            financial_year=year,
            quarter=quarter,
            actor_id=actor.id,
            actor_role=actor.role,
            command_id=command_id,
            at=at,
        )

    class Opened(Recorded.Created):
        """Version 2 records whether the fund is ring-fenced, each party's contribution, the case
        that agreed it and the financial quarter. A version-1 fund (opened by a JCU lead alone, before
        funds knew these) loads with `ring_fenced` None: unknown, so its changes keep the flag given
        with each change."""

        class_version = 2
        name: str
        type: str
        balance_pence: int
        ring_fenced: bool | None
        contributions: dict[str, int]
        case: str
        financial_year: int
        quarter: int
        actor_id: str
        actor_role: str
        command_id: str
        at: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_adding(state, ring_fenced=None, contributions={}, case="", financial_year=0, quarter=0)

    @event(Opened)
    def __init__(
        self,
        *,
        name: str,
        type: str,
        balance_pence: int,
        ring_fenced: bool | None,
        contributions: dict[str, int],
        case: str,
        financial_year: int,
        quarter: int,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.name = name
        self.type = type
        self.balance_pence = balance_pence
        self.ring_fenced = ring_fenced
        self.opened = {"by": f"{actor_role}:{actor_id}", "at": at.isoformat(), "case": case}
        self.contributions: dict[str, int] = dict(contributions)
        self.ledger: list[dict[str, Any]] = []

    def holds_ring_fenced_money(self, asserted: bool | None) -> bool:
        """Whether a change to this fund touches ring-fenced public-health money: the fund's own fact.
        A flag given with the change is an assertion that must agree with it; for a fund opened before
        the fact was recorded (None), the flag given is all there is, as it was then."""
        if self.ring_fenced is None:
            return bool(asserted)
        if asserted is not None and asserted != self.ring_fenced:
            held = "holds" if self.ring_fenced else "holds no"
            raise InvalidInputError(
                f"--public-health {'given' if asserted else 'refused'}, but fund {self.name} {held} ring-fenced "
                "public-health money (recorded when it was opened); leave --public-health out"
            )
        return self.ring_fenced

    def check_can_afford(self, reference: str, changes: dict[str, int]) -> None:
        """ToR 2.6: aligned and pooled funds must not overspend. `reference` is empty for a change
        not yet started (it has none until it is recorded)."""
        total = sum(changes.values())
        after = self.balance_pence + total
        if after < 0:
            where = f" in {reference}" if reference else ""
            raise FundWouldOverspendError(
                f"fund {self.name} ({self.type}) has a balance of {money(self.balance_pence)}; the change of "
                f"{money(total)}{where} would overspend it by {money(-after)}"
            )

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
        self.check_can_afford(reference, changes)
        total = sum(changes.values())
        year, quarter = financial_quarter(rules, rules.calendar.local_date(at))
        self._apply_change(
            reference=reference,
            changes=dict(changes),
            total_pence=total,
            balance_after=self.balance_pence + total,
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
            "ring_fenced": self.ring_fenced,
            "balance_pence": self.balance_pence,
            "balance": money(self.balance_pence),
            "contributions": dict(self.contributions),
            "contributions_pounds": {p: money(v) for p, v in self.contributions.items()},
            "ledger": [{**item, "total": money(item["total_pence"])} for item in self.ledger],
            "opened": dict(self.opened),
        }


class StartFundingChange(Command):
    fund: FundName
    changes: dict[PartyCode, int] = Field(min_length=1, max_length=20)
    # Whether the fund holds ring-fenced money is the fund's fact; a flag given here must agree.
    public_health: bool | None = None
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
        ring_fenced = fund.holds_ring_fenced_money(command.public_health)
        fund.check_can_afford("", command.changes)
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
            public_health=ring_fenced,
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
        **rest: Any,
    ) -> None:
        """As any staged decision, with the fund checked at every stage (ToR 2.6): a decision that
        carries the change on while the fund cannot afford it is refused whole, naming the fund, its
        balance and the shortfall; one that ends it (a rejection), defers it or only moves its clock
        is recorded. The decision that approves the change applies it to the fund, in the same
        transaction."""
        if fund is None:
            raise InvalidInputError(f"{self.reference}: its fund {self.fund!r} was not loaded")
        seen = self.decisions_made
        super().decide(rules, actor=actor, command=command, command_id=command_id, at=at, **rest)
        if self.status == "approved":
            fund.apply_change(
                rules,
                reference=self.reference,
                changes=self.changes,
                public_health=self.public_health,
                command_id=command_id,
                at=at,
            )
        elif self.status == "open" and self._carries_on(rules, self._made_since(seen)):
            fund.check_can_afford(self.reference, self.changes)

    def _made_since(self, seen: int) -> list[dict[str, Any]]:
        """The decision the command just made (a command makes one at most), if it made one."""
        latest = self.latest_decision
        return [latest] if self.decisions_made > seen and latest is not None else []

    def _carries_on(self, rules: Rules, made: list[dict[str, Any]]) -> bool:
        """Whether the decision just made carries the change towards approval (not a deferral that
        keeps the stage open, nor an escalation's extend or send_back)."""
        route = self.route(rules)
        for d in made:
            stage = route.stages.get(d["stage"])
            if stage is None:
                return True
            if d["forum"] != stage.forum and not d.get("stage_outcome"):
                return False  # the escalation forum's extend or send_back: the clock, not the money
            rule = stage.outcomes.get(d.get("stage_outcome") or d["outcome"])
            if rule is not None and rule.stays:
                return False
        return True
