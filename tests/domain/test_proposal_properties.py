"""Properties of the proposal over any sequence of commands (hypothesis).

For any sequence: a refused command changes nothing and stores nothing; after every accepted one,
the case rebuilt from the stored events equals the live case; and the invariants hold (an open case
has a deadline and someone who may act; a closed one has neither).
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.actor import Actor
from domain.application import CaseService
from domain.case import Rules
from domain.errors import ConcordatError
from domain.policy import Policy
from domain.proposal import OPEN, Proposal
from tests.domain.support import CAT, DAN, GUS, LEAD, PAT, PHIL, SAM, T0

POLICY = Policy.load()
RULES = Rules.from_policy(POLICY)
ACTORS = [DAN, SAM, CAT, GUS, PAT, PHIL, LEAD, Actor("audrey", "auditor")]
STAGES = ["jcu", "board", "cmet", "governing_body", "programme_board", "public_health"]
OUTCOMES = ["approve", "refer", "reject", "recommend", "defer", "recommend_approval",
            "recommend_rejection", "sign_off", "refuse", "extend", "decide", "send_back"]

command = st.one_of(
    st.tuples(st.just("decide"), st.sampled_from(ACTORS), st.sampled_from(STAGES),
              st.sampled_from(OUTCOMES), st.none() | st.sampled_from(OUTCOMES)),
    st.tuples(st.just("withdraw"), st.sampled_from(ACTORS)),
    st.tuples(st.just("remind")),
    st.tuples(st.just("escalate")),
)


def state_of(p: Proposal) -> dict[str, Any]:
    return {k: v for k, v in p.__dict__.items() if not k.startswith("_")}


def apply(p: Proposal, cmd: tuple, at, n: int) -> None:
    cid = f"c{n}"
    if cmd[0] == "decide":
        _, actor, stage, outcome, stage_outcome = cmd
        p.decide(RULES, actor=actor, stage=stage, outcome=outcome, minutes_ref="m", note="",
                 command_id=cid, at=at, stage_outcome=stage_outcome if outcome == "decide" else None)
    elif cmd[0] == "withdraw":
        p.withdraw(RULES, actor=cmd[1], note="", command_id=cid, at=at)
    elif cmd[0] == "remind":
        p.remind(RULES, command_id=cid, at=at)
    else:
        p.escalate(RULES, command_id=cid, at=at)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(POLICY.proposal.kinds),
    value=st.integers(0, 60_000_000),
    parties=st.lists(st.sampled_from(["PCC", "CCC", "CPCCG"]), min_size=1, max_size=3, unique=True),
    public_health=st.booleans(),
    steps=st.lists(st.tuples(command, st.integers(0, 40)), max_size=25),
)
def test_any_command_sequence_keeps_the_store_and_the_case_in_step(
    kind: str, value: int, parties: list[str], public_health: bool, steps: list
) -> None:
    app = CaseService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ":memory:"}, policy=POLICY)
    p = Proposal.start(RULES, reference="PRO-2026-0001", title="t", kind=kind, value_pence=value,
                       parties=parties, public_health=public_health, actor=LEAD, command_id="c0", at=T0)
    app.save(p)
    at = T0
    for n, (cmd, days) in enumerate(steps, start=1):
        at = at + timedelta(days=days)
        before, stored = copy.deepcopy(state_of(p)), app.max_notification_id()
        try:
            apply(p, cmd, at, n)
        except ConcordatError:
            assert state_of(p) == before, "a refused command changed the case"
            assert p.collect_events() == [], "a refused command left an event to store"
            assert app.max_notification_id() == stored
            continue
        app.save(p)
        rebuilt = app.repository.get(p.id)
        assert state_of(rebuilt) == state_of(p)
        # Invariants.
        assert (p.status == OPEN) == (p.deadline is not None)
        assert bool(p.allowed_actions(POLICY)) == (p.status == OPEN)
        decided = [e for e in app.events.get(p.id) if isinstance(e, Proposal.Decided)]
        assert len(decided) == len(p.decisions)
        assert len(set(p.command_versions)) == p.version
