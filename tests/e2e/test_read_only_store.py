"""An auditor's copy of a data directory, on a read-only mount: the SQLite store opens read-only, so
`show`, `list`, `history` and `audit verify` answer as on the original, and a command that writes is
refused in one line that says the store is read-only (exit 77), writing nothing.

The copy is made read-only with a read-only bind mount: as root (as the tests run in CI) `chmod -w`
stops nobody. Needs root to mount, as the fault tests do."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.conftest import Engine, running_engine
from tests.faults.under_up import until


@contextmanager
def read_only_copy(source: Path, where: Path) -> Iterator[Path]:
    shutil.copytree(source, where, ignore=shutil.ignore_patterns("temporal.sqlite*", "logs"))
    subprocess.run(["mount", "--bind", str(where), str(where)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(where)], check=True)
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def test_a_read_only_copy_of_the_store_is_readable_and_refuses_writes_in_one_line(tmp_path: Path) -> None:
    with running_engine(tmp_path) as engine:
        ref = engine.ok(
            "proposal", "start", "--title", "Kept for the auditor", "--kind", "procurement", "--value", "1000",
            "--parties", "PCC", who="jcu_lead:jo",
        ).strip()  # fmt: skip
        engine.ok("decide", ref, "--stage", "jcu", "--outcome", "approve", who="lead_director:dan")
        tokens = {who: engine.token_of(who) for who in ("auditor:audrey", "jcu_lead:jo")}
        until(lambda: '"approved"' in engine.ok("list", "--json", who="auditor:audrey"), "the views", engine)
    # `up` stopped: the store's log is checkpointed into its file, as a copy for an auditor would be made.
    with read_only_copy(tmp_path / "data", tmp_path / "copy") as copy:
        auditor = Engine({**engine.env, "CONCORDAT_DATA_DIR": str(copy)}, engine.process, [], engine.people)

        def run(*args: str, who: str) -> subprocess.CompletedProcess[str]:
            return auditor.run(*args, who=who, token=tokens[who])

        shown = run("show", ref, "--json", who="auditor:audrey")
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["status"] == "approved"
        listed = run("list", "--json", who="auditor:audrey")
        assert listed.returncode == 0 and ref in listed.stdout, listed.stderr
        history = run("history", ref, who="auditor:audrey")
        assert history.returncode == 0 and "Decided" in history.stdout, history.stderr
        verified = run("audit", "verify", who="auditor:audrey")
        assert verified.returncode == 0, verified.stderr

        before = sorted(p.name for p in copy.iterdir())
        write = run(
            "proposal", "start", "--title", "Not on a copy", "--kind", "procurement", "--value", "1000",
            "--parties", "PCC", who="jcu_lead:jo",
        )  # fmt: skip
        assert write.returncode == 77, (write.returncode, write.stderr)
        assert len(write.stderr.strip().splitlines()) == 1, write.stderr
        assert "the store is read-only" in write.stderr and "read commands" in write.stderr
        assert sorted(p.name for p in copy.iterdir()) == before
        assert (
            json.loads(run("show", ref, "--json", who="auditor:audrey").stdout)["version"]
            == json.loads(shown.stdout)["version"]
        )
