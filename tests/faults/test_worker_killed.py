"""A worker killed with SIGKILL between the store's commit and the activity's completion: another
worker picks the activity up, the command is found applied, and the case holds exactly one event for
it. Real processes, a real PostgreSQL, Temporal's real dev server."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from temporalio.client import Client

from concordat import bootstrap, keys
from concordat.engine import ensure_workflow
from concordat.settings import Settings
from domain.actor import Actor
from tests import proving
from tests.faults.processes import env_for, start, until_async
from workflows.case import CaseWorkflow
from workflows.contracts import ActInput, ActorRef

AUDREY = Actor.parse("auditor:audrey")


async def test_a_worker_killed_after_the_commit_stores_nothing_twice(
    temporal: str, postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=postgres_url,
        temporal_address=temporal,
        task_queue=f"tq-{uuid.uuid4()}",
    )
    app = bootstrap.open_cases(settings)
    client = await Client.connect(temporal, data_converter=bootstrap.data_converter(settings))
    env = env_for(settings, CONCORDAT_TEMPORAL_ADDRESS=temporal, CONCORDAT_TASK_QUEUE=settings.task_queue)
    slow = start("worker-a", ["worker"], {**env, "CONCORDAT_FAULT_PAUSE_AFTER_COMMIT": "300"}, tmp_path)
    try:
        state = app.start_proposal(
            actor=Actor.parse("jcu_lead:jo"),
            command_id="s",
            title="Kill me",
            kind="procurement",
            value_pence=1_000_000,
            parties=["PCC"],
            public_health=False,
        )
        ref = state.reference
        await ensure_workflow(client, settings, state, app)
        update = asyncio.create_task(
            client.get_workflow_handle(ref).execute_update(
                CaseWorkflow.act,
                proving.signed(
                    ActInput(
                        actor=ActorRef(id="dan", role="lead_director"),
                        action="decide",
                        fields={"stage": "jcu", "outcome": "refer"},
                    ),
                    ref,
                    "decide-once",
                    key=keys.command_key(settings),
                ),
                id="decide-once",
            )
        )
        await until_async(lambda: len(app.history(ref, actor=AUDREY)) == 2, 60, "the decision to commit")
        slow.kill9()  # the activity has committed and is paused: it never reports completion
        fresh = start("worker-b", ["worker"], env, tmp_path)
        try:
            result = await asyncio.wait_for(update, timeout=120)
        finally:
            fresh.stop()
    finally:
        slow.stop()
    assert result.stage == "board"
    assert [h.event for h in app.history(ref, actor=AUDREY)] == ["Started", "Decided"]
