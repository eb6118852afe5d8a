"""Benchmark 6 — the API door: decisions over HTTP with a token vs a bare update, same Temporal server.

Decisions as people send them (`POST /api/v1/cases/{ref}/decisions` with a bearer token and an
Idempotency-Key, over HTTP to a real `concordat up`), beside a bare Temporal update that runs one
no-op activity, on the same Temporal server the engine uses, in the same run: the rate and p50/p99
of each, the same number in flight.

    uv run python -m bench.api_door [-n 200] [--in-flight 4] [--rounds 2] [--profile FILE]

The two alternate `--rounds` times (bare, ours, bare, ours, …), so a machine that slows down for a
while slows both; each figure is over every round. `--profile FILE` records the web app's process
with py-spy (`uv tool run py-spy`) while our decisions run, as a speedscope file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from bench.bare_workflow import Bare, noop
from bench.common import header, met, table
from bench.running_up import Up, running_up

P99_GOAL = 3.0  # our p99 at most this many times bare's
RATE_GOAL = 0.6  # our rate at least this share of bare's


@dataclass
class Samples:
    """Each call's seconds, and the wall time of the batches they ran in."""

    seconds: list[float] = field(default_factory=list)
    wall: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.seconds) / self.wall

    def percentile(self, p: float) -> float:
        """The median for 0.5, else the sample at `p` of the way up (the p99 of 200 is the 199th)."""
        ordered = sorted(self.seconds)
        if p == 0.5:
            return statistics.median(ordered)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def bounded(calls: list[Callable[[], Awaitable[None]]], in_flight: int, into: Samples) -> None:
    """Run `calls` with at most `in_flight` at once, adding each one's time and the batch's wall time."""
    gate = asyncio.Semaphore(in_flight)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            start = time.perf_counter()
            await call()
            into.seconds.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(one(c) for c in calls))
    into.wall += time.perf_counter() - start


async def _proposals(http: httpx.AsyncClient, token: str, n: int, in_flight: int) -> list[str]:
    body = {"title": "API door", "kind": "procurement", "value": "1000", "parties": ["PCC"]}
    refs: list[str] = []

    async def start() -> None:
        answer = await http.post("/proposals", json=body, headers={"Authorization": f"Bearer {token}"})
        _ok(answer)
        refs.append(answer.json()["reference"])

    await bounded([start] * n, in_flight, Samples())
    return refs


def _ok(answer: httpx.Response) -> None:
    if answer.status_code >= 400:
        raise SystemExit(f"{answer.request.method} {answer.request.url}: {answer.status_code} {answer.text}")


async def measure(engine: Up, n: int, in_flight: int, rounds: int, profile: Path | None) -> tuple[Samples, Samples]:
    jo, dan = engine.tokens["jo"], engine.tokens["dan"]
    warm = 2 * in_flight
    client = await Client.connect(engine.temporal_address)
    queue = f"bench-bare-{uuid.uuid4()}"
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with (
        httpx.AsyncClient(base_url=engine.api, timeout=60, limits=limits) as http,
        Worker(client, task_queue=queue, workflows=[Bare], activities=[noop]),
    ):
        refs = await _proposals(http, jo, warm + n * rounds, in_flight)

        def decision(ref: str) -> Callable[[], Awaitable[None]]:
            async def send() -> None:
                _ok(
                    await http.post(
                        f"/cases/{ref}/decisions",
                        json={"stage": "jcu", "outcome": "approve"},
                        headers={"Authorization": f"Bearer {dan}", "Idempotency-Key": str(uuid.uuid4())},
                    )
                )

            return send

        async def bare_updates(count: int) -> list[Callable[[], Awaitable[None]]]:
            handles = [
                await client.start_workflow(Bare.run, id=f"bare-{uuid.uuid4()}", task_queue=queue) for _ in range(count)
            ]

            def update(handle: WorkflowHandle[Any, Any]) -> Callable[[], Awaitable[None]]:
                async def send() -> None:
                    await handle.execute_update(Bare.act, 1)

                return send

            return [update(h) for h in handles]

        # Warm both paths (connections, the first request's imports and caches), not counted.
        await bounded([decision(r) for r in refs[:warm]], in_flight, Samples())
        await bounded(await bare_updates(warm), in_flight, Samples())
        ours, bare = Samples(), Samples()
        todo = refs[warm:]
        for i in range(rounds):
            await bounded(await bare_updates(n), in_flight, bare)
            with _profiled(engine.web_pid, profile if i == 0 else None):
                await bounded([decision(r) for r in todo[i * n : (i + 1) * n]], in_flight, ours)
    return ours, bare


@contextlib.contextmanager
def _profiled(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy recording `pid` while the block runs, into `out` (speedscope), if asked."""
    if out is None:
        yield
        return
    uv = shutil.which("uv") or str(Path.cwd() / "uv")
    spy = subprocess.Popen(
        [
            uv,
            "tool",
            "run",
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--format",
            "speedscope",
            "-o",
            str(out),
            "-r",
            "200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)  # py-spy attaching (it says nothing when its stderr is a pipe): it misses the first moments
    try:
        yield
    finally:
        spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
        _, err = spy.communicate(timeout=60)
        if spy.returncode not in (0, -2, 130) or not out.exists():
            raise SystemExit(f"py-spy did not record the web app: {err.strip()}")


def rows_of(ours: Samples, bare: Samples, in_flight: int) -> list[dict[str, str]]:
    p50, p99 = ours.percentile(0.5), ours.percentile(0.99)
    b50, b99 = bare.percentile(0.5), bare.percentile(0.99)
    what = "SQLite (file), `concordat up`"
    return [
        {
            "backend": what,
            "what": f"decisions/s through the API, HTTP + bearer token ({in_flight} in flight, n={len(ours.seconds)})",
            "ours": f"{ours.rate:,.1f}",
            "baseline": f"{bare.rate:,.1f} bare update + no-op activity, same server",
            "ratio": f"{ours.rate / bare.rate:.0%}",
            "goal": f"≥ {RATE_GOAL:.0%} of bare",
            "met": met(ours.rate >= RATE_GOAL * bare.rate),
        },
        {
            "backend": what,
            "what": f"decision through the API p50 / p99 ({in_flight} in flight)",
            "ours": f"{p50 * 1000:.0f} / {p99 * 1000:.0f} ms",
            "baseline": f"{b50 * 1000:.0f} / {b99 * 1000:.0f} ms bare",
            "ratio": f"{p50 / b50:.1f}× / {p99 / b99:.1f}×",
            "goal": f"p99 ≤ {P99_GOAL:.0f}× bare",
            "met": met(p99 <= P99_GOAL * b99),
        },
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="decisions (and bare updates) in each round (default 200)")
    parser.add_argument("--in-flight", type=int, default=4, help="requests in flight at once (default 4)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of bare then ours (default 2)")
    parser.add_argument("--profile", type=Path, help="record the web app with py-spy into this speedscope file")
    args = parser.parse_args(argv)
    header("The API door: decisions over HTTP vs a bare Temporal update, same server")
    with running_up({"jo": "jcu_lead", "dan": "lead_director"}) as engine:
        ours, bare = asyncio.run(measure(engine, args.n, args.in_flight, args.rounds, args.profile))
    table("Decisions through the API vs a bare update with one no-op activity", rows_of(ours, bare, args.in_flight))


if __name__ == "__main__":
    main()
