"""`FundingWorkflow`: one per in-year funding change (workflow id = `FUN-…` reference).

The board, the Public Health consultation (when ring-fenced money is involved) and the deciding forum
each wait until a deadline, with a reminder before it and an escalation at it. Update `act` (decide,
withdraw), query `state`; the machinery is `workflows/timeline.py`, the rules `domain/funding.py`.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import ActInput, CaseInput, CaseState
    from workflows.timeline import CaseTimeline


@workflow.defn
class FundingWorkflow(CaseTimeline):
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
