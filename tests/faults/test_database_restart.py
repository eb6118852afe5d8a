"""PostgreSQL stops and starts again while commands flow: the CLI answers "store unavailable, try
again" (exit 75) and the API a 503 problem while it is down, commands in flight are retried by
Temporal, and each lands once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
from temporalio.client import Client

from concordat import bootstrap, keys
from concordat.engine import ensure_workflow
from concordat.settings import Settings
from domain.actor import Actor
from tests import proving
from tests.faults.conftest import RestartablePostgres
from tests.faults.processes import env_for, free_port, start, until_async
from tests.people import ADMIN as OPS
from tests.people import directory as seeded_directory
from workflows.case import CaseWorkflow
from workflows.contracts import ActInput, ActorRef

AUDREY = Actor.parse("auditor:audrey")


def _healthy(address: str) -> bool:
    try:
        return httpx.get(f"http://{address}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def test_commands_in_flight_land_once_across_a_database_restart(
    temporal: str, restartable_postgres: RestartablePostgres, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=restartable_postgres.url,
        temporal_address=temporal,
        task_queue=f"tq-{uuid.uuid4()}",
    )
    app = bootstrap.open_cases(settings)
    client = await Client.connect(temporal, data_converter=bootstrap.data_converter(settings))
    env = env_for(settings, CONCORDAT_TEMPORAL_ADDRESS=temporal, CONCORDAT_TASK_QUEUE=settings.task_queue)
    web_address = f"127.0.0.1:{free_port()}"
    env["CONCORDAT_HTTP_ADDRESS"] = web_address
    token = (
        seeded_directory(app)
        .issue_token(
            seeded_directory(app).add_user("audrey", ["auditor"], by=OPS, command_id="u1")["id"],
            by=OPS,
            command_id="t1",
        )
        .token
    )
    worker = start("worker", ["worker"], env, tmp_path)
    web = start("web", ["serve"], env, tmp_path)
    try:
        await until_async(lambda: "worker.ready" in worker.text(), 60, "the worker to be ready")
        await until_async(lambda: _healthy(web_address), 60, "the web app to answer")
        refs = []
        for i in range(3):
            state = app.start_proposal(
                actor=Actor.parse("jcu_lead:jo"),
                command_id=f"s{i}",
                title=f"Case {i}",
                kind="procurement",
                value_pence=1_000,
                parties=["PCC"],
                public_health=False,
            )
            await ensure_workflow(client, settings, state, app)
            refs.append(state.reference)

        restartable_postgres.stop()
        down = subprocess.run(
            [sys.executable, "-m", "concordat", "show", refs[0], "--as", "auditor:audrey"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert down.returncode == 75, down.stderr
        assert down.stderr.startswith("concordat: store unavailable, try again")
        assert len(down.stderr.strip().splitlines()) == 1
        api = httpx.get(
            f"http://{web_address}/api/v1/cases/{refs[0]}", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        assert api.status_code == 503 and api.headers["content-type"] == "application/problem+json", api.text
        assert api.json()["detail"].startswith("store unavailable, try again") and api.headers["retry-after"]

        decisions = [
            asyncio.create_task(
                client.get_workflow_handle(ref).execute_update(
                    CaseWorkflow.act,
                    proving.signed(
                        ActInput(
                            actor=ActorRef(id="dan", role="lead_director"),
                            action="decide",
                            fields={"stage": "jcu", "outcome": "refer"},
                        ),
                        ref,
                        f"decide-{ref}",
                        key=keys.command_key(settings),
                    ),
                    id=f"decide-{ref}",
                )
            )
            for ref in refs
        ]
        await asyncio.sleep(3)  # the database stays down for a while, as in a real restart
        restartable_postgres.start()
        results = await asyncio.wait_for(asyncio.gather(*decisions), timeout=120)
        back = httpx.get(
            f"http://{web_address}/api/v1/cases/{refs[0]}", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        assert back.status_code == 200 and back.json()["stage"] == "board"  # the web app recovers by itself
    finally:
        worker.stop()
        web.stop()
    assert [r.stage for r in results] == ["board"] * 3
    again = bootstrap.open_cases(settings)
    for ref in refs:
        assert [h.event for h in again.history(ref, actor=AUDREY)] == ["Started", "Decided"]
