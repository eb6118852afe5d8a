"""Benchmark 5 — what a person waits for: `concordat show` against `python -c "import concordat"`;
and the API's p50/p99 for `GET /api/v1/cases/{ref}` and for a decision, under a bounded load from
this process against `concordat up` in another, on 127.0.0.1.

    uv run python -m bench.latency [-n 300] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.common import header, met, table
from bench.running_up import cli as _cli

PASSWORD = "a long enough password"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _load(call, n: int, concurrency: int) -> list[float]:  # noqa: ANN001
    def one(i: int) -> float:
        start = time.perf_counter()
        response = call(i)
        elapsed = time.perf_counter() - start
        if response.status_code >= 400:
            raise SystemExit(
                f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
            )
        return elapsed

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(n)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="requests of each kind (default 300)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (default 4)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each command for the CLI figure")
    args = parser.parse_args(argv)
    header("CLI and API latency")
    data = Path(tempfile.mkdtemp(prefix="concordat-bench-latency-"))
    http = f"127.0.0.1:{_free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCORDAT_")}
    env.update(
        CONCORDAT_DATA_DIR=str(data),
        CONCORDAT_TEMPORAL_ADDRESS=f"127.0.0.1:{_free_port()}",
        CONCORDAT_TEMPORAL_UI_PORT=str(_free_port()),
        CONCORDAT_HTTP_ADDRESS=http,
    )
    up = subprocess.Popen(
        [sys.executable, "-m", "concordat", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    ready = threading.Event()
    threading.Thread(
        target=lambda: [ready.set() for line in up.stdout if line.startswith("ready")],  # type: ignore[union-attr]
        daemon=True,
    ).start()
    try:
        if not ready.wait(120):
            raise SystemExit("concordat up did not become ready")
        # The first administrator, at the shell; signed in (credentials kept beside the bench's data).
        env["CONCORDAT_CREDENTIALS"] = str(data / "credentials.json")
        _cli(env, "user", "add", "root", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
        _cli(env, "login", "root", "--password-stdin", stdin=PASSWORD + "\n")
        _cli(env, "user", "add", "jo", "--role", "jcu_lead", "--password-stdin", stdin=PASSWORD + "\n")
        _cli(env, "user", "add", "dan", "--role", "lead_director")
        _cli(env, "user", "add", "audrey", "--role", "auditor")
        audrey = json.loads(_cli(env, "token", "create", "audrey", "--json"))["token"]
        jo = json.loads(_cli(env, "token", "create", "jo", "--json"))["token"]
        dan = json.loads(_cli(env, "token", "create", "dan", "--json"))["token"]
        base = f"http://{http}/api/v1"
        body = {"title": "Latency", "kind": "procurement", "value": "1000", "parties": ["PCC"]}
        with httpx.Client(base_url=base, timeout=60) as client:
            refs = [
                client.post("/proposals", json=body, headers={"Authorization": f"Bearer {jo}"}).json()["reference"]
                for _ in range(args.n)
            ]

            def show() -> float:
                start = time.perf_counter()
                _cli({**env, "CONCORDAT_TOKEN": audrey}, "show", refs[0])
                return time.perf_counter() - start

            def bare() -> float:
                start = time.perf_counter()
                subprocess.run([sys.executable, "-c", "import concordat"], check=True)
                return time.perf_counter() - start

            show_s = statistics.median([show() for _ in range(args.runs)])
            bare_s = statistics.median([bare() for _ in range(args.runs)])
            reads = _load(
                lambda i: client.get(f"/cases/{refs[i % len(refs)]}", headers={"Authorization": f"Bearer {dan}"}),
                args.n,
                args.concurrency,
            )
            decisions = _load(
                lambda i: client.post(
                    f"/cases/{refs[i]}/decisions",
                    json={"stage": "jcu", "outcome": "approve"},
                    headers={"Authorization": f"Bearer {dan}"},
                ),
                args.n,
                args.concurrency,
            )
        r50, r99 = _percentiles(reads)
        d50, d99 = _percentiles(decisions)
        rows = [
            {
                "backend": "SQLite (file)",
                "what": "`concordat show` wall time (median)",
                "ours": f"{show_s * 1000:.0f} ms",
                "baseline": f"{bare_s * 1000:.0f} ms `import concordat`",
                "ratio": f"{show_s / bare_s:.1f}×",
            },
            {
                "backend": "SQLite (file)",
                "what": f"GET /cases/{{ref}} p50 / p99 ({args.concurrency} in flight)",
                "ours": f"{r50 * 1000:.1f} / {r99 * 1000:.1f} ms",
                "goal": "p99 < 50 ms",
                "met": met(r99 < 0.05),
            },
            {
                "backend": "SQLite (file)",
                "what": f"POST decision p50 / p99 ({args.concurrency} in flight)",
                "ours": f"{d50 * 1000:.1f} / {d99 * 1000:.1f} ms",
            },
        ]
        table("What a person waits for", rows)
    finally:
        up.terminate()
        up.wait(timeout=60)


if __name__ == "__main__":
    main()
