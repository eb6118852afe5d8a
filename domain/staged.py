"""Cases that travel a route of the policy: proposals, contract variations and funding changes.

`StagedCase` interprets the case kind's route (`[routes.<kind>]`, see `domain/routes.py`): the
stages open now (several at once while parallel branches are open, one per party's own body), who
decides at each and with which outcomes, where each outcome leads, the joins that wait for every
branch, and each open stage's clock — a deadline, a reminder before it, and escalation at it. Stage
bookkeeping lives here once; a kind adds only its own facts (what the route's conditions test), its
own details, and any command of its own.

Escalation: a stage with no decision by its deadline is escalated to the route's escalation forum,
which then has its own deadline and may do what the route allows: `extend` the deadline (to a date it
names, or by the stage's own rule), `send_back` to the stage before (within the same branch), or
`decide` in the stage's place where the route lists the stage in `decides_in_place`. The stage's own
forum may still decide late. A stage that does not escalate, or an escalation whose own deadline
passes, records the miss and the case waits, overdue.

Events: `Decided` records the decision and its consequences as data — the stages it closed and
opened (with their deadlines), a fork (the join and its branches), a branch's arrival at a join, the
status after — so that applying it never consults the policy. Version 1 of `Decided` and
`Escalated` (one stage at a time) are upcast on load. The decision history people are shown is read
from the `Decided` events (`decision_history`); the case's state keeps only what the rules read of
it (`_remember_decision`), so a long case's snapshot does not grow with every decision.

Invariants: a closed case takes no command; a decision is recorded only at an open stage, only by
that stage's decider (or the escalation forum's, for the escalation's outcomes), only with an
outcome the route offers the case now, and never by a person the policy's separation of duties
refuses (`domain/separation.py`: one stage per person, no self-approval; checked when the command is
given, so a case recorded before the rule replays unchanged); a party's own body (its forum names the
party) neither decides nor is asked once that party has left the partnership (`Rules.membership`;
a fork opens only members' branches, recorded in `Decided`); every command id is applied at most
once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar

from eventsourcing.domain import event

from domain.actor import Actor
from domain.case import SYSTEM_ACTOR, Case, CaseAction, CaseView, Command, Rules, Timer
from domain.errors import (
    CaseClosedError,
    DeadlineNotReachedError,
    InvalidInputError,
    MinutesRequiredError,
    NotAllowedError,
    NotYourForumError,
    OutcomeNotAllowedError,
    PolicyError,
    RequirementNotMetError,
    WrongStageError,
    closed_text,
)
from domain.forward_plan import ForwardPlan
from domain.meeting import Meeting, MeetingBook, MeetingRequiredError
from domain.recorded import upcast_adding
from domain.routes import Facts, Route
from domain.separation import SeparationOfDutiesError
from domain.timing import StageTimes, stage_times, with_reminder
from domain.values import Name, Note, OptionalReference

OPEN = "open"
WITHDRAWN = "withdrawn"
ESCALATION_OUTCOMES = ("extend", "send_back", "decide")


class Decide(Command):
    stage: Name
    outcome: Name
    minutes_ref: OptionalReference = ""
    note: Note = ""
    stage_outcome: Name | None = None
    new_deadline: date | None = None
    # A decision of a forum that meets (`[meeting_rules.<forum>]`): the meeting it was taken at and
    # the members who took part (default: those present with no declared interest in the item), or
    # that it was taken by written procedure where the policy allows.
    meeting: OptionalReference = ""
    taking_part: list[Name] = []
    written_procedure: bool = False


class Withdraw(Command):
    note: Note = ""


class CallIn(Command):
    """Scrutiny members call in a council body's decision before it takes effect (`[call_in]`)."""

    stage: Name
    members: list[Name]
    reason: Note = ""


SCRUTINY_OUTCOMES = ("refer_back", "let_stand")


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant is not None else None


def _instant(text: str | datetime | None) -> datetime | None:
    if text is None or isinstance(text, datetime):
        return text
    return datetime.fromisoformat(text)


@dataclass
class Move:
    """What a decision does to a case: computed once by the command, recorded in `Decided`."""

    status: str = OPEN
    opened: list[dict[str, Any]] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    forked: dict[str, Any] | None = None
    joined: dict[str, Any] | None = None


class StagedCase(Case):
    ROUTE: ClassVar[str]  # the case kind: its route is `[routes.<ROUTE>]`
    # The commands a person may give, by name: (the command's model, the method that runs it).
    ACTIONS: ClassVar[dict[str, tuple[type[Command], str]]] = {
        "decide": (Decide, "decide"),
        "withdraw": (Withdraw, "withdraw"),
        "call_in": (CallIn, "call_in"),
    }
    # Version 2 keeps the rules' part of the decisions (`_remember_decision`); a snapshot of version 1
    # is upcast from the history it held. (A proposal counts one version more: see `Proposal`.)
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        compact_decisions(state)

    # --- what a kind says ---------------------------------------------------------------------

    def facts(self) -> Facts:
        """What the route's conditions test (the kind's sub-kind, value, parties, flags)."""
        return Facts()

    def details(self) -> dict[str, Any]:
        """The kind's own fields, for the view."""
        return {}

    def extra_actions(self, rules: Rules) -> list[CaseAction]:
        return []

    def extra_timers(self) -> list[Timer]:
        return []

    # --- the route ----------------------------------------------------------------------------

    def route(self, rules: Rules) -> Route:
        return rules.policy.route(self.ROUTE)

    def times(self, rules: Rules, stage: str, at: datetime, *, after: date | None = None) -> StageTimes:
        route = self.route(rules)
        return stage_times(rules, route.stages[stage].deadline, at, route.reminder_working_days, after=after)

    def _opening(self, stage: str, branch: str, back: str, times: StageTimes) -> dict[str, Any]:
        return {
            "stage": stage,
            "branch": branch,
            "back": back,
            "deadline": _iso(times.deadline),
            "reminder_at": _iso(times.reminder_at),
        }

    # --- shared state -------------------------------------------------------------------------

    def _begin(
        self,
        *,
        reference: str,
        title: str,
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
        self.policy_hash = policy_hash
        self.started_by = {"id": actor_id, "role": actor_role}
        self.started_at = at
        self.status = OPEN
        self.stage_seq = 0
        self.open_stages: dict[str, dict[str, Any]] = {}
        self.joins: dict[str, dict[str, Any]] = {}
        self.counts: dict[str, int] = {}
        self.backs: dict[str, str] = {}
        # What the rules need of the decisions (see `_remember_decision`): the history itself is in
        # the case's events (`decision_history`), so nothing in the state grows with every decision.
        self.decisions_made = 0
        self.latest_decision: dict[str, Any] | None = None
        self.stages_decided: list[str] = []
        self.first_deciders: list[dict[str, Any]] = []
        self.command_versions: dict[str, int] = {command_id: 1}
        self._open({"stage": stage, "branch": "", "back": "", "deadline": deadline, "reminder_at": reminder_at})

    @property
    def stage(self) -> str:
        """The stages the case awaits, comma-separated (empty once it has ended)."""
        return ",".join(self.open_stages)

    @property
    def deadline(self) -> datetime | None:
        """The earliest deadline of an open stage."""
        pending = [e["deadline"] for e in self.open_stages.values() if e["deadline"] is not None]
        return min(pending) if pending else None

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    def last_decision_text(self) -> str | None:
        """The latest decision in a line, to tell a person who was beaten to it what was recorded."""
        d = self.latest_decision
        if d is None:
            return None
        outcome = f"{d['outcome']} {d['stage_outcome']}" if d.get("stage_outcome") else d["outcome"]
        return f"{d['stage']}: {outcome} by {d['by']} at {d['at']}"

    # --- what may be done now -----------------------------------------------------------------

    def actions(self, rules: Rules) -> list[CaseAction]:
        if self.status != OPEN:
            return []
        policy, route, facts = rules.policy, self.route(rules), self.facts()
        found: list[CaseAction] = []
        for stage, entry in self.open_stages.items():
            sdef = route.stages[stage]
            if entry.get("held"):
                found.append(self._call_in_action(rules, stage, entry))
                continue
            found.append(
                CaseAction(
                    "decide",
                    [policy.decider_of(sdef.forum)],
                    stage=stage,
                    outcomes=route.offered(stage, facts, self.counts),
                    barred=self._barred(rules, route, stage),
                )
            )
            if entry["escalated_to"] and route.escalation is not None:
                esc = self._escalation_outcomes(route, stage, entry)
                if esc:
                    found.append(
                        CaseAction(
                            "decide",
                            [policy.decider_of(entry["escalated_to"])],
                            stage=stage,
                            outcomes=esc,
                            stage_outcomes=[
                                o
                                for o in route.offered(stage, facts, self.counts)
                                if not route.stages[stage].outcomes[o].stays
                            ]
                            if "decide" in esc
                            else [],
                        )
                    )
        if route.withdrawn_by:
            found.append(CaseAction("withdraw", list(route.withdrawn_by)))
        return found + self.extra_actions(rules)

    def _decisions_that_count(self, route: Route) -> list[dict[str, Any]]:
        """The decisions separation of duties counts: every stage's own, and the escalation forum's
        decisions in a stage's place — not its `extend` or `send_back` (recorded for its forum, not the
        stage's, and with no stage outcome)."""
        counted = []
        for d in self.first_deciders:  # the first decision of each person at each stage and forum
            stage, forum = d["stage"], d["forum"]
            if stage in route.stages and forum != route.stages[stage].forum and not d["stage_outcome"]:
                continue
            counted.append({k: d[k] for k in ("stage", "forum", "actor_id", "actor_role", "at")})
        return counted

    def _barred(self, rules: Rules, route: Route, stage: str) -> list[str]:
        """The people separation of duties would refuse a decision at `stage` (by its own forum)."""
        earlier = self._decisions_that_count(route)
        people = dict.fromkeys([self.started_by["id"], *(d["actor_id"] for d in earlier)])
        barred = []
        for person in people:
            try:
                rules.policy.separation.check_decision(
                    reference=self.reference,
                    person=person,
                    stage=stage,
                    forum=route.stages[stage].forum,
                    started_by=self.started_by,
                    earlier=earlier,
                )
            except SeparationOfDutiesError:
                barred.append(person)
        return barred

    @staticmethod
    def _escalation_outcomes(route: Route, stage: str, entry: dict[str, Any]) -> list[str]:
        esc = route.escalation
        if esc is None:
            return []
        return [
            o
            for o in esc.may
            if (o != "send_back" or entry["back"]) and (o != "decide" or stage in esc.decides_in_place)
        ]

    def timers(self) -> list[Timer]:
        if self.status != OPEN:
            return self.extra_timers()
        found: list[Timer] = []
        for entry in self.open_stages.values():
            held = entry.get("held")
            if held:
                if not held.get("called_in"):
                    found.append(Timer(f"callin:{entry['seq']}", _instant(held["until"])))  # type: ignore[arg-type]
                continue
            if entry["reminder_at"] is not None and not entry["reminder_sent"]:
                found.append(Timer(f"remind:{entry['seq']}", entry["reminder_at"]))
            if entry["deadline"] is not None and not entry["missed"]:
                found.append(Timer(f"escalate:{entry['seq']}", entry["deadline"]))
        return found + self.extra_timers()

    def view(self, rules: Rules) -> CaseView:
        policy = rules.policy
        route = self.route(rules)
        awaiting = [
            {
                "stage": stage,
                "title": route.stages[stage].title or stage,
                "forum": route.stages[stage].forum,
                "decided_by": policy.decider_of(route.stages[stage].forum),
                "branch": e["branch"],
                "deadline": e["deadline"],
                "reminder_at": e["reminder_at"],
                "escalated_to": e["escalated_to"],
                "overdue_recorded": e["missed"],
                "call_in": dict(e["held"]) if e.get("held") else None,
            }
            for stage, e in self.open_stages.items()
        ]
        return CaseView(
            reference=self.reference,
            kind=self.ROUTE,
            title=self.title,
            status=self.status,
            stage=self.stage,
            deadline=self.deadline,
            version=self.version,
            policy_hash=self.policy_hash,
            started_at=self.started_at,
            started_by=dict(self.started_by),
            actions=self.actions(rules),
            timers=self.timers(),
            stage_seq=self.stage_seq,
            details={
                **self.details(),
                "escalated_to": next((a["escalated_to"] for a in awaiting if a["escalated_to"]), None),
            },
            awaiting=awaiting,
            route=self.plan(route),
            last_decision=self.last_decision_text(),
        )

    @staticmethod
    def decision_history(events: Iterable[Any]) -> list[dict[str, Any]]:
        """The case's decisions as people are shown them (`show`, the API's case, the case page, the
        public register), from the case's events: its state keeps only the rules' part of them. A
        held decision that took effect says how and when (`DecisionTookEffect`)."""
        shown: list[dict[str, Any]] = []
        for e in events:
            name, recorded = type(e).__name__, e.__dict__
            if name == "Decided":  # today's, or a proposal's from before routes were data
                shown.append(decision_entry(recorded))
            elif name == "DecisionTookEffect":
                for d in reversed(shown):
                    if d["stage"] == recorded["stage"]:
                        d["took_effect"] = {"how": recorded["how"], "at": recorded["at"].isoformat()}
                        break
        return shown

    def plan(self, route: Route) -> list[dict[str, Any]]:
        """The route as this case sees it: stages done, open now, and likely still to come (the way
        the first outcome that moves the case forward leads, given its facts)."""
        facts = self.facts()
        done = [stage for stage in self.stages_decided if stage in route.stages]
        steps: list[dict[str, Any]] = []
        seen: set[str] = set()

        def add(stage: str, state: str) -> None:
            if stage not in seen:
                seen.add(stage)
                steps.append({"stage": stage, "title": route.stages[stage].title or stage, "state": state})

        for stage in done:
            if stage not in self.open_stages:
                add(stage, "done")
        if self.status != OPEN:
            return steps
        todo = list(self.open_stages)
        for stage in todo:
            add(stage, "current")
        success = next(iter(route.ends))
        while todo:
            stage = todo.pop(0)
            for name in route.offered(stage, facts, {}):
                rule = route.stages[stage].outcomes[name]
                target = route.target(stage, name, facts)
                if (
                    rule.stays
                    or target is None
                    or (isinstance(target, str) and route.kind_of(target) == "end" and target != success)
                ):
                    continue
                if rule.result == "rejected":
                    continue
                nxt: list[str] = []
                if isinstance(target, list):
                    nxt = [s for s in target if route.holds(route.stages[s].when, [], facts)]
                elif route.kind_of(target) == "stage":
                    nxt = [target]
                elif route.kind_of(target) == "join":
                    then = route.joins[target].then
                    nxt = [then] if route.kind_of(then) == "stage" else []
                for s in nxt:
                    if s not in seen:
                        add(s, "to_come")
                        todo.append(s)
                break
        return steps

    # --- commands -----------------------------------------------------------------------------

    def decide(
        self,
        rules: Rules,
        *,
        actor: Actor,
        command: Decide,
        command_id: str,
        at: datetime,
        meetings: MeetingBook | None = None,
        forward_plan: ForwardPlan | None = None,
        **_: Any,
    ) -> None:
        """Record a decision at an open stage and move the case on as its route says. A forum that
        meets records it against the meeting and agenda item it was taken at (`_at_meeting`)."""
        self._check_open()
        policy, route, facts = rules.policy, self.route(rules), self.facts()
        stage = command.stage
        if stage not in self.open_stages:
            # Named by the escalation forum instead (as the CLI once asked): the one stage escalated to it.
            escalated = [s for s, e in self.open_stages.items() if e["escalated_to"] == stage]
            if len(escalated) == 1:
                stage = escalated[0]
        if stage not in self.open_stages:
            last = self.last_decision_text()
            already = f"; decision already recorded: {last}" if last else ""
            raise WrongStageError(f"{self.reference} is awaiting {', '.join(self.open_stages)}, not {stage}{already}")
        entry = self.open_stages[stage]
        if entry.get("held"):
            self._scrutiny_decides(rules, stage, entry, actor=actor, command=command, command_id=command_id, at=at)
            return
        sdef = route.stages[stage]
        decider = policy.decider_of(sdef.forum)
        esc_forum = entry["escalated_to"]
        esc_role = policy.decider_of(esc_forum) if esc_forum else None
        esc_outcomes = self._escalation_outcomes(route, stage, entry) if esc_forum else []
        as_escalation = actor.role == esc_role and (actor.role != decider or command.outcome in esc_outcomes)
        if actor.role != decider and not as_escalation:
            deciders = " or ".join([decider] + ([esc_role] if esc_role and esc_outcomes else []))
            error = NotYourForumError if actor.role.startswith("secretary:") else NotAllowedError
            raise error(f"role {actor.role} may not decide at {stage} for {self.reference}; {deciders} decides there")
        body_of = policy.forums[sdef.forum].party if sdef.forum in policy.forums else None
        if body_of is not None and not as_escalation:
            # A party's own body decides for that party only; a party that has left takes no part.
            rules.membership.check_acting_for(body_of, f"{self.reference} ({sdef.forum} decides for {body_of})")
        if not as_escalation or command.outcome == "decide":  # extend and send_back decide the clock only
            policy.separation.check_decision(
                reference=self.reference,
                person=actor.id,
                stage=stage,
                forum=esc_forum if as_escalation else sdef.forum,
                started_by=self.started_by,
                earlier=self._decisions_that_count(route),
            )
        offered = route.offered(stage, facts, self.counts)
        if command.new_deadline is not None and not (as_escalation and command.outcome == "extend"):
            raise InvalidInputError("--deadline goes only with the escalation outcome 'extend'")
        if command.stage_outcome and not (as_escalation and command.outcome == "decide"):
            raise InvalidInputError("--stage-outcome goes only with an escalation's 'decide'")
        if as_escalation:
            if command.outcome not in esc_outcomes:
                raise OutcomeNotAllowedError(
                    f"outcome {command.outcome!r} is not allowed at {stage} for {self.reference}; "
                    f"allowed: {', '.join(esc_outcomes)}"
                )
            move, effective = self._escalation_move(rules, route, facts, stage, command, offered, at)
            forum = esc_forum
        else:
            if command.outcome not in offered:
                raise OutcomeNotAllowedError(
                    f"outcome {command.outcome!r} is not allowed at {stage} for {self.reference}; "
                    f"allowed: {', '.join(offered)}"
                )
            move, effective = self._move(rules, route, facts, stage, command.outcome, at), command.outcome
            forum = sdef.forum
        if policy.minutes.needed_at(forum) and not command.minutes_ref.strip():
            name = policy.forums[forum].name if forum in policy.forums else forum
            raise MinutesRequiredError(
                f"--minutes-ref: a decision of {forum} ({name}) names the minutes that record it, "
                f"e.g. --minutes-ref {forum.upper().replace('_', '-')}-{rules.calendar.local_date(at).year}-01"
            )
        at_meeting, meeting = self._at_meeting(rules, stage, forum, command, actor, meetings)
        key_decision = None
        if not as_escalation and forward_plan is not None:
            key_decision = forward_plan.check_key_decision(
                rules=policy.key_decisions,
                calendar=rules.calendar,
                case=self.reference,
                forum=forum,
                value_pence=facts.value_pence,
                at=at,
            )
        held = None
        if not as_escalation and not route.stages[stage].outcomes[effective].stays:
            held = self._call_in_period(rules, forum, effective, at)
        self._record_move(
            stage=stage,
            forum=forum,
            outcome=command.outcome,
            effective=effective,
            stage_outcome=command.stage_outcome,
            minutes_ref=command.minutes_ref,
            note=command.note,
            move=Move() if held else move,  # held: it takes effect when the call-in period ends
            actor=actor,
            command_id=command_id,
            at=at,
            meeting=at_meeting,
            key_decision=key_decision,
            held=held,
        )
        if meeting is not None and meetings is not None and at_meeting is not None:
            meeting.record_decision(
                item=at_meeting["item"],
                case=self.reference,
                stage=stage,
                outcome=command.outcome,
                taking_part=at_meeting["taking_part"],
                actor=actor,
                command_id=command_id,
                at=at,
            )
            meetings.changed.append(meeting)

    def _at_meeting(
        self,
        rules: Rules,
        stage: str,
        forum: str,
        command: Decide,
        actor: Actor,
        meetings: MeetingBook | None,
    ) -> tuple[dict[str, Any] | None, Meeting | None]:
        """Where a decision of a forum that meets was taken: at a meeting, against its agenda item
        (in session, or after it from its minutes; quorate for the item, no member with a declared
        interest taking part), or by written procedure where the policy allows. A forum with no
        meeting rules, or whose rules do not ask for meetings, decides as before unless a meeting is
        named. Nothing here for a case that started under a policy without meeting rules."""
        mrules = rules.policy.meetings_of(forum)
        if command.written_procedure:
            if mrules is None or not mrules.written_procedure:
                raise InvalidInputError(f"{forum} takes no decisions by written procedure under the policy")
            if command.meeting or command.taking_part:
                raise InvalidInputError("a decision by written procedure names no meeting and no members taking part")
            return {"written_procedure": True}, None
        if not command.meeting:
            if command.taking_part:
                raise InvalidInputError("--taking-part goes with --meeting")
            if mrules is not None and mrules.decisions_at_meetings:
                allowed = " or by written procedure (--written-procedure)" if mrules.written_procedure else ""
                raise MeetingRequiredError(
                    f"--meeting: a decision of {forum} is taken at one of its meetings{allowed}; "
                    "name the meeting (MTG-…) it was taken at"
                )
            return None, None
        if mrules is None:
            raise InvalidInputError(f"{forum} keeps no meetings under the policy; leave out --meeting")
        if meetings is None:  # every command of a staged case is given the book (application._collaborators)
            raise InvalidInputError("meetings cannot be read here")
        meeting = meetings.get(command.meeting)
        entry, taking_part = meeting.check_decision(
            rules=mrules,
            case=self.reference,
            stage=stage,
            forum=forum,
            recorder=actor,
            taking_part=list(command.taking_part),
            minutes_ref=command.minutes_ref,
        )
        recorded = {
            "reference": meeting.reference,
            "on": meeting.on.isoformat(),
            "item": entry["item"],
            "taking_part": taking_part,
            "written_procedure": False,
        }
        return recorded, meeting

    def _escalation_move(
        self, rules: Rules, route: Route, facts: Facts, stage: str, command: Decide, offered: list[str], at: datetime
    ) -> tuple[Move, str]:
        entry = self.open_stages[stage]
        if command.outcome == "extend":
            if command.new_deadline is not None:
                if command.new_deadline <= rules.calendar.local_date(at):
                    raise InvalidInputError(f"new deadline {command.new_deadline.isoformat()} is not after today")
                deadline = rules.calendar.close_of_business_on(command.new_deadline)
                times = with_reminder(rules, deadline, at, route.reminder_working_days)
            else:
                times = self.times(rules, stage, at)
            return Move(closed=[stage], opened=[self._opening(stage, entry["branch"], entry["back"], times)]), "extend"
        if command.outcome == "send_back":
            back = entry["back"]
            opening = self._opening(back, entry["branch"], self.backs.get(back, ""), self.times(rules, back, at))
            return Move(closed=[stage], opened=[opening]), "send_back"
        allowed = [o for o in offered if not route.stages[stage].outcomes[o].stays]
        if command.stage_outcome not in allowed:
            raise OutcomeNotAllowedError(
                f"decide in place of {stage} needs --stage-outcome, one of: " + ", ".join(allowed)
            )
        assert command.stage_outcome is not None
        return self._move(rules, route, facts, stage, command.stage_outcome, at), command.stage_outcome

    def _move(self, rules: Rules, route: Route, facts: Facts, stage: str, outcome: str, at: datetime) -> Move:
        entry = self.open_stages[stage]
        rule = route.stages[stage].outcomes[outcome]
        if rule.stays:
            after = rules.calendar.local_date(entry["deadline"] or at)
            times = self.times(rules, stage, at, after=after)
            return Move(closed=[stage], opened=[self._opening(stage, entry["branch"], entry["back"], times)])
        target = route.target(stage, outcome, facts)
        assert target is not None  # only `stays` outcomes have none (checked by the policy's model)
        move = Move(closed=[stage])
        self._go(rules, route, facts, target, move, branch=entry["branch"], came_from=stage, result=rule.result, at=at)
        return move

    def _go(
        self,
        rules: Rules,
        route: Route,
        facts: Facts,
        target: str | list[str],
        move: Move,
        *,
        branch: str,
        came_from: str,
        result: str | None,
        at: datetime,
    ) -> None:
        if isinstance(target, list):
            branches = [
                s
                for s in target
                if route.holds(route.stages[s].when, [], facts) and self._takes_part(rules, route.stages[s].forum)
            ]
            if not branches:
                raise PolicyError(
                    f"no branch of [{', '.join(target)}] applies to {self.reference} "
                    f"(parties: {', '.join(facts.parties) or 'none'}); the route must name one"
                )
            for s in branches:
                self._require(route, facts, s)
            move.forked = {"join": route.join_after(target), "branches": branches}
            move.opened.extend(self._opening(s, s, "", self.times(rules, s, at)) for s in branches)
            return
        kind = route.kind_of(target)
        if kind == "end":
            move.status = target
            return
        if kind == "join":
            join = route.joins[target]
            move.joined = {"join": target, "branch": branch, "result": result or "approved"}
            state = self.joins.get(target, {"branches": [branch], "arrived": {}})
            if result == "rejected" and join.on_rejected != "continue":
                move.status = join.on_rejected
                return
            arrived = {**state["arrived"], branch: result}
            if set(state["branches"]) <= set(arrived):
                self._go(rules, route, facts, join.then, move, branch="", came_from="", result=None, at=at)
            return
        self._require(route, facts, target)
        back = came_from if target != came_from else self.open_stages.get(target, {}).get("back", "")
        move.opened.append(self._opening(target, branch, back, self.times(rules, target, at)))

    @staticmethod
    def _takes_part(rules: Rules, forum: str) -> bool:
        """A party's own body is asked only while its party is a member (a party that has left takes
        no part in open cases); a forum of the partnership as a whole always is."""
        found = rules.policy.forums.get(forum)
        party = found.party if found is not None else None
        return party is None or rules.membership.is_member(party)

    def _require(self, route: Route, facts: Facts, stage: str) -> None:
        for name in route.stages[stage].requires:
            cond = route.conditions[name]
            if not cond.holds(facts):
                raise RequirementNotMetError(
                    f"{self.reference} cannot go to {stage} yet: {cond.explain or f'{name} does not hold'}"
                )

    def _record_move(
        self,
        *,
        stage: str,
        forum: str,
        outcome: str,
        effective: str,
        stage_outcome: str | None,
        minutes_ref: str,
        note: str,
        move: Move,
        actor: Actor,
        command_id: str,
        at: datetime,
        meeting: dict[str, Any] | None = None,
        key_decision: dict[str, Any] | None = None,
        held: dict[str, Any] | None = None,
    ) -> None:
        closed = list(self.open_stages) if move.status != OPEN else move.closed
        opened = [] if move.status != OPEN else move.opened
        awaiting = [s for s in self.open_stages if s not in closed] + [o["stage"] for o in opened]
        deadlines = [e["deadline"] for s, e in self.open_stages.items() if s not in closed and e["deadline"]]
        deadlines += [_instant(o["deadline"]) for o in opened if o["deadline"]]
        self._decide(
            stage=stage,
            forum=forum,
            outcome=outcome,
            effective_outcome=effective,
            stage_outcome=stage_outcome,
            minutes_ref=minutes_ref.strip(),
            note=note.strip(),
            opened=opened,
            closed=closed,
            forked=move.forked if move.status == OPEN else None,
            joined=move.joined,
            status=move.status,
            awaiting=awaiting,
            next_deadline=_iso(min(deadlines)) if deadlines and move.status == OPEN else None,
            meeting=meeting,
            key_decision=key_decision,
            held=held,
            **self._who(actor, command_id, at),
        )

    class Decided(Case.Event):
        """A decision and what it did to the case. Version 1 (one stage at a time: `next_stage`,
        `deadline`, `reminder_at`) is upcast to this shape; its hash stays over what was stored.
        Version 3 adds `meeting`: the meeting and agenda item it was taken at, or that it was taken by
        written procedure (None: neither said, as every decision before version 3); and
        `key_decision`: for a key decision, the footing it was taken on (forward plan, general
        exception, special urgency); and `held`: a decision subject to call-in, published as a notice
        and held until the call-in period ends (`until`), its move recorded then (`DecisionTookEffect`)."""

        class_version = 3
        stage: str
        forum: str
        outcome: str
        effective_outcome: str
        stage_outcome: str | None
        minutes_ref: str
        note: str
        opened: list[dict[str, Any]]
        closed: list[str]
        forked: dict[str, Any] | None
        joined: dict[str, Any] | None
        status: str
        awaiting: list[str]
        next_deadline: str | None
        actor_id: str
        actor_role: str
        command_id: str
        at: datetime
        meeting: dict[str, Any] | None
        key_decision: dict[str, Any] | None
        held: dict[str, Any] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_adding(state, **decided_v1_as_v2(state))

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            upcast_adding(state, meeting=None, key_decision=None, held=None)

    @event(Decided)
    def _decide(
        self,
        *,
        stage: str,
        forum: str,
        outcome: str,
        effective_outcome: str,
        stage_outcome: str | None,
        minutes_ref: str,
        note: str,
        opened: list[dict[str, Any]],
        closed: list[str],
        forked: dict[str, Any] | None,
        joined: dict[str, Any] | None,
        status: str,
        awaiting: list[str],
        next_deadline: str | None,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
        meeting: dict[str, Any] | None = None,
        key_decision: dict[str, Any] | None = None,
        held: dict[str, Any] | None = None,
    ) -> None:
        fields = dict(locals())  # the event's fields, as recorded
        self._apply_decision(fields)
        self._done(command_id)

    def _apply_decision(self, d: dict[str, Any]) -> None:
        """What a decision does to the case, from its recorded fields (today's `Decided`, or an earlier
        release's after `decided_v1_as_v2`)."""
        stage = d["stage"]
        _remember_decision(self.__dict__, decision_entry(d))
        key = f"{stage}:{d['effective_outcome']}"
        self.counts[key] = self.counts.get(key, 0) + 1
        if d.get("held") and stage in self.open_stages:
            self.open_stages[stage]["held"] = dict(d["held"])
        self._apply_move(d)

    def _apply_move(self, d: dict[str, Any]) -> None:
        """The stages a decision (or a held decision taking effect) closed and opened, its joins, and
        the status after."""
        status = d["status"]
        for closed in d["closed"]:
            self.open_stages.pop(closed, None)
        joined, forked = d["joined"], d["forked"]
        if joined:
            state = self.joins.setdefault(joined["join"], {"branches": [joined["branch"]], "arrived": {}})
            state["arrived"][joined["branch"]] = joined["result"]
        if forked:
            self.joins[forked["join"]] = {"branches": list(forked["branches"]), "arrived": {}}
        for o in d["opened"]:
            self._open(o)
        self.status = status
        if status != OPEN:
            self.open_stages.clear()

    # --- decision notices and call-in (`[call_in]`) -------------------------------------------

    @staticmethod
    def _scrutiny_of(rules: Rules, forum: str) -> str:
        call_in = rules.policy.call_in
        assert call_in is not None  # a held decision was held under call-in rules
        return call_in.scrutiny[forum]

    def _call_in_period(self, rules: Rules, forum: str, outcome: str, at: datetime) -> dict[str, Any] | None:
        """A decision of a body subject to call-in is published as a notice today and held until close
        of business on the last of the clear working days after it; None for any other."""
        call_in = rules.policy.call_in
        if call_in is None or forum not in call_in.forums:
            return None
        notice_on = rules.calendar.local_date(at)
        last = rules.calendar.end_of_clear_working_days(notice_on, call_in.clear_working_days)
        return {
            "forum": forum,
            "outcome": outcome,
            "notice_on": notice_on.isoformat(),
            "until": rules.calendar.close_of_business_on(last).isoformat(),
            "scrutiny": call_in.scrutiny[forum],
            "called_in": None,
        }

    def _call_in_action(self, rules: Rules, stage: str, entry: dict[str, Any]) -> CaseAction:
        held = entry["held"]
        scrutiny_role = rules.policy.decider_of(held["scrutiny"])
        if held.get("called_in"):
            return CaseAction("decide", [scrutiny_role], stage=stage, outcomes=list(SCRUTINY_OUTCOMES))
        return CaseAction("call_in", [scrutiny_role], stage=stage)

    def call_in(self, rules: Rules, *, actor: Actor, command: CallIn, command_id: str, at: datetime, **_: Any) -> None:
        """Scrutiny calls in a held decision before its call-in period ends: the decision does not take
        effect, and the body's scrutiny forum decides whether to refer it back or let it stand."""
        self._check_open()
        entry = self.open_stages.get(command.stage)
        held = entry.get("held") if entry is not None else None
        if held is None:
            raise WrongStageError(f"{self.reference} has no decision at {command.stage} awaiting its call-in period")
        role = rules.policy.decider_of(held["scrutiny"])
        if actor.role != role:
            raise NotAllowedError(f"role {actor.role} may not call in {self.reference}; {role} records a call-in")
        if held.get("called_in"):
            raise InvalidInputError(f"{self.reference}'s decision at {command.stage} is already called in")
        until = _instant(held["until"])
        assert until is not None
        if at >= until:
            raise DeadlineNotReachedError(
                f"the call-in period of {self.reference}'s decision at {command.stage} ended at {until.isoformat()}"
            )
        needed = rules.policy.call_in.members_needed if rules.policy.call_in else 1
        members = list(dict.fromkeys(command.members))
        if len(members) < needed:
            raise InvalidInputError(f"a call-in needs {needed} scrutiny members; named: {', '.join(members) or 'none'}")
        if not command.reason.strip():
            raise InvalidInputError("a call-in says why (--reason)")
        self._call_in(
            stage=command.stage,
            members=members,
            reason=command.reason.strip(),
            scrutiny=held["scrutiny"],
            **self._who(actor, command_id, at),
        )

    @event("CalledIn")
    def _call_in(
        self,
        *,
        stage: str,
        members: list[str],
        reason: str,
        scrutiny: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        held = self.open_stages[stage]["held"]
        held["called_in"] = {"members": list(members), "reason": reason, "at": at.isoformat()}
        self._done(command_id)

    def _scrutiny_decides(
        self,
        rules: Rules,
        stage: str,
        entry: dict[str, Any],
        *,
        actor: Actor,
        command: Decide,
        command_id: str,
        at: datetime,
    ) -> None:
        held = entry["held"]
        role = rules.policy.decider_of(held["scrutiny"])
        if not held.get("called_in") or actor.role != role:
            raise WrongStageError(
                f"{self.reference}'s decision at {stage} ({held['outcome']}) is published and takes effect when its "
                f"call-in period ends at {held['until']}, unless it is called in"
            )
        if command.outcome not in SCRUTINY_OUTCOMES:
            raise OutcomeNotAllowedError(
                f"outcome {command.outcome!r} is not allowed for a call-in; allowed: {', '.join(SCRUTINY_OUTCOMES)}"
            )
        if command.outcome == "let_stand":
            self._held_takes_effect(
                rules, stage, how="let_stand", actor=actor, command_id=command_id, at=at, note=command.note
            )
            return
        times = self.times(rules, stage, at)
        self._refer_back(
            stage=stage,
            forum=held["forum"],
            note=command.note.strip(),
            deadline=_iso(times.deadline),
            reminder_at=_iso(times.reminder_at),
            **self._who(actor, command_id, at),
        )

    @event("ReferredBack")
    def _refer_back(
        self,
        *,
        stage: str,
        forum: str,
        note: str,
        deadline: str | None,
        reminder_at: str | None,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        entry = self.open_stages[stage]
        entry.pop("held", None)
        self.stage_seq += 1
        entry.update(
            seq=self.stage_seq,
            deadline=_instant(deadline),
            reminder_at=_instant(reminder_at),
            reminder_sent=False,
            missed=False,
            escalated_to=None,
        )
        self._done(command_id)

    def _held_takes_effect(
        self, rules: Rules, stage: str, *, how: str, actor: Actor, command_id: str, at: datetime, note: str = ""
    ) -> None:
        """A held decision takes effect: its move, worked out now (the joins as they stand now)."""
        held = self.open_stages[stage]["held"]
        route, facts = self.route(rules), self.facts()
        move = self._move(rules, route, facts, stage, held["outcome"], at)
        closed = list(self.open_stages) if move.status != OPEN else move.closed
        opened = [] if move.status != OPEN else move.opened
        awaiting = [s for s in self.open_stages if s not in closed] + [o["stage"] for o in opened]
        self._held_took_effect(
            stage=stage,
            outcome=held["outcome"],
            how=how,
            note=note.strip(),
            opened=opened,
            closed=closed,
            forked=move.forked if move.status == OPEN else None,
            joined=move.joined,
            status=move.status,
            awaiting=awaiting,
            **self._who(actor, command_id, at),
        )

    @event("DecisionTookEffect")
    def _held_took_effect(
        self,
        *,
        stage: str,
        outcome: str,
        how: str,
        note: str,
        opened: list[dict[str, Any]],
        closed: list[str],
        forked: dict[str, Any] | None,
        joined: dict[str, Any] | None,
        status: str,
        awaiting: list[str],
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self._apply_move({"closed": closed, "opened": opened, "joined": joined, "forked": forked, "status": status})
        self._done(command_id)

    def withdraw(
        self, rules: Rules, *, actor: Actor, command: Withdraw, command_id: str, at: datetime, **_: Any
    ) -> None:
        self._check_open()
        allowed = self.route(rules).withdrawn_by
        if actor.role not in allowed:
            raise NotAllowedError(
                f"role {actor.role} may not withdraw {self.reference}; allowed: " + (", ".join(allowed) or "nobody")
            )
        self._withdraw(note=command.note.strip(), from_stage=self.stage, **self._who(actor, command_id, at))

    class Withdrawn(Case.Event):
        """Version 2 records the stages the case was withdrawn from; version 1 loads with it empty."""

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
    def _withdraw(
        self, *, note: str, from_stage: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self._apply_withdrawal()
        self._done(command_id)

    def _apply_withdrawal(self) -> None:
        self.status = WITHDRAWN
        self.open_stages.clear()

    def fire(self, rules: Rules, *, timer: str, command_id: str, at: datetime, **_: Any) -> None:
        """A reminder before an open stage's deadline, or what its missed deadline brings."""
        self._check_open()
        due = {t.name: t.at for t in self.timers()}
        if timer not in due:
            raise DeadlineNotReachedError(f"{self.reference} has no timer {timer!r} pending")
        if at < due[timer]:
            raise DeadlineNotReachedError(f"{timer} for {self.reference} is due at {due[timer].isoformat()}")
        seq = int(timer.partition(":")[2])
        stage, entry = next((s, e) for s, e in self.open_stages.items() if e["seq"] == seq)
        if timer.startswith("callin:"):
            self._held_takes_effect(
                rules, stage, how="call_in_period_ended", actor=SYSTEM_ACTOR, command_id=command_id, at=at
            )
            return
        policy, route = rules.policy, self.route(rules)
        forum = entry["escalated_to"] or route.stages[stage].forum
        who = self._who(SYSTEM_ACTOR, command_id, at)
        if timer.startswith("remind:"):
            self._remind(
                stage=stage, forum=forum, recipient_role=policy.decider_of(forum), deadline=entry["deadline"], **who
            )
        elif not entry["escalated_to"] and route.stages[stage].escalates and route.escalation is not None:
            esc = route.escalation
            times = stage_times(rules, esc.deadline, at, route.reminder_working_days)
            others = [e["deadline"] for s, e in self.open_stages.items() if s != stage and e["deadline"]]
            self._escalate(
                stage=stage,
                missed_deadline=entry["deadline"],
                to_forum=esc.forum,
                deadline=_iso(times.deadline),
                reminder_at=_iso(times.reminder_at),
                next_deadline=_iso(min([times.deadline, *others])),
                **who,
            )
        else:
            self._miss_deadline(stage=stage, forum=forum, missed_deadline=entry["deadline"], **who)

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
        if stage in self.open_stages:
            self.open_stages[stage]["reminder_sent"] = True
        self._done(command_id)

    class Escalated(Case.Event):
        """Version 2 gives the escalation forum its own deadline; version 1 (none) loads with none."""

        class_version = 2
        stage: str
        missed_deadline: datetime | None
        to_forum: str
        deadline: str | None
        reminder_at: str | None
        next_deadline: str | None
        actor_id: str
        actor_role: str
        command_id: str
        at: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_adding(state, deadline=None, reminder_at=None, next_deadline=None)

    @event(Escalated)
    def _escalate(
        self,
        *,
        stage: str,
        missed_deadline: datetime | None,
        to_forum: str,
        deadline: str | None,
        reminder_at: str | None,
        next_deadline: str | None,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self._apply_escalation(stage, to_forum, deadline, reminder_at)
        self._done(command_id)

    def _apply_escalation(
        self, stage: str, to_forum: str, deadline: str | datetime | None, reminder_at: str | datetime | None
    ) -> None:
        entry = self.open_stages.get(stage)
        if entry is None:
            return
        self.stage_seq += 1
        entry.update(
            seq=self.stage_seq,
            escalated_to=to_forum,
            deadline=_instant(deadline),
            reminder_at=_instant(reminder_at),
            reminder_sent=False,
            missed=deadline is None,
        )

    @event("DeadlineMissed")
    def _miss_deadline(
        self,
        *,
        stage: str,
        forum: str,
        missed_deadline: datetime | None,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        if stage in self.open_stages:
            self.open_stages[stage]["missed"] = True
        self._done(command_id)

    # --- internals ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.status != OPEN:
            raise CaseClosedError(closed_text(self.reference, self.status, self.last_decision_text()))

    def _open(self, opening: dict[str, Any]) -> None:
        self.stage_seq += 1
        stage = opening["stage"]
        back = opening.get("back")
        if back is None:  # recorded one stage at a time (v1): a stage seen before keeps its way back
            back = self.backs[stage] if stage in self.backs else opening.get("from", "")
        self.backs[stage] = back
        self.open_stages[stage] = {
            "branch": opening.get("branch", ""),
            "back": back,
            "seq": self.stage_seq,
            "deadline": _instant(opening["deadline"]),
            "reminder_at": _instant(opening.get("reminder_at")),
            "reminder_sent": False,
            "escalated_to": None,
            "missed": False,
        }


def decision_entry(d: dict[str, Any]) -> dict[str, Any]:
    """A decision as the case's history shows it, from its recorded fields (`Decided`'s, or an
    earlier release's after `decided_v1_as_v2`)."""
    actor_id, actor_role = d["actor_id"], d["actor_role"]
    at = d["at"]
    return {
        "stage": d["stage"],
        "forum": d["forum"],
        "outcome": d["outcome"],
        "stage_outcome": d.get("stage_outcome"),
        "minutes_ref": d["minutes_ref"],
        "note": d["note"],
        "by": f"{actor_role}:{actor_id}",
        "actor_id": actor_id,
        "actor_role": actor_role,
        "at": at.isoformat() if isinstance(at, datetime) else str(at),
        **({"meeting": dict(m)} if (m := d.get("meeting")) else {}),
        **({"key_decision": dict(k)} if (k := d.get("key_decision")) else {}),
    }


def _remember_decision(state: dict[str, Any], d: dict[str, Any]) -> None:
    """What the rules need of a decision (`d`, as `decision_entry` makes it), kept in the case's state
    (`state`: the aggregate's, or a snapshot's being upcast) in place of the whole history:
    - `decisions_made` and `latest_decision`: the answer to a person beaten to it, and the decision
      a command just made (`FundingChange.decide`);
    - `stages_decided`: the stages decided, in the order first decided (the route's plan);
    - `first_deciders`: the first decision of each person at each stage and forum (with and without
      a stage outcome: separation of duties counts an escalation forum's decision in a stage's place,
      not its `extend` or `send_back`). `check_decision` reports the first decision that refuses a
      person, which is the first of its (person, stage, forum), so keeping only the firsts keeps its
      answers and its words."""
    state["decisions_made"] = state.get("decisions_made", 0) + 1
    state["latest_decision"] = d
    stages = state.setdefault("stages_decided", [])
    if d["stage"] not in stages:
        stages.append(d["stage"])
    firsts = state.setdefault("first_deciders", [])
    role, _, person = str(d.get("by", "")).rpartition(":")
    first = {
        "stage": d.get("stage", ""),
        "forum": d.get("forum", ""),
        "actor_id": d.get("actor_id", person),
        "actor_role": d.get("actor_role", role),
        "at": d.get("at", ""),
        "stage_outcome": bool(d.get("stage_outcome")),
    }
    key = ("stage", "forum", "actor_id", "stage_outcome")
    if not any(all(f[k] == first[k] for k in key) for f in firsts):
        firsts.append(first)


def compact_decisions(state: dict[str, Any]) -> None:
    """For a snapshot's upcaster: the rules' part of the decisions (`_remember_decision`) built from
    the history an earlier release kept whole in the state."""
    state["decisions_made"] = 0
    state["latest_decision"] = None
    state["stages_decided"] = []
    state["first_deciders"] = []
    for d in state.pop("decisions", []):
        _remember_decision(state, d)


def decided_v1_as_v2(state: dict[str, Any]) -> dict[str, Any]:
    """The fields a version-1 decision (one stage at a time) lacks, derived from what it recorded."""
    stage, nxt = state["stage"], state.get("next_stage") or ""
    is_open = state.get("status") == OPEN and state.get("deadline") is not None
    opened = (
        [
            {
                "stage": nxt,
                "branch": "",
                "back": None,
                "from": stage,
                "deadline": _iso(_instant(state.get("deadline"))),
                "reminder_at": _iso(_instant(state.get("reminder_at"))),
            }
        ]
        if is_open
        else []
    )
    effective = state.get("stage_outcome") or state["outcome"]
    return {
        "effective_outcome": effective,
        "stage_outcome": state.get("stage_outcome"),
        "opened": opened,
        "closed": [stage],
        "forked": None,
        "joined": None,
        "awaiting": [nxt] if is_open else [],
        "next_deadline": opened[0]["deadline"] if opened else None,
    }
