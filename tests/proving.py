"""Commands as the engine's own doors send them: signed with the command key (`workers/proof.py`).

Tests that drive a workflow directly (no CLI, API or page in front) sign their commands here, the
way `concordat.commands` does; a test of forgery sends them unsigned or signed with another key."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from temporalio.client import WorkflowHandle

from workers.proof import sign
from workflows.case import CaseWorkflow
from workflows.contracts import ActInput, CaseState

TEST_COMMAND_KEY = bytes(range(32))


def signed(
    act: ActInput, reference: str, command_id: str, *, key: bytes = TEST_COMMAND_KEY, at: datetime | None = None
) -> ActInput:
    return sign(key, act, reference=reference, command_id=command_id, door="cli", at=at)


async def send(
    handle: WorkflowHandle[Any, Any],
    act: ActInput,
    *,
    command_id: str | None = None,
    key: bytes = TEST_COMMAND_KEY,
    at: datetime | None = None,
) -> CaseState:
    """`act` as an update to the case's workflow, signed for its case and command id (the update id).
    `at`: the signing time (a time-skipping test passes its environment's time)."""
    cid = command_id or str(uuid.uuid4())
    result: CaseState = await handle.execute_update(
        CaseWorkflow.act, signed(act, handle.id, cid, key=key, at=at), id=cid, result_type=CaseState
    )
    return result
