"""The baseline of the Temporal benchmark, in a module of its own so the workflow sandbox imports
nothing but temporalio: one update that runs one no-op activity."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def noop(value: int) -> int:
    return value


@workflow.defn
class Bare:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.update
    async def act(self, value: int) -> int:
        result = await workflow.execute_activity(noop, value, start_to_close_timeout=timedelta(seconds=30))
        self.done = True
        return result
