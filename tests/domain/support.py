"""Actors, a fixed clock and short-hands for the domain tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from domain.actor import Actor
from domain.application import CaseService

# A Tuesday morning in term time, well clear of bank holidays.
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
LEAD = Actor.parse("jcu_lead:jo")
DAN = Actor.parse("lead_director:dan")
SAM = Actor.parse("secretary:board:sam")
CAT = Actor.parse("secretary:cmet:cat")
GUS = Actor.parse("secretary:governing_body:gus")
PAT = Actor.parse("secretary:programme_board:pat")
PHIL = Actor.parse("public_health:phil")
AUDREY = Actor.parse("auditor:audrey")


_ids = itertools.count(1)
# The minutes the tests' decisions name (forum decisions carry minutes: `[minutes]` in the policy).
MINUTES = "MIN-2026-01"


def cid() -> str:
    return f"cmd-{next(_ids)}"


def start(app: CaseService, **fields: object):
    values = {
        "title": "Community paediatrics pathway",
        "kind": "pathway_change",
        "value_pence": 18_000_000,
        "parties": ["PCC", "CCC", "CPCCG"],
        "public_health": False,
        **fields,
    }
    return app.start_proposal(actor=LEAD, command_id=cid(), **values)


def decide(app: CaseService, ref: str, actor: Actor, stage: str, outcome: str, **kw: object):
    """A decision, minuted (forum decisions name their minutes) unless the test says otherwise."""
    kw.setdefault("minutes_ref", MINUTES)
    return app.decide(ref, actor=actor, stage=stage, outcome=outcome, command_id=cid(), **kw)


# Secretaries of each party's own body (the councils' and the CCG's decisions, MOU Schedule 1).
PCC_SEC = Actor.parse("secretary:pcc_decision:pia")
CCC_SEC = Actor.parse("secretary:ccc_decision:cal")


def fire(app: CaseService, ref: str, prefix: str, at: datetime | None = None, command_id: str | None = None):
    """Fire the case's earliest pending timer named `prefix…` (a reminder or a deadline), at its
    instant unless `at` is given: what the workflow's clock does."""
    timers = [t for t in app.state(ref).timers if t.name.startswith(prefix)]
    timer = min(timers, key=lambda t: t.at)
    return app.fire_timer(ref, timer=timer.name, command_id=command_id or cid(), at=at or timer.at)


def escalate(app: CaseService, ref: str, at: datetime | None = None, command_id: str | None = None):
    """What the clock does at the earliest open stage's deadline: escalate it (or record the miss)."""
    return fire(app, ref, "escalate:", at, command_id)


def remind(app: CaseService, ref: str, at: datetime | None = None, command_id: str | None = None):
    return fire(app, ref, "remind:", at, command_id)


def outcomes(state, stage: str, role: str | None = None) -> list[str]:
    """The outcomes offered at `stage` (to `role`, when given)."""
    return [
        o
        for a in state.actions
        if a.name == "decide" and a.stage == stage and (role is None or role in a.roles)
        for o in a.outcomes
    ]


def deciders(state, stage: str) -> list[str]:
    return [r for a in state.actions if a.name == "decide" and a.stage == stage for r in a.roles]


YES = (
    "approve",
    "recommend_approval",
    "agree",
    "propose",
    "support",
    "sign_off",
    "recommend",
    "refer",
    "accepted",
    "completed",
)


def approve_through(app: CaseService, ref: str, at: datetime | None = None, stop_at: str | None = None):
    """Take a case along its route with a yes at every stage, as each stage's decider (a person of
    that role's own: one person decides at one stage, as separation of duties asks), until it ends
    (or reaches `stop_at`)."""
    state = app.state(ref)
    while state.status == "open":
        action = next(a for a in state.actions if a.name == "decide" and a.outcomes)
        if action.stage == stop_at:
            return state
        outcome = next(o for o in YES if o in action.outcomes)
        state = app.decide(
            ref,
            actor=Actor(id=person_for(action.roles[0]), role=action.roles[0]),
            stage=action.stage,
            outcome=outcome,
            minutes_ref=MINUTES,
            command_id=cid(),
            at=at,
        )
    return state


def person_for(role: str) -> str:
    """A person who acts in `role` only: `secretary:board` → `secretary.board`."""
    return role.replace(":", ".")


def open_agreed_fund(
    app: CaseService,
    name: str,
    *,
    contributions: dict[str, int] | None = None,
    balance: int | None = None,
    ring_fenced: bool = False,
    type: str = "pooled",
    at: datetime | None = None,
):
    """Open a fund the way the policy asks (ToR 4.2): a JCU lead proposes it, the board proposes it
    on, Public Health is consulted for a ring-fenced one, and the Programme Board agrees."""
    fields: dict[str, object] = {"name": name, "type": type, "ring_fenced": ring_fenced}
    if contributions is not None:
        fields["contributions"] = contributions
    if balance is not None:
        fields["balance_pence"] = balance
    case = app.open_fund(actor=LEAD, fields=fields, command_id=cid(), at=at)
    done = approve_through(app, case.reference, at=at)
    assert done.status == "opened", done.status
    return done
