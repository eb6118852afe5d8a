"""What the worker's last sweep (`engine.sweep`) found, kept in the data dir as `sweep.json` for
`concordat health worker` and the metrics to read beside the worker: when it ran, the live cases it
found without a workflow (and gave one), the workflows it found without a live case, whether it
failed, and running totals since the file was made.

One file per machine: several workers on one machine (`concordat up --workers N`) each write it
after their sweep, and the last one's is what is read.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from concordat import bootstrap, private
from concordat.settings import Settings

FILE = "sweep.json"


@dataclass
class LastSweep:
    at: datetime
    cases: int = 0
    live: int = 0
    without_workflow: int = 0  # live cases with no running workflow; each was given one
    orphans: int | None = None  # running workflows with no live case (None: Temporal could not list them)
    failed: str = ""  # why the sweep failed, if it did ("" when it finished)
    sweeps_total: int = 0
    repaired_total: int = 0  # workflows started for live cases that had none, in all sweeps
    failed_total: int = 0

    def line(self, now: datetime | None = None) -> str:
        """In words, for `concordat health worker`."""
        ago = ((now or datetime.now(UTC)) - self.at).total_seconds()
        when = f"last sweep {ago:.0f} s ago"
        if self.failed:
            return f"{when} failed ({self.failed})"
        orphans = "not listed" if self.orphans is None else str(self.orphans)
        return (
            f"{when}: {self.live} live cases, {self.without_workflow} without a workflow (given one; "
            f"{self.repaired_total} in all), {orphans} workflows without a live case"
        )


def path(settings: Settings) -> Path:
    return settings.data_dir.resolve() / FILE


def read(settings: Settings) -> LastSweep | None:
    """The last sweep's record, or None before the first (or if the file cannot be read)."""
    try:
        data: dict[str, Any] = json.loads(path(settings).read_text())
        data["at"] = datetime.fromisoformat(data["at"])
        return LastSweep(**data)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def record(
    settings: Settings,
    *,
    cases: int = 0,
    live: int = 0,
    without_workflow: int = 0,
    orphans: int | None = None,
    failed: str = "",
    at: datetime | None = None,
) -> LastSweep:
    """Keep what a sweep found (or why it failed), adding to the totals; written whole, then renamed."""
    before = read(settings)
    done = LastSweep(
        at=at or datetime.now(UTC),
        cases=cases,
        live=live,
        without_workflow=without_workflow,
        orphans=orphans,
        failed=failed,
        sweeps_total=(before.sweeps_total if before else 0) + 1,
        repaired_total=(before.repaired_total if before else 0) + without_workflow,
        failed_total=(before.failed_total if before else 0) + (1 if failed else 0),
    )
    target = bootstrap.data_path(settings, FILE)
    temporary = private.make_file(target.with_name(f".{FILE}.{os.getpid()}"))
    temporary.write_text(json.dumps({**asdict(done), "at": done.at.isoformat()}))
    os.replace(temporary, target)
    return done
