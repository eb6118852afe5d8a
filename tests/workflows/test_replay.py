"""Recorded histories replay on today's code: CaseWorkflow's, and those of the old workflow type names
still registered for cases started under them (`legacy_*`).

Cases run for months; a change to the workflow that would take a different path through a recorded
history breaks every case already running. These fixtures were recorded from real runs (see
`record_histories` below); a change that fails here must go behind `workflow.patched()`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from concordat import bootstrap
from concordat.settings import Settings
from workflows.case import ALL_WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_a_recorded_history_replays_on_todays_workflow(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=ALL_WORKFLOWS,
        data_converter=bootstrap.data_converter(Settings()),  # recorded unencrypted: read as they are
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_there_are_recorded_histories_to_replay() -> None:
    assert len(list(HISTORIES.glob("*.json"))) >= 9
