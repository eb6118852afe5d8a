"""What the entry points ask of the engine: commands through Temporal, reads from the store.

Commands that people give (decide, withdraw) go to the case's workflow as Temporal Updates, so the
workflow's validators see them first and the workflow's clock stays in step. Starting a case writes
it to the store first (that is where references are numbered) and then starts its workflow; the
start's command id makes both steps safe to repeat. Reads never go through Temporal: the event
store is the system of record.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import HistoryEventFilterType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from concordat.codec import PayloadKeyError
from concordat.settings import Settings
from domain.application import CaseService
from domain.case import CaseView
from domain.errors import CaseClosedError, CaseNotFoundError, ConcordatError, closed_text
from domain.recorded import workflow_id_cvar
from domain.store import store_id
from workers.activities import case_state
from workflows.case import LEGACY_TYPES, CaseWorkflow
from workflows.contracts import ActInput, CaseInput, CaseState
from workflows.schedules import FIRING_ID_PREFIX as SCHEDULED_PREFIX
from workflows.store_binding import WORKFLOW_ID as STORE_BINDING_ID
from workflows.store_binding import StoreBindingInput, StoreBindingWorkflow

log = structlog.get_logger("concordat.engine")
# How a case's workflow can end while the case is still live, in the words `WorkflowInterrupted` records.
ENDED = {
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.CANCELED: "canceled",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.COMPLETED: "completed",
}
# A case started this recently may not have its workflow yet (the start writes the store, then starts
# the workflow): the sweep starts it, as the start itself is about to, and records nothing.
MISSING_GRACE = timedelta(seconds=60)


class CommandRefusedError(ConcordatError):
    """The workflow's validator or the domain refused a command sent through Temporal. `kind` is the
    domain error's name (`WrongStageError`, `NotAllowedError`, …) when the refusal says it."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind or ""


class TemporalUnavailableError(Exception):
    """Temporal could not be reached."""


class OtherStoreError(Exception):
    """The Temporal namespace serves another event store: serving this one there would mix their cases."""


def is_live(state: CaseView) -> bool:
    """Whether a case can still change: it has actions someone may take, or timers to wake at."""
    return bool(state.actions or state.timers)


def task_queue(settings: Settings, app: CaseService) -> str:
    """The store's own task queue, `concordat-` and the store's id, so that a worker only ever takes up
    workflows of the store it holds; CONCORDAT_TASK_QUEUE, when set, names it instead."""
    return settings.task_queue or f"concordat-{store_id(app)}"


async def bind_store(client: Client, settings: Settings, app: CaseService, store: str) -> None:
    """Make sure the namespace serves this store, or refuse: the first store to ask binds it (see
    `workflows/store_binding.py`); `store` says in words which store this is (no secrets)."""
    mine = store_id(app)
    handle = await client.start_workflow(
        StoreBindingWorkflow.run,
        StoreBindingInput(store_id=mine, store=store),
        id=STORE_BINDING_ID,
        task_queue=task_queue(settings, app),
        memo={"store_id": mine, "store": store},
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    try:
        bound = await (await handle.describe()).memo()
    except PayloadKeyError as err:  # bound by a store whose cipher key is not ours: another store
        raise OtherStoreError(
            f"Temporal {settings.temporal_address} namespace {settings.temporal_namespace} serves another store, "
            f"one whose cipher key this process does not have ({err}); one namespace serves one store: give this "
            "one a namespace (CONCORDAT_TEMPORAL_NAMESPACE) or a Temporal of its own"
        ) from None
    if bound.get("store_id") != mine:
        raise OtherStoreError(
            f"Temporal {settings.temporal_address} namespace {settings.temporal_namespace} serves another store, "
            f"{bound.get('store', 'unnamed')} (id {bound.get('store_id')}), not this one, {store} (id {mine}); "
            "one namespace serves one store: give this one a namespace (CONCORDAT_TEMPORAL_NAMESPACE) "
            "or a Temporal of its own"
        )


def _start_operation(
    settings: Settings, state: CaseView, app: CaseService
) -> WithStartWorkflowOperation[Any, CaseState]:
    return WithStartWorkflowOperation(
        CaseWorkflow.run,
        CaseInput(reference=state.reference, state=case_state(state)),
        id=state.reference,
        task_queue=task_queue(settings, app),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def ensure_workflow(client: Client, settings: Settings, state: CaseView, app: CaseService) -> None:
    """Start the case's workflow unless it is running already (get-or-create by case reference)."""
    await client.start_workflow(
        CaseWorkflow.run,
        CaseInput(reference=state.reference, state=case_state(state)),
        id=state.reference,
        task_queue=task_queue(settings, app),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def migrate_workflow(client: Client, settings: Settings, state: CaseView, app: CaseService) -> bool:
    """Move a live case whose workflow runs under an old type (`LEGACY_TYPES`) to `CaseWorkflow`:
    terminate the old run, with the reason in its history, and start `CaseWorkflow` from the case as
    stored (its deadlines and timers come from the store, so nothing is lost). True if it moved."""
    handle = client.get_workflow_handle(state.reference)
    try:
        described = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    if described.status != WorkflowExecutionStatus.RUNNING or described.workflow_type not in LEGACY_TYPES:
        return False
    await handle.terminate(reason=f"moved to CaseWorkflow (was {described.workflow_type}): concordat resume --migrate")
    await ensure_workflow(client, settings, state, app)
    return True


async def send_update(
    client: Client,
    settings: Settings,
    app: CaseService,
    reference: str,
    arg: ActInput,
    command_id: str,
    *,
    current: CaseView | None = None,
) -> CaseState:
    """A person's command to the case's workflow, as an Update. If the workflow is not running (it
    was lost, or ended outside the engine), it is started in a second call with the update
    (update-with-start), so a case whose workflow was lost still takes commands. `current` is the
    case as the caller just read it, if it did (else it is read here).

    The plain update comes first because it is the common case and the cheaper one: Temporal's
    update-with-start is a multi-operation that also looks up (or starts) the workflow, and on the
    dev server it cost a tenth of the rate and some 40 ms a decision at 4 in flight
    (`bench.api_door`). A plain update to a workflow that is not running changes nothing (Temporal
    answers NOT_FOUND before accepting it), so the second call starts from the same place.

    The update's id is the command id and an attempt of this call's own. The command id, signed in
    `arg`, is what the store keys the command by (a repeat is answered from the store, never recorded
    twice); an update id of the command id alone would make Temporal answer every repeat with the
    first attempt's failure, so a command whose outcome was unknown (the store was down) could never
    be finished by repeating it."""
    if current is None:  # raises CaseNotFoundError for an unknown reference
        current = await asyncio.to_thread(app.state, reference, history=False)
    if not is_live(current):
        # The domain's own words, and the command id's first answer if this is a repeat.
        earlier = await asyncio.to_thread(app.result_of, reference, command_id)
        if earlier is not None:
            return case_state(earlier)
        raise CaseClosedError(closed_text(reference, current.status, current.last_decision))
    try:
        try:
            return await client.get_workflow_handle(reference).execute_update(
                CaseWorkflow.act, arg, id=update_id(command_id), result_type=CaseState
            )
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        start = _start_operation(settings, current, app)
        try:
            return await client.execute_update_with_start_workflow(
                CaseWorkflow.act,
                arg,
                id=update_id(command_id),
                start_workflow_operation=start,
                result_type=CaseState,
            )
        except BaseException:
            await _settle(start)
            raise
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError):
            raise CommandRefusedError(cause.message, cause.type) from None
        raise CommandRefusedError(str(cause)) from None


def update_id(command_id: str) -> str:
    """The id of one attempt at a command: the command id, then an attempt of its own."""
    return f"{command_id}~{uuid.uuid4().hex[:12]}"


async def _settle(start: WithStartWorkflowOperation[Any, CaseState]) -> None:
    """Collect the start operation's own outcome after a failed update-with-start, so its error is
    answered once (by the caller's handling), not logged again as a future nobody awaited."""
    with suppress(BaseException):
        await start.workflow_handle()


@dataclass
class Sweep:
    """What one sweep found: every case, the live ones, those whose workflow had ended outside the
    engine or was missing (recorded on the case, and started again), and the workflows it started."""

    cases: int = 0
    live: int = 0
    interrupted: int = 0
    started: int = 0
    orphans: int | None = None  # running workflows of this store with no live case (None: Temporal cannot list)

    @property
    def without_workflow(self) -> int:
        """Live cases found with no running workflow (each was given one: `started`)."""
        return self.started


async def sweep(client: Client, settings: Settings, app: CaseService, *, now: datetime | None = None) -> Sweep:
    """Give every live case its workflow, and put on the case's record each one that had ended outside
    the engine's control: terminated or cancelled (Temporal's UI or CLI), timed out, failed, or missing
    (Temporal lost its state) while the case could still change. Each is recorded once, keyed by the run
    that ended (`CaseService.record_interruption`), then started again from the case as stored, as
    `ensure_workflow` does. A workflow that is running is left alone; running this twice records and
    starts nothing more. The worker runs it every CONCORDAT_WATCH_SECONDS; `concordat resume` once."""
    found = Sweep()
    now = now or datetime.now(UTC)
    live: set[str] = set()
    for reference in await asyncio.to_thread(lambda: list(app.references())):
        found.cases += 1
        try:
            state = await asyncio.to_thread(app.state, reference)
        except CaseNotFoundError:
            continue  # numbered but not in the store (`concordat audit verify` names such a gap): nothing to run
        if not is_live(state):
            continue
        found.live += 1
        live.add(reference)
        handle = client.get_workflow_handle(reference)
        try:
            described: WorkflowExecutionDescription | None = await handle.describe()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            described = None
        if described is not None and described.status not in ENDED:
            continue  # running (or continued as new: its latest run is what describe answers)
        state = await asyncio.to_thread(app.state, reference)  # it may have closed meanwhile, and its run with it
        if not is_live(state):
            continue
        if described is None and now - state.started_at < MISSING_GRACE:
            await ensure_workflow(client, settings, state, app)  # being started right now, most likely
            found.started += 1
            continue
        await _record_interruption(client, app, reference, state.version, described, now)
        found.interrupted += 1
        await ensure_workflow(client, settings, await asyncio.to_thread(app.state, reference), app)
        found.started += 1
    found.orphans = await _orphans(client, settings, app, live)
    return found


async def _orphans(client: Client, settings: Settings, app: CaseService, live: set[str]) -> int | None:
    """How many workflows of this store's task queue run with no live case: the case closed (or is
    not in the store) while its workflow went on. Counted and logged, not ended: a workflow ends by
    itself once its case has nothing left to do, and ending one by hand is an operator's call.
    None when Temporal cannot list workflows (a server without visibility)."""
    query = f"ExecutionStatus = 'Running' AND TaskQueue = '{task_queue(settings, app)}'"
    found = 0
    try:
        async for execution in client.list_workflows(query):
            if execution.id == STORE_BINDING_ID or execution.id in live or execution.id.startswith(SCHEDULED_PREFIX):
                continue  # the binding, a live case's, or a schedule's firing (it opens its case and ends)
            try:
                state = await asyncio.to_thread(app.state, execution.id)
            except CaseNotFoundError:
                state = None
            if state is None or not is_live(state):
                found += 1
                log.warning("case.workflow_without_live_case", case=execution.id, run_id=execution.run_id)
    except RPCError as err:
        log.info("sweep.cannot_list_workflows", error=str(err).splitlines()[0] if str(err) else err.status)
        return None
    return found


async def _record_interruption(
    client: Client,
    app: CaseService,
    reference: str,
    version: int,
    described: WorkflowExecutionDescription | None,
    now: datetime,
) -> None:
    if described is None:
        how, status, run_id, closed_at, reason, identity = "missing", "NOT_FOUND", "", None, "", ""
        command_id = f"{reference}:workflow-missing:v{version}"
    else:
        assert described.status is not None  # noqa: S101 - ENDED holds only real statuses
        how, status, run_id, closed_at = (
            ENDED[described.status],
            described.status.name,
            described.run_id,
            described.close_time,
        )
        reason, identity = await _why_it_ended(client, reference, run_id)
        command_id = f"{reference}:workflow-ended:{run_id}"

    def record() -> None:
        token = workflow_id_cvar.set(reference)
        try:
            app.record_interruption(
                reference,
                how=how,
                workflow_status=status,
                reason=reason,
                identity=identity,
                run_id=run_id,
                closed_at=closed_at,
                command_id=command_id,
                at=now,
            )
        finally:
            workflow_id_cvar.reset(token)

    await asyncio.to_thread(record)
    log.warning("case.workflow_interrupted", case=reference, how=how, run_id=run_id, reason=reason, identity=identity)


async def _why_it_ended(client: Client, reference: str, run_id: str) -> tuple[str, str]:
    """The reason and identity Temporal recorded with a run's close event, as far as it has them."""
    try:
        answer = await client.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=client.namespace,
                execution=WorkflowExecution(workflow_id=reference, run_id=run_id),
                history_event_filter_type=HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT,
            )
        )
    except RPCError:
        return "", ""
    if not answer.history.events:
        return "", ""
    return await _reason(client, answer.history.events[-1])


async def _reason(client: Client, closed: HistoryEvent) -> tuple[str, str]:
    if closed.HasField("workflow_execution_terminated_event_attributes"):
        terminated = closed.workflow_execution_terminated_event_attributes
        return terminated.reason, terminated.identity
    if closed.HasField("workflow_execution_failed_event_attributes"):
        try:
            error = await client.data_converter.decode_failure(
                closed.workflow_execution_failed_event_attributes.failure
            )
        except Exception:  # noqa: BLE001 - a failure we cannot read is still a failure: record it without its words
            return "", ""
        return str(error), ""
    return "", ""
