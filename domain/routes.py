"""Routes as data: where a case goes, stage by stage, as the policy file writes it.

A route (`[routes.<kind>]` in the policy) names its first stage, its stages, its ends, its joins and
its named conditions. Each stage has a forum (whose decider records its decisions), a deadline rule,
and outcomes; each outcome leads somewhere:

- to another **stage**;
- to a list of stages — a **fork**: one parallel branch per stage whose own `when` holds (one per
  party's own decision-making body, say), each deciding for its party only;
- to a **join** (with the branch's `result`, approved or rejected): the case goes on to the join's
  `then` when every branch opened at the fork has arrived approved; a branch arriving rejected ends
  the case at once with the join's `on_rejected` end (or, with `on_rejected = "continue"`, is recorded
  and the others go on);
- to an **end**: a terminal status of the case (`approved`, `rejected`, `not_agreed`, …).

An outcome may be offered only `when` named conditions hold (or `unless` they do), at most `times`
times at a stage, may `stay` (the stage stays open to its forum's next meeting, e.g. a deferral), and
may choose among `routes` (first whose conditions hold) before its plain `to`. A stage may `require`
conditions before the case can enter it (refused otherwise, with the condition's `explain`).

Conditions are tests of a case's facts (`Facts`): its sub-kind, its value in pence (as a magnitude),
the parties on it, and named flags the case kind sets (`public_health`, `lever_informed`, …).

`problems()` checks a route the way a governance officer needs it checked: unknown names, stages
nobody may act at, stages no path reaches, and joins that can never complete. This module interprets
routes; it never holds one. The shipped routes are in `governance.toml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

CONTINUE = "continue"


def _names(value: Any) -> Any:
    """`when = "x"` and `when = ["x", "y"]` both mean a list of condition names."""
    return [value] if isinstance(value, str) else value


Names = Annotated[list[str], BeforeValidator(_names)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Deadline(_Model):
    """Either a count of working days from the day a stage opens, or the forum's next meeting."""

    working_days: int | None = Field(default=None, ge=1)
    next_meeting: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Deadline:
        if (self.working_days is None) == (self.next_meeting is None):
            msg = "a stage deadline needs exactly one of working_days or next_meeting"
            raise ValueError(msg)
        return self


@dataclass(frozen=True)
class Facts:
    """What a route's conditions may ask of a case."""

    kind: str = ""
    value_pence: int = 0
    parties: tuple[str, ...] = ()
    flags: frozenset[str] = field(default_factory=frozenset)


class Condition(_Model):
    """A test of a case's facts; every test given must pass."""

    value_at_most: int | None = Field(default=None, ge=0)
    value_above: int | None = Field(default=None, ge=0)
    kind_in: list[str] | None = None
    kind_not_in: list[str] | None = None
    party: str | None = None
    not_party: str | None = None
    flags: list[str] = []
    not_flags: list[str] = []
    explain: str = ""

    def holds(self, facts: Facts) -> bool:
        value = abs(facts.value_pence)
        return (
            (self.value_at_most is None or value <= self.value_at_most)
            and (self.value_above is None or value > self.value_above)
            and (self.kind_in is None or facts.kind in self.kind_in)
            and (self.kind_not_in is None or facts.kind not in self.kind_not_in)
            and (self.party is None or self.party in facts.parties)
            and (self.not_party is None or self.not_party not in facts.parties)
            and all(f in facts.flags for f in self.flags)
            and not any(f in facts.flags for f in self.not_flags)
        )


Target = str | list[str]


class Alternative(_Model):
    """One of an outcome's `routes`: taken when its conditions hold (the first that does wins)."""

    when: Names = []
    unless: Names = []
    to: Target


class Outcome(_Model):
    to: Target | None = None
    when: Names = []
    unless: Names = []
    routes: list[Alternative] = []
    times: int | None = Field(default=None, ge=1)
    stays: bool = False
    result: Literal["approved", "rejected"] | None = None

    @model_validator(mode="after")
    def _goes_somewhere(self) -> Outcome:
        if not self.stays and self.to is None and not self.routes:
            msg = "an outcome needs `to`, `routes` or `stays = true`"
            raise ValueError(msg)
        return self

    def targets(self) -> list[Target]:
        found: list[Target] = [a.to for a in self.routes]
        if self.to is not None:
            found.append(self.to)
        return found


class Stage(_Model):
    forum: str
    deadline: Deadline
    title: str = ""
    when: Names = []
    requires: Names = []
    escalates: bool = True
    outcomes: dict[str, Outcome] = Field(min_length=1)


class Join(_Model):
    then: str
    on_rejected: str


class Escalation(_Model):
    """Where a stage that misses its deadline goes, and what that forum may do about it."""

    forum: str
    deadline: Deadline
    may: list[Literal["extend", "send_back", "decide"]] = ["extend", "send_back"]
    decides_in_place: list[str] = []


class Route(_Model):
    start: str
    started_by: list[str]
    withdrawn_by: list[str] = []
    reminder_working_days: int = Field(ge=0)
    ends: dict[str, str] = Field(min_length=1)
    stages: dict[str, Stage] = Field(min_length=1)
    joins: dict[str, Join] = {}
    conditions: dict[str, Condition] = {}
    escalation: Escalation | None = None

    # --- questions a case asks ------------------------------------------------------------------

    def holds(self, when: list[str], unless: list[str], facts: Facts) -> bool:
        return all(self.conditions[n].holds(facts) for n in when) and not any(
            self.conditions[n].holds(facts) for n in unless
        )

    def offered(self, stage: str, facts: Facts, counts: dict[str, int]) -> list[str]:
        """The outcomes `stage` allows this case now, in the policy's order."""
        return [
            name
            for name, o in self.stages[stage].outcomes.items()
            if self.holds(o.when, o.unless, facts) and (o.times is None or counts.get(f"{stage}:{name}", 0) < o.times)
        ]

    def target(self, stage: str, outcome: str, facts: Facts) -> Target | None:
        """Where `outcome` at `stage` leads this case (None: it stays)."""
        rule = self.stages[stage].outcomes[outcome]
        for alt in rule.routes:
            if self.holds(alt.when, alt.unless, facts):
                return alt.to
        return rule.to

    def join_after(self, fork: list[str]) -> str:
        """The join a fork's branches meet at (checked to be one and the same by `problems`)."""
        for branch in fork:
            joins = self._joins_reached(branch)
            if joins:
                return sorted(joins)[0]
        return ""

    def kind_of(self, name: str) -> str:
        if name in self.stages:
            return "stage"
        if name in self.ends:
            return "end"
        if name in self.joins:
            return "join"
        return ""

    # --- checks for `concordat policy check` ----------------------------------------------------

    def problems(self, forums: dict[str, str], is_role: Any) -> list[tuple[tuple[str, ...], str]]:
        """Every problem with this route: (where in the route, what is wrong). `forums` maps each
        forum to the role that decides there; `is_role` says whether a role is a known one."""
        found: list[tuple[tuple[str, ...], str]] = []
        clash = (
            (set(self.stages) & set(self.ends))
            | (set(self.stages) & set(self.joins))
            | (set(self.ends) & set(self.joins))
        )
        for name in sorted(clash):
            found.append(((name,), f"{name!r} is used for more than one of a stage, an end and a join"))
        if self.start not in self.stages:
            found.append((("start",), f"start stage {self.start!r} is not a stage of this route"))
        for role in [*self.started_by, *self.withdrawn_by]:
            if not is_role(role):
                found.append((("started_by",), f"role {role!r} is not a known role"))
        for name, cond in self.conditions.items():
            if cond == Condition():
                found.append((("conditions", name), f"condition {name!r} tests nothing"))
        for name, stage in self.stages.items():
            where = ("stages", name)
            if stage.forum not in forums:
                found.append(((*where, "forum"), f"stage {name!r} names unknown forum {stage.forum!r}"))
            elif not is_role(forums[stage.forum]):
                found.append(
                    (
                        (*where, "forum"),
                        f"no role may act at stage {name!r}: forum {stage.forum!r} is "
                        f"decided by {forums[stage.forum]!r}, which is not a known role",
                    )
                )
            for cname in [*stage.when, *stage.requires]:
                if cname not in self.conditions:
                    found.append(((*where, "when"), f"stage {name!r} names unknown condition {cname!r}"))
            for oname, outcome in stage.outcomes.items():
                found.extend(self._outcome_problems((*where, "outcomes", oname), outcome))
        for jname, join in self.joins.items():
            if self.kind_of(join.then) not in ("stage", "end"):
                found.append(
                    (
                        ("joins", jname, "then"),
                        f"join {jname!r} goes on to {join.then!r}, which is neither a stage nor an end",
                    )
                )
            if join.on_rejected != CONTINUE and join.on_rejected not in self.ends:
                found.append(
                    (
                        ("joins", jname, "on_rejected"),
                        f"join {jname!r}: on_rejected must be an end or {CONTINUE!r}, not {join.on_rejected!r}",
                    )
                )
        if self.escalation is not None:
            esc = self.escalation
            if esc.forum not in forums:
                found.append((("escalation", "forum"), f"escalation forum {esc.forum!r} is not a forum"))
            for s in esc.decides_in_place:
                if s not in self.stages:
                    found.append((("escalation", "decides_in_place"), f"{s!r} is not a stage of this route"))
        if found:
            return found
        found.extend(self._graph_problems())
        return found

    def _outcome_problems(self, where: tuple[str, ...], outcome: Outcome) -> list[tuple[tuple[str, ...], str]]:
        found: list[tuple[tuple[str, ...], str]] = []
        for cond in [*outcome.when, *outcome.unless, *(c for a in outcome.routes for c in [*a.when, *a.unless])]:
            if cond not in self.conditions:
                found.append(((*where, "when"), f"outcome {where[-1]!r} names unknown condition {cond!r}"))
        for target in outcome.targets():
            if isinstance(target, list):
                if len(target) < 2:
                    found.append(((*where, "to"), "a fork lists two or more stages"))
                for t in target:
                    if t not in self.stages:
                        found.append(((*where, "to"), f"fork target {t!r} is not a stage"))
                continue
            kind = self.kind_of(target)
            if not kind:
                found.append(((*where, "to"), f"{target!r} is not a stage, an end or a join of this route"))
            elif kind == "join" and outcome.result is None:
                found.append(
                    (
                        (*where, "result"),
                        f"an outcome that goes to join {target!r} needs `result` (approved or rejected)",
                    )
                )
        return found

    def _next(self, stage: str) -> list[Target]:
        return [t for o in self.stages[stage].outcomes.values() for t in o.targets()]

    def _joins_reached(self, branch: str) -> set[str]:
        """Joins a branch starting at `branch` can reach without passing another fork."""
        seen, todo, joins = set(), [branch], set()
        while todo:
            s = todo.pop()
            if s in seen:
                continue
            seen.add(s)
            for t in self._next(s):
                if isinstance(t, list):
                    continue
                kind = self.kind_of(t)
                if kind == "stage":
                    todo.append(t)
                elif kind == "join":
                    joins.add(t)
        return joins

    def _graph_problems(self) -> list[tuple[tuple[str, ...], str]]:
        found: list[tuple[tuple[str, ...], str]] = []
        reached: set[str] = set()
        todo: list[str] = [self.start]
        forks: list[list[str]] = []
        while todo:
            name = todo.pop()
            if name in reached:
                continue
            reached.add(name)
            if self.kind_of(name) == "join":
                todo.append(self.joins[name].then)
                continue
            if self.kind_of(name) != "stage":
                continue
            for t in self._next(name):
                if isinstance(t, list):
                    forks.append(t)
                    todo.extend(t)
                else:
                    todo.append(t)
        for name in self.stages:
            if name not in reached:
                found.append(
                    (("stages", name), f"stage {name!r} is unreachable: no path from {self.start!r} leads to it")
                )
        fed: set[str] = set()
        for fork in forks:
            per_branch = {b: self._joins_reached(b) for b in fork}
            for b, joins in per_branch.items():
                if not joins:
                    found.append(
                        (
                            ("stages", b),
                            f"branch {b!r} of the fork {fork} never reaches a join: "
                            "the join after it can never complete",
                        )
                    )
            distinct = set().union(*per_branch.values())
            if len(distinct) > 1:
                found.append(
                    (
                        ("stages", fork[0]),
                        f"the branches of the fork {fork} reach different joins "
                        f"({', '.join(sorted(distinct))}): none can complete",
                    )
                )
            fed |= distinct
        for name in self.joins:
            if name not in fed:
                found.append((("joins", name), f"join {name!r} can never complete: no fork's branches lead to it"))
        return found
