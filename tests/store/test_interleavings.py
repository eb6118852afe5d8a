"""Random interleavings of commands from two application instances on one store (two workers),
including retries of commands already applied and decisions taken on a state the other worker has
since changed: after every step, nothing is lost and nothing is doubled (hypothesis stateful)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.case import case_id
from domain.errors import ConcordatError
from tests.domain.support import MINUTES, escalate, person_for

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
LEAD, AUDREY = Actor.parse("jcu_lead:jo"), Actor.parse("auditor:audrey")


class TwoWorkers(RuleBasedStateMachine):
    cases = Bundle("cases")
    applied = Bundle("applied")

    @initialize()
    def open_store(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        store = Settings(data_dir=Path(self.tmp.name), database_url="", snapshot_interval=3)
        self.apps = [bootstrap.open_cases(store), bootstrap.open_cases(store)]
        self.expected: dict[str, int] = {}  # the model: how many events each case must hold
        self.n = 0

    def teardown(self) -> None:
        self.tmp.cleanup()

    def _cid(self) -> str:
        self.n += 1
        return f"c{self.n}"

    @rule(target=cases, worker=st.integers(0, 1))
    def start(self, worker: int) -> str:
        ref = (
            self.apps[worker]
            .start_proposal(
                actor=LEAD,
                command_id=self._cid(),
                title="t",
                kind="pathway_change",
                value_pence=40_000_000,
                parties=["PCC", "CPCCG"],
                public_health=False,
                at=T0,
            )
            .reference
        )
        self.expected[ref] = 1
        return ref

    @rule(target=applied, ref=cases, worker=st.integers(0, 1), pick=st.integers(0, 5))
    def decide(self, ref: str, worker: int, pick: int) -> tuple:
        app = self.apps[worker]
        state = app.state(ref)
        if not decisions(state):
            return (ref, "", {})
        kwargs = self._decision(state, pick)
        app.decide(ref, **kwargs)
        self.expected[ref] += 1
        return (ref, "decide", kwargs)

    def _decision(self, state: object, pick: int) -> dict:
        """A decision the case allows now: the `pick`th outcome of whoever acts."""
        action = decisions(state)[0]
        outcome = action.outcomes[pick % len(action.outcomes)]
        extra = {"stage_outcome": action.stage_outcomes[0]} if outcome == "decide" else {}
        return {
            "actor": Actor(id=person_for(action.roles[0]), role=action.roles[0]),  # one person per stage
            "stage": action.stage,
            "outcome": outcome,
            "minutes_ref": MINUTES,
            "command_id": self._cid(),
            "at": T0 + timedelta(days=self.n),
            **extra,
        }

    @rule(ref=cases, worker=st.integers(0, 1))
    def escalate_if_due(self, ref: str, worker: int) -> None:
        app = self.apps[worker]
        state = app.state(ref)
        if not [t for t in state.timers if t.name.startswith("escalate:")]:
            return
        escalate(app, ref, command_id=self._cid(), at=state.deadline)
        self.expected[ref] += 1

    @rule(earlier=applied, worker=st.integers(0, 1))
    def retry_an_applied_command(self, earlier: tuple, worker: int) -> None:
        ref, kind, kwargs = earlier
        if not kind:
            return
        before = self.apps[worker].state(ref)
        try:
            self.apps[worker].decide(ref, **kwargs)  # the same command id: a retry after a crash
        except ConcordatError:
            raise AssertionError("a retried command was refused instead of answered") from None
        assert self.apps[worker].state(ref).version == before.version

    @rule(ref=cases)
    def stale_copy_loses_to_the_store(self, ref: str) -> None:
        """Both workers read the case; worker 0 commits first; worker 1's command runs on what was recorded."""
        state = self.apps[1].state(ref)
        if not decisions(state):
            return
        self.apps[0].decide(ref, **self._decision(state, 0))
        self.expected[ref] += 1
        try:
            self.apps[1].decide(ref, **self._decision(state, 0))
        except ConcordatError:
            return  # refused against what was actually recorded: nothing lost, nothing doubled
        self.expected[ref] += 1

    @invariant()
    def nothing_lost_nothing_doubled(self) -> None:
        if not hasattr(self, "apps"):
            return
        for ref, count in self.expected.items():
            events = list(self.apps[0].events.get(case_id(ref)))
            assert [e.originator_version for e in events] == list(range(1, count + 1))
            ids = [e.command_id for e in events]
            assert len(ids) == len(set(ids)), "a command was applied twice"
            assert self.apps[1].state(ref) == self.apps[0].state(ref)


def decisions(state: object) -> list:
    """The decisions the case offers now, with an outcome to give (`state` is a CaseView)."""
    return [a for a in state.actions if a.name == "decide" and a.outcomes]  # type: ignore[attr-defined]


TestTwoWorkers = TwoWorkers.TestCase
TestTwoWorkers.settings = settings(
    max_examples=25, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
