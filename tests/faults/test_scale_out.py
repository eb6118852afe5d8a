"""Scale-out on one machine: three worker processes share the task queue; two hundred cases are
started and decided concurrently; every case ends with exactly its events, and the views equal a
rebuild from zero. Bounded in count and time; loopback only."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from temporalio.client import Client

from concordat import bootstrap, keys
from concordat.engine import ensure_workflow
from concordat.replay import replay
from concordat.settings import Settings
from domain.actor import Actor
from tests import proving
from tests.faults.processes import env_for, start, until_async
from tests.faults.test_projection_runners import views
from workflows.case import CaseWorkflow
from workflows.contracts import ActInput, ActorRef

CASES = 200
AUDREY = Actor.parse("auditor:audrey")


async def test_three_workers_carry_two_hundred_concurrent_cases(
    temporal: str, postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=postgres_url,
        temporal_address=temporal,
        task_queue=f"tq-{uuid.uuid4()}",
    )
    app = bootstrap.open_cases(settings)
    env = env_for(settings, CONCORDAT_TEMPORAL_ADDRESS=temporal, CONCORDAT_TASK_QUEUE=settings.task_queue)
    workers = [start(f"worker-{i}", ["worker"], env, tmp_path) for i in range(3)]
    client = await Client.connect(temporal, data_converter=bootstrap.data_converter(settings))
    gate = asyncio.Semaphore(25)  # bounded concurrency

    async def one(i: int) -> str:
        async with gate:
            state = await asyncio.to_thread(
                app.start_proposal,
                actor=Actor.parse("jcu_lead:jo"),
                command_id=f"s{i}",
                title=f"Case {i}",
                kind="procurement",
                value_pence=1_000 * (i + 1),
                parties=["PCC"],
                public_health=False,
            )
            await ensure_workflow(client, settings, state, app)
            handle = client.get_workflow_handle(state.reference)
            await handle.execute_update(
                CaseWorkflow.act,
                proving.signed(
                    ActInput(
                        actor=ActorRef(id="dan", role="lead_director"),
                        action="decide",
                        fields={"stage": "jcu", "outcome": "approve"},
                    ),
                    state.reference,
                    f"d{i}",
                    key=keys.command_key(settings),
                ),
                id=f"d{i}",
            )
            return state.reference

    try:
        for w in workers:
            await until_async(lambda w=w: "worker.ready" in w.text(), 60, f"{w.name} to be ready")
        refs = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(CASES))), timeout=600)
    finally:
        for w in workers:
            w.stop()
    assert len(set(refs)) == CASES
    for ref in refs:
        assert [h.event for h in app.history(ref, actor=AUDREY)] == ["Started", "Decided"]
        assert app.state(ref).status == "approved"
    busy = [w.name for w in workers if "case.acted" in w.text()]
    assert len(busy) >= 2, f"the work was not shared: only {busy} decided anything"
    newest = app.max_notification_id()
    for runner in bootstrap.projection_runners(settings):
        with runner:
            runner.wait(newest, timeout=60)
    live = views(settings)
    assert len(live[0]) == CASES and len(live[1]) == CASES
    replay(settings)
    assert views(settings) == live
