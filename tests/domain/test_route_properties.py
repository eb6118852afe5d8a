"""Properties of routes as data, over generated routes and any sequence of commands (hypothesis).

A route is generated — a line of stages, then perhaps a fork into parallel branches (each opened only
where its party is on the case) that meet at a join, with or without an escalation forum — and a
proposal is driven through it by any sequence of decisions (any role, any stage, any outcome),
withdrawals and timer firings. After every step:
- a refused command changed nothing and stored nothing;
- an accepted decision was given by the role the route names for that stage (or, at an escalated
  stage, by the escalation forum's, with an outcome the escalation may give);
- a case that has ended is in one of its route's ends (or withdrawn);
- a join completes exactly when every branch opened at its fork has arrived;
- the case rebuilt from the stored events equals the case before it was saved.

And with separation of duties on (as the shipped policy has it), whoever gives the decisions: no
person decides at two stages of a case, the person who started it decides none, and a decision is
refused on those grounds only when they apply.
"""

from __future__ import annotations

import copy
import tomllib
from datetime import timedelta
from importlib import resources
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from domain.actor import Actor
from domain.application import CaseService
from domain.case import Rules
from domain.errors import ConcordatError
from domain.policy import Policy
from domain.proposal import Proposal
from domain.separation import SeparationOfDutiesError
from domain.staged import OPEN, Decide, Withdraw
from tests.domain.support import LEAD, T0, person_for

BASE = tomllib.loads(resources.files("domain").joinpath("governance.toml").read_text("utf-8"))
PARTIES = ["PCC", "CCC", "CPCCG"]


@st.composite
def routes(draw: st.DrawFn) -> dict[str, Any]:
    """A route: a line of 1-3 stages, then (perhaps) a fork of 2-3 branches of 1-2 stages each."""
    line = [f"s{i}" for i in range(draw(st.integers(1, 3)))]
    fork = draw(st.booleans())
    branches = (
        [[f"b{i}_{j}" for j in range(draw(st.integers(1, 2)))] for i in range(draw(st.integers(2, 3)))] if fork else []
    )
    stages: dict[str, Any] = {}
    for i, name in enumerate(line):
        last = i == len(line) - 1
        nxt: Any = line[i + 1] if not last else ([b[0] for b in branches] if fork else "approved")
        outcomes: dict[str, Any] = {"go": {"to": nxt}, "stop": {"to": "rejected"}}
        if draw(st.booleans()):
            outcomes["wait"] = {"stays": True, "times": 1}
        stages[name] = {
            "forum": f"f_{name}",
            "deadline": {"working_days": draw(st.integers(1, 15))},
            "outcomes": outcomes,
            "escalates": draw(st.booleans()),
        }
    for i, branch in enumerate(branches):
        for j, name in enumerate(branch):
            nxt = branch[j + 1] if j + 1 < len(branch) else "join"
            approve = {"to": nxt} if nxt != "join" else {"to": "join", "result": "approved"}
            stages[name] = {
                "forum": f"f_{name}",
                "deadline": {"working_days": draw(st.integers(1, 15))},
                "outcomes": {"approve": approve, "refuse": {"to": "join", "result": "rejected"}},
            }
            if j == 0:
                stages[name]["when"] = f"has_{PARTIES[i]}"
    route: dict[str, Any] = {
        "start": line[0],
        "started_by": ["jcu_lead"],
        "withdrawn_by": ["jcu_lead"],
        "reminder_working_days": 2,
        "ends": {"approved": "", "rejected": "", "not_agreed": ""},
        "stages": stages,
        "conditions": {f"has_{p}": {"party": p} for p in PARTIES},
    }
    if fork:
        route["joins"] = {
            "join": {"then": "approved", "on_rejected": draw(st.sampled_from(["not_agreed", "continue"]))}
        }
    if draw(st.booleans()):
        route["escalation"] = {
            "forum": "esc",
            "deadline": {"working_days": 5},
            "may": draw(st.lists(st.sampled_from(["extend", "send_back", "decide"]), min_size=1, unique=True)),
            "decides_in_place": draw(st.lists(st.sampled_from(line), unique=True)),
        }
    return route


def policy_with(route: dict[str, Any]) -> Policy:
    data = copy.deepcopy(BASE)
    data["routes"]["proposal"] = route
    for name in [*route["stages"], *(["esc"] if "escalation" in route else [])]:
        forum = name if name == "esc" else f"f_{name}"
        data["forums"][forum] = {"name": forum, "decided_by": f"secretary:{forum}"}
    policy = Policy.model_validate(data)
    assert policy.problems() == [], policy.problems()
    return policy


def state_of(p: Proposal) -> dict[str, Any]:
    return {k: v for k, v in p.__dict__.items() if not k.startswith("_")}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=routes(), parties=st.lists(st.sampled_from(PARTIES), min_size=1, max_size=3, unique=True), data=st.data())
def test_any_command_sequence_on_any_route_keeps_the_routes_promises(
    route: dict[str, Any], parties: list[str], data: st.DataObject
) -> None:
    policy = policy_with(route)
    rules = Rules.from_policy(policy)
    r = policy.routes["proposal"]
    roles = [f"secretary:f_{s}" for s in r.stages] + ["secretary:esc", "jcu_lead"]
    names = [*{o for s in r.stages.values() for o in s.outcomes}, "extend", "send_back", "decide"]
    app = CaseService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ":memory:"}, policy=policy)
    p = Proposal.start(
        rules,
        reference="PRO-2026-0001",
        title="t",
        kind="procurement",
        value_pence=1,
        parties=parties,
        public_health=False,
        actor=LEAD,
        command_id="c0",
        at=T0,
    )
    app.save(p)
    at = T0
    for n in range(data.draw(st.integers(0, 30))):
        at += timedelta(days=data.draw(st.integers(0, 20)))
        cid = f"c{n + 1}"
        kind = data.draw(st.sampled_from(["decide", "decide", "decide", "fire", "withdraw"]))
        before, stored = copy.deepcopy(state_of(p)), app.max_notification_id()
        open_before = copy.deepcopy(p.open_stages)
        try:
            if kind == "decide":
                offered = [a for a in p.actions(rules) if a.name == "decide" and a.outcomes]
                if offered and data.draw(st.integers(0, 9)) < 7:  # mostly what the case offers, to get far
                    action = data.draw(st.sampled_from(offered))
                    role, stage = action.roles[0], action.stage
                    outcome = data.draw(st.sampled_from(action.outcomes))
                    stage_outcome = (
                        data.draw(st.sampled_from(action.stage_outcomes))
                        if outcome == "decide" and action.stage_outcomes
                        else None
                    )
                else:  # anything at all
                    role = data.draw(st.sampled_from(roles))
                    stage = data.draw(st.sampled_from(list(r.stages)))
                    outcome = data.draw(st.sampled_from(names))
                    stage_outcome = data.draw(st.none() | st.sampled_from(names)) if outcome == "decide" else None
                p.decide(
                    rules,
                    actor=Actor(id=person_for(role), role=role),
                    command=Decide(stage=stage, outcome=outcome, stage_outcome=stage_outcome),
                    command_id=cid,
                    at=at,
                )
            elif kind == "fire":
                pending = sorted(t.name for t in p.timers())
                if not pending:
                    continue
                p.fire(rules, timer=data.draw(st.sampled_from(pending)), command_id=cid, at=at)
            else:
                p.withdraw(rules, actor=LEAD, command=Withdraw(), command_id=cid, at=at)
        except ConcordatError:
            assert state_of(p) == before, "a refused command changed the case"
            assert p.collect_events() == [], "a refused command left an event to store"
            continue
        app.save(p)
        assert app.max_notification_id() > stored
        # Only the role the route names acted.
        if kind == "decide":
            entry = open_before[stage]
            decider = f"secretary:f_{stage}"
            if role != decider:
                assert entry["escalated_to"] == "esc" and role == "secretary:esc"
                assert r.escalation is not None and outcome in r.escalation.may
        # A case ends only in one of its route's ends.
        assert p.status == OPEN or p.status in r.ends or p.status == "withdrawn"
        assert (p.status == OPEN) == bool(p.open_stages)
        # A join completes exactly when all its branches have arrived.
        for state in p.joins.values():
            every = set(state["branches"]) <= set(state["arrived"])
            any_refused = "rejected" in state["arrived"].values()
            if p.status == "approved":
                assert every and (r.joins["join"].on_rejected == "continue" or not any_refused)
            if p.status == OPEN:
                assert not every, "every branch arrived but the case did not move on"
                assert not set(state["branches"]) & set(p.open_stages) - set(state["branches"])
        # The state rebuilt from the events equals the state before saving.
        rebuilt = app.repository.get(p.id)
        assert state_of(rebuilt) == state_of(p)
        assert len(set(p.command_versions)) == p.version


PEOPLE = ["ann", "bob", "cy", "dee", "eve", LEAD.id]  # jo (LEAD) starts every case


def places(made: list[Any], r: Any) -> dict[str, set[tuple[str, str]]]:
    """Each person's decisions as (stage, forum), from the case's events (`made`): a stage's own, or
    the escalation forum's in its place (its extend and send_back decide the clock, not the case)."""
    found: dict[str, set[tuple[str, str]]] = {}
    for d in Proposal.decision_history(made):
        if d["forum"] != r.stages[d["stage"]].forum and not d["stage_outcome"]:
            continue
        found.setdefault(d["actor_id"], set()).add((d["stage"], d["forum"]))
    return found


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=routes(), parties=st.lists(st.sampled_from(PARTIES), min_size=1, max_size=3, unique=True), data=st.data())
def test_with_separation_of_duties_no_person_decides_at_two_stages_nor_what_they_started(
    route: dict[str, Any], parties: list[str], data: st.DataObject
) -> None:
    """Any people deciding in any order, with escalations: no one decides at two stages (or for two
    forums), the starter decides nothing, and a person is refused only when the rule says so."""
    policy = policy_with(route)
    assert policy.separation.one_stage_per_person.applies and policy.separation.no_self_approval.applies
    rules = Rules.from_policy(policy)
    r = policy.routes["proposal"]
    p = Proposal.start(
        rules,
        reference="PRO-2026-0001",
        title="t",
        kind="procurement",
        value_pence=1,
        parties=parties,
        public_health=False,
        actor=LEAD,
        command_id="c0",
        at=T0,
    )
    made = p.collect_events()
    at = T0
    for n in range(data.draw(st.integers(0, 30))):
        at += timedelta(days=data.draw(st.integers(0, 20)))
        cid = f"c{n + 1}"
        if data.draw(st.integers(0, 3)) == 0:
            due = sorted(t.name for t in p.timers() if t.at <= at)
            if due:
                p.fire(rules, timer=data.draw(st.sampled_from(due)), command_id=cid, at=at)
                made += p.collect_events()
            continue
        offered = [a for a in p.actions(rules) if a.name == "decide" and a.outcomes]
        if not offered:
            continue
        action = data.draw(st.sampled_from(offered))
        outcome = data.draw(st.sampled_from(action.outcomes))
        stage_outcome = (
            data.draw(st.sampled_from(action.stage_outcomes)) if outcome == "decide" and action.stage_outcomes else None
        )
        person = data.draw(st.sampled_from(PEOPLE))
        before = places(made, r)
        counts = outcome not in ("extend", "send_back") or action.roles[0] == f"secretary:f_{action.stage}"
        forum = f"f_{action.stage}" if action.roles[0] == f"secretary:f_{action.stage}" else "esc"
        try:
            p.decide(
                rules,
                actor=Actor(id=person, role=action.roles[0]),
                command=Decide(stage=action.stage, outcome=outcome, stage_outcome=stage_outcome),
                command_id=cid,
                at=at,
            )
        except SeparationOfDutiesError:
            assert p.collect_events() == [], "a refused decision left an event to store"
            # Refused only when the rule says so: the starter, or a person with a place elsewhere.
            assert counts
            assert person == LEAD.id or before.get(person, set()) - {(action.stage, forum)}
            event("a decision refused by separation of duties")
            continue
        except ConcordatError:
            assert p.collect_events() == []
            continue
        made += p.collect_events()
        after = places(made, r)
        assert LEAD.id not in after, "the person who started the case decided it"
        assert all(len(stages) == 1 for stages in after.values()), after
        if len(after) > 1:
            event("decisions by two people or more")
