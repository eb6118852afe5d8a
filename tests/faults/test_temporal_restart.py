"""Temporal's dev server (state in a file) restarts: open cases and their timers survive, and a
deadline that passed while it was down fires when it returns."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from temporalio.client import Client

from concordat import bootstrap
from concordat.engine import ensure_workflow
from concordat.settings import Settings
from domain.actor import Actor
from tests.faults.processes import env_for, free_port, start, temporal_dev, until_async
from tests.policies import without_council_procedure_text

LONDON = ZoneInfo("Europe/London")
AUDREY = Actor.parse("auditor:audrey")


def policy_with_a_deadline_at(tmp_path: Path, deadline: datetime) -> Path:
    """The shipped policy, but the board meets daily and business closes at `deadline`'s time: a
    case referred to the board yesterday then falls due at `deadline`, seconds from now."""
    text = without_council_procedure_text()  # the shipped text, the councils' procedure off (tests/policies.py)
    text = text.replace('close_of_business = "17:00"', f'close_of_business = "{deadline.strftime("%H:%M:%S")}"')
    text = text.replace('rule = "FREQ=MONTHLY;INTERVAL=2;BYDAY=+2TU"', 'rule = "FREQ=DAILY"')
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


async def test_a_deadline_that_passed_while_temporal_was_down_fires_when_it_returns(
    postgres_url: str, tmp_path: Path
) -> None:
    port = free_port()
    address, db_file = f"127.0.0.1:{port}", tmp_path / "temporal.sqlite"
    server = temporal_dev(tmp_path, port, db_file)
    due = (datetime.now(LONDON) + timedelta(seconds=40)).replace(microsecond=0)
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=postgres_url,
        temporal_address=address,
        task_queue=f"tq-{uuid.uuid4()}",
        policy_file=policy_with_a_deadline_at(tmp_path, due),
    )
    app = bootstrap.open_cases(settings)
    env = env_for(
        settings,
        CONCORDAT_TEMPORAL_ADDRESS=address,
        CONCORDAT_TASK_QUEUE=settings.task_queue,
        CONCORDAT_POLICY_FILE=str(settings.policy_file),
    )
    worker = start("worker", ["worker"], env, tmp_path)
    try:
        await until_async(lambda: "worker.ready" in worker.text(), 60, "the worker to be ready")
        yesterday = datetime.combine(due.date() - timedelta(days=1), time(12, 0), tzinfo=LONDON)
        state = app.start_proposal(
            actor=Actor.parse("jcu_lead:jo"),
            command_id="s",
            title="Due soon",
            kind="pathway_change",
            value_pence=1_000,
            parties=["PCC"],
            public_health=False,
            at=yesterday,
        )
        state = app.decide(
            state.reference,
            actor=Actor.parse("lead_director:dan"),
            stage="jcu",
            outcome="refer",
            command_id="d",
            at=yesterday,
        )
        assert (state.stage, state.deadline) == ("board", due)
        client = await Client.connect(address, data_converter=bootstrap.data_converter(settings))
        await ensure_workflow(client, settings, state, app)
        ref = state.reference
        handle = client.get_workflow_handle(ref)
        for _ in range(100):  # until the workflow has set its deadline timer (seen in its own history)
            events = (await handle.fetch_history()).events
            if any(e.HasField("timer_started_event_attributes") for e in events):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the workflow never set its deadline timer")
        server.stop()
        assert datetime.now(LONDON) < due, "the server must go down before the deadline"
        await asyncio.sleep(max(0.0, (due - datetime.now(LONDON)).total_seconds()) + 3)  # down past the deadline
        assert [h.event for h in app.history(ref, actor=AUDREY)] == ["Started", "Decided"]
        server = temporal_dev(tmp_path, port, db_file)  # the same state file
        await until_async(
            lambda: "Escalated" in [h.event for h in app.history(ref, actor=AUDREY)],
            120,
            "the missed deadline to escalate after the restart",
        )
    finally:
        worker.stop()
        server.stop()
    escalated = app.history(ref, actor=AUDREY)[-1]
    assert escalated.changes["to_forum"] == "programme_board"
    assert escalated.changes["missed_deadline"] == due
