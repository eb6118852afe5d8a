"""`TerminationWorkflow`: one per termination notice (workflow id = `TRM-…` reference).

It sleeps on a durable timer until the notice takes effect (six months or more: months-long
timers are why this is a workflow), with reminders to all parties three and one months before;
mutual consent brings the end forward. Update `act` (withdraw, consent), query
`state`; the machinery is `workflows/timeline.py`.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import ActInput, CaseInput, CaseState
    from workflows.timeline import CaseTimeline


@workflow.defn
class TerminationWorkflow(CaseTimeline):
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
