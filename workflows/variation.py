"""`VariationWorkflow`: one per contract variation (workflow id = `VAR-…` reference).

Each stage (jcu, board, cmet, governing_body, public_health, provider) waits for its forum until a
deadline, with a reminder before it and an escalation at it; once agreed, a timer waits for the
date the variation takes effect. Update `act` (decide, withdraw, inform_chief_executive), query
`state`; the machinery is `workflows/timeline.py`, the rules `domain/variation.py`.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import ActInput, CaseInput, CaseState
    from workflows.timeline import CaseTimeline


@workflow.defn
class VariationWorkflow(CaseTimeline):
    @workflow.init
    def __init__(self, input: CaseInput) -> None:
        self._setup(input)

    @workflow.run
    async def run(self, input: CaseInput) -> CaseState:
        return await self._run_timeline(input)

    @workflow.query
    def state(self) -> CaseState:
        return self._state

    @workflow.update
    async def act(self, act: ActInput) -> CaseState:
        return await self._act(act)

    @act.validator
    def _validate_act(self, act: ActInput) -> None:
        self._validate(act)
