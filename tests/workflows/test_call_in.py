"""Call-in under CaseWorkflow on Temporal's time-skipping test server, with the real worker and a
SQLite store: a council body's decision is held for its call-in period by a durable timer and takes
effect when the period ends; a call-in within it stops the timer and hands the case to scrutiny."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from concordat import bootstrap
from concordat.settings import Settings
from tests.domain.test_call_in import call_in_policy
from tests.workflows.test_case_workflow import DAN, PAT, SAM, Running, decision
from workflows.case import CaseWorkflow
from workflows.contracts import ActInput, ActorRef

PIA = ActorRef(id="pia", role="secretary:pcc_decision")
SUE = ActorRef(id="sue", role="secretary:pcc_scrutiny")


@pytest.fixture
async def running(time_skipping_env: WorkflowEnvironment, sqlite_settings: Settings) -> AsyncIterator[Running]:
    app = bootstrap.open_cases(sqlite_settings, call_in_policy())
    task_queue = f"tq-{uuid.uuid4()}"
    parts = bootstrap.build_worker(time_skipping_env.client, app, task_queue, command_key=bytes(range(32)))
    async with parts.worker:
        yield Running(time_skipping_env, app, task_queue)
    parts.executor.shutdown()


async def decided_by_pcc(running: Running):  # noqa: ANN201
    handle = await running.start(parties=["PCC"], value_pence=30_000_000, kind="service_commissioning")
    for actor, stage, outcome in [
        (DAN, "jcu", "refer"),
        (SAM, "board", "recommend"),
        (PAT, "programme_board", "recommend"),
        (PIA, "pcc_decision", "approve"),
    ]:
        state = await running.send(handle, decision(actor, stage, outcome))
    return handle, state


async def test_the_decision_takes_effect_when_the_call_in_period_passes(running: Running) -> None:
    handle, state = await decided_by_pcc(running)
    assert state.status == "open"
    until = next(t.at for t in state.timers if t.name.startswith("callin:"))
    decided_on = (await running.env.get_current_time()).astimezone(UTC)
    assert until - decided_on >= timedelta(days=6)  # five clear working days, and the weekend between
    await running.env.sleep(until - await running.env.get_current_time() + timedelta(minutes=1))
    result = await handle.result()
    assert result.status == "approved"
    assert running.events(handle.id)[-2:] == ["Decided", "DecisionTookEffect"]


async def test_a_call_in_stops_the_clock_and_scrutiny_refers_the_decision_back(running: Running) -> None:
    handle, state = await decided_by_pcc(running)
    until = next(t.at for t in state.timers if t.name.startswith("callin:"))
    called = await running.send(
        handle,
        ActInput(
            actor=SUE,
            action="call_in",
            fields={"stage": "pcc_decision", "members": ["cllr_a", "cllr_b"], "reason": "no consultation"},
        ),
    )
    assert not [t for t in called.timers if t.name.startswith("callin:")]
    # Well past the period: nothing takes effect while scrutiny has it.
    await running.env.sleep(until - await running.env.get_current_time() + timedelta(days=2))
    now = await handle.query(CaseWorkflow.state)
    assert (now.status, now.stage) == ("open", "pcc_decision")
    back = await running.send(handle, decision(SUE, "pcc_decision", "refer_back"))
    assert [a.roles for a in back.actions if a.stage == "pcc_decision"] == [["secretary:pcc_decision"]]
    assert running.events(handle.id)[-2:] == ["CalledIn", "ReferredBack"]
