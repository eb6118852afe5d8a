"""Under `concordat up --temporal ADDRESS`: Temporal's dev server (the test's own, state in a file) is
SIGKILLed while proposals are being started through the API and the CLI, then started again on the
same port with the same file. Every caller gets success or 503 (API) / 69 or 75 (CLI); a retry with
the same Idempotency-Key or command id gives the same case, never a second one; and a case stored
while Temporal was away, whose caller never retried, gets its workflow from the worker's sweep."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.service import RPCError

from concordat import bootstrap
from tests.e2e.conftest import Engine, _env, running_engine
from tests.faults.processes import Proc, free_port, temporal_dev
from tests.faults.under_up import until
from tests.people import settings_of

CASES = 8
DOWN_SECONDS = 10
REF = re.compile(r"\b([A-Z]{3}-\d{4}-\d{4})\b")


@dataclass
class Starter:
    key: str
    door: str  # "api" or "cli"
    retries: bool  # a caller that gives up leaves its case, if stored, to the sweep
    refs: set[str] = field(default_factory=set)  # every reference it was told of
    answers: list[str] = field(default_factory=list)
    done: bool = False


def _reachable(address: str) -> bool:
    async def connect() -> bool:
        try:
            await Client.connect(address)
        except RuntimeError:
            return False
        return True

    return asyncio.run(connect())


def _attempt(engine: Engine, starter: Starter, token: str) -> None:
    title = f"Started as {starter.key}"
    if starter.door == "api":
        try:
            got = httpx.post(
                f"{engine.web}/api/v1/proposals",
                json={"title": title, "kind": "procurement", "value": "1000", "parties": ["PCC"]},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": starter.key},
                timeout=120,
            )
        except httpx.HTTPError as err:
            starter.answers.append(f"no answer: {type(err).__name__}")
            return
        starter.answers.append(str(got.status_code))
        if got.status_code == 201:
            starter.refs.add(got.json()["reference"])
            starter.done = True
            return
        assert got.status_code == 503, (got.status_code, got.text)
        assert got.headers["content-type"] == "application/problem+json" and got.headers["retry-after"]
        starter.refs.update(REF.findall(got.json()["detail"]))
        return
    done = subprocess.run(
        [sys.executable, "-m", "concordat", "proposal", "start", "--title", title, "--kind", "procurement",
         "--value", "1000", "--parties", "PCC", "--command-id", starter.key, "--as", "jcu_lead:jo"],
        env={**engine.env, "CONCORDAT_TOKEN": token}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    starter.answers.append(str(done.returncode))
    if done.returncode == 0:
        starter.refs.add(done.stdout.strip())
        starter.done = True
        return
    assert done.returncode in (69, 75), (done.returncode, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    starter.refs.update(REF.findall(done.stderr))


def _workflows(engine: Engine, refs: set[str]) -> dict[str, str]:
    """Each case's workflow status in Temporal ("missing" for none)."""
    settings = settings_of(engine.env)

    async def describe() -> dict[str, str]:
        client = await Client.connect(settings.temporal_address, data_converter=bootstrap.data_converter(settings))
        found = {}
        for ref in refs:
            try:
                status = (await client.get_workflow_handle(ref).describe()).status
            except RPCError:
                found[ref] = "missing"
                continue
            found[ref] = status.name if status is not None else "unknown"
        return found

    return asyncio.run(describe())


def _repaired_by_sweeps(engine: Engine) -> int:
    """How many workflows the sweeps started, in all, as `concordat health worker` says."""
    done = subprocess.run(
        [sys.executable, "-m", "concordat", "health", "worker"], env=engine.env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    found = re.search(r"given one; (\d+) in all", done.stdout)
    return int(found.group(1)) if done.returncode == 0 and found else 0


def test_temporal_killed_during_starts_leaves_no_case_without_a_workflow_and_no_duplicate(tmp_path: Path) -> None:
    port = free_port()
    address, db_file = f"127.0.0.1:{port}", tmp_path / "temporal.sqlite"
    server: Proc = temporal_dev(tmp_path, port, db_file)
    try:
        deadline = time.monotonic() + 60
        while not _reachable(address):
            assert time.monotonic() < deadline, "Temporal's dev server did not start"
            time.sleep(0.2)  # the server is starting
        env = {**_env(tmp_path, port), "CONCORDAT_WATCH_SECONDS": "1"}
        with running_engine(tmp_path, env, args=("--temporal", address)) as engine:
            token = engine.token_of("jcu_lead:jo")
            warm = Starter("warm", "api", retries=True)
            _attempt(engine, warm, token)  # the web app has its Temporal client before Temporal goes
            assert warm.done, warm.answers
            starters = [Starter(f"start-{i}", "api" if i % 2 else "cli", retries=i % 4 > 1) for i in range(CASES)]
            first = [threading.Thread(target=_attempt, args=(engine, s, token)) for s in starters]
            for thread in first:
                thread.start()
            time.sleep(0.5)  # the starts under way (not a race being papered over: any moment will do)
            server.kill9()
            killed_at = time.monotonic()
            for thread in first:
                thread.join(timeout=180)
            # Whatever the race above gave, one caller starts a case while Temporal is surely away and
            # never retries: its case is stored (the 503 names it), and only the sweep can start it.
            stranded = Starter("stranded", "api", retries=False)
            _attempt(engine, stranded, token)
            assert stranded.answers == ["503"] and len(stranded.refs) == 1, stranded
            starters.append(stranded)
            while time.monotonic() - killed_at < DOWN_SECONDS:
                for starter in (s for s in starters if s.retries and not s.done):
                    _attempt(engine, starter, token)  # told to try again; Temporal still away
            server = temporal_dev(tmp_path, port, db_file)  # the same port, the same state file
            deadline = time.monotonic() + 120
            while not all(s.done for s in starters if s.retries) and time.monotonic() < deadline:
                for starter in (s for s in starters if s.retries and not s.done):
                    _attempt(engine, starter, token)
            report = [(s.key, s.door, s.answers, s.refs) for s in starters]
            assert all(s.done for s in starters if s.retries), report
            assert all(len(s.refs) <= 1 for s in starters), report  # one key, one case, whatever it was told
            assert any(not s.done and s.refs for s in starters), report  # a case stored, left to the sweep
            store = bootstrap.open_cases(settings_of(engine.env))
            stored = set(store.references())
            told = set().union(*(s.refs for s in starters))
            assert told | warm.refs <= stored, (stored, report)
            titles = [store.state(ref).title for ref in stored]
            assert len(titles) == len(set(titles)), (titles, report)  # no key made two cases
            until(
                lambda: set(_workflows(engine, stored).values()) == {"RUNNING"},
                "every stored case to have a running workflow (the sweep repairs those no retry started)",
                engine,
            )
            until(lambda: _repaired_by_sweeps(engine) >= 1, "`health worker` to count the sweep's repairs", engine)
            assert engine.process.poll() is None
    finally:
        server.stop()
