"""`StoreBindingWorkflow`: which event store a Temporal namespace serves (workflow id `concordat-store`).

Case workflows are named by case reference, and every store numbers its cases from 0001: two stores
on one namespace would each take the other's `PRO-2026-0001` for their own. So a namespace serves one
store, and this workflow says which: its memo holds the store's id and a description a person can
read (also in Temporal's web UI). `up` and every worker start it, or find it, before they serve
anything, and refuse a namespace bound to another store. It runs on the store's own task queue and
waits for ever: no timer, no activity, no update; a running workflow outlives any retention period.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

WORKFLOW_ID = "concordat-store"


class StoreBindingInput(BaseModel):
    store_id: str
    store: str


@workflow.defn
class StoreBindingWorkflow:
    @workflow.run
    async def run(self, input: StoreBindingInput) -> None:
        await workflow.wait_condition(lambda: False)
