"""Under `concordat up` on SQLite: the data directory's disk fills up (a small tmpfs, filled with one
file). Commands are refused in one line that names the cause, through the CLI (exit 75) and the API
(503 with Retry-After), writing nothing; when the file is deleted, the same commands, repeated with
their command id or Idempotency-Key, succeed, with no operator action.

Needs root (to mount the tmpfs), as the fault tests' CI job has."""

from __future__ import annotations

import errno
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

from concordat import bootstrap
from domain.actor import Actor
from tests.e2e.conftest import _env, running_engine
from tests.faults.under_up import until
from tests.people import settings_of

AUDREY = Actor.parse("auditor:audrey")
PROPOSAL = {"title": "On a full disk", "kind": "procurement", "value": "1000", "parties": ["PCC"]}


@contextmanager
def small_disk(where: Path, size: str = "64m") -> Iterator[Path]:
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


@contextmanager
def kept_full(disk: Path) -> Iterator[None]:
    """Fill the disk with one file, to the last byte, and keep it full: the engine's own processes
    free a little now and then (a failed write's journal, a file replaced), and a full disk takes that
    space back at once, as a disk another program is filling would. The store's write-ahead log is
    emptied first (a checkpoint that truncates it): it reuses the space it holds, so a write would
    find room in it. On leaving, the file is deleted: space returns."""
    with sqlite3.connect(disk / "events.sqlite") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    filler = disk / "filler"
    full = threading.Event()
    stop = threading.Event()

    def keep_filling() -> None:
        with filler.open("wb", buffering=0) as out:
            for chunk in (1 << 20, 512):  # megabytes, then the last partial one
                while True:
                    try:
                        out.write(b"\0" * chunk)
                    except OSError as err:
                        assert err.errno == errno.ENOSPC
                        break
            full.set()
            while not stop.wait(0.001):  # the adversary: whatever is freed, taken back within a millisecond
                with suppress(OSError):
                    out.write(b"\0" * 512)

    thread = threading.Thread(target=keep_filling, daemon=True)
    thread.start()
    assert full.wait(60), "the disk did not fill"
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
        filler.unlink()


def test_a_full_disk_is_said_in_one_line_and_the_engine_recovers_when_space_returns(
    temporal: str, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "data") as disk:
        env = _env(tmp_path, 0)
        env["CONCORDAT_TEMPORAL_ADDRESS"] = temporal  # Temporal's own state is elsewhere: the store's disk fills
        with running_engine(tmp_path, env, args=("--temporal", temporal)) as engine:
            jo = engine.token_of("jcu_lead:jo")
            engine.token_of("auditor:audrey"), engine.token_of("lead_director:dan")  # people made before the disk fills
            store = bootstrap.open_cases(settings_of(engine.env))
            before = len(list(store.references()))
            with kept_full(disk):
                refused = engine.run(
                    "proposal", "start", "--title", "On a full disk", "--kind", "procurement", "--value", "1000",
                    "--parties", "PCC", "--command-id", "cli-start", who="jcu_lead:jo",
                )  # fmt: skip
                assert refused.returncode == 75, (refused.returncode, refused.stderr)
                assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
                assert "disk is full" in refused.stderr, refused.stderr
                api = httpx.post(
                    f"{engine.web}/api/v1/proposals",
                    json=PROPOSAL,
                    headers={"Authorization": f"Bearer {jo}", "Idempotency-Key": "api-start"},
                    timeout=60,
                )
                assert api.status_code == 503 and api.headers["retry-after"], (api.status_code, api.text)
                assert "disk is full" in api.json()["detail"], api.text
                assert len(list(store.references())) == before  # nothing written

            # space returns: the file is deleted as the block above ends
            again = engine.run(
                "proposal", "start", "--title", "On a full disk", "--kind", "procurement", "--value", "1000",
                "--parties", "PCC", "--command-id", "cli-start", who="jcu_lead:jo",
            )  # fmt: skip
            assert again.returncode == 0, again.stderr
            ref = again.stdout.strip()
            answered = httpx.post(
                f"{engine.web}/api/v1/proposals",
                json=PROPOSAL,
                headers={"Authorization": f"Bearer {jo}", "Idempotency-Key": "api-start"},
                timeout=60,
            )
            assert answered.status_code == 201, answered.text
            engine.ok("decide", ref, "--stage", "jcu", "--outcome", "approve", who="lead_director:dan")
            until(lambda: '"approved"' in engine.ok("list", "--json", who="auditor:audrey"), "the views", engine)
            assert engine.process.poll() is None
            assert len(list(store.references())) == before + 2  # one case per key
