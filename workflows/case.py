"""`CaseWorkflow`: the clock and the inbox of one case, whatever its kind. Workflow id = case reference.

It decides nothing. Every rule is the domain's: each activity returns the case as the domain left it
(`CaseState`): what may be done now (`actions`, each with the roles that may, and for a decision its
stage and outcomes) and when to wake (`timers`). The workflow waits on those.

Update `act(ActInput) -> CaseState`: a person's command by name (`decide`, `withdraw`, `nominate`,
…). There is no validator: every command reaches the worker, which checks the command's proof of who
sent it and then the domain's rules, and records each refusal on the refusal log (a validator's
rejection would leave no trace an auditor can read). The command id is the signed command's own
(`ActInput.command_id`), the store's idempotency key: a repeat, or an activity retried after its
commit, gets the first answer from the store. The update's id is the command id and an attempt, so a
repeat after an outcome nobody knew (the store was down) runs again rather than being answered with
the failure Temporal remembers for the first attempt; after any activity failure the workflow
reloads the case from the store, so its stage and timers are the store's.
Query `state() -> CaseState`.
Waits: until the earliest timer (then `fire_timer` with the timer's name, which names the command),
cut short by any change to the case; the workflow ends when the case has neither actions nor timers,
after every update handler has finished.

`DisputeWorkflow`, `TerminationWorkflow`, `VariationWorkflow` and `FundingWorkflow` are this workflow
under the names cases were started with before one workflow ran every kind: registered so that those
still running carry on (their recorded histories replay); `concordat resume --migrate` moves them to
`CaseWorkflow`. `ProposalWorkflow` is gone: see the runbook, "Moving running cases to CaseWorkflow".
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ACT_ON_CASE,
        FIRE_TIMER,
        LOAD_CASE,
        STALE_TYPES,
        ActInput,
        ActOnCaseInput,
        CaseInput,
        CaseState,
        FireTimerInput,
        LoadCaseInput,
        TimerRef,
    )

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
ACTIVITY_TIMEOUT = timedelta(seconds=30)
UPDATE_ACTIVITY_DEADLINE = timedelta(minutes=2)
TIMER_MARGIN = timedelta(seconds=1)
# Patch id: the command id comes from the signed command, not the update's id (which carries an attempt).
COMMAND_ID_IN_ACT = "command-id-in-act"
# Patch id: an activity's failure that is not a refusal is an unknown outcome (StoreUnavailable).
UNKNOWN_IS_UNKNOWN = "unknown-outcome-is-store-unavailable"


class CaseTimeline:
    """The body of `CaseWorkflow` (and of the legacy names): the subclasses carry the Temporal
    definitions, because Temporal wants `@workflow.run` and the handlers on each defined class."""

    def _setup(self, input: CaseInput) -> None:
        self._state = input.state
        self._lock = asyncio.Lock()
        self._stuck: set[str] = set()

    def _live(self) -> bool:
        return bool(self._state.actions or self._state.timers)

    def _next_timer(self) -> TimerRef | None:
        pending = [t for t in self._state.timers if t.name not in self._stuck]
        return min(pending, key=lambda t: t.at) if pending else None

    async def _run_timeline(self, input: CaseInput) -> CaseState:
        async with self._lock:
            self._state = await self._call(LOAD_CASE, LoadCaseInput(reference=input.reference))
        while self._live():
            version = self._state.version
            timer = self._next_timer()
            changed = lambda version=version: self._state.version != version  # noqa: E731
            if timer is None:
                await workflow.wait_condition(changed)
                continue
            wait = (timer.at - workflow.now()) + TIMER_MARGIN
            if wait > timedelta(0):
                try:
                    await workflow.wait_condition(changed, timeout=wait)
                    continue  # the case changed: its timers may have too
                except TimeoutError:
                    pass
            async with self._lock:
                if changed():
                    continue
                self._state = await self._fire(timer.name)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    async def _act(self, act: ActInput) -> CaseState:
        async with self._lock:
            command = ActOnCaseInput(
                reference=self._state.reference,
                command_id=self._command_id(act),
                at=workflow.now(),
                act=act,
            )
            try:
                self._state = await self._call(ACT_ON_CASE, command, schedule_to_close_timeout=UPDATE_ACTIVITY_DEADLINE)
            except ActivityError as err:
                cause = err.cause
                self._state = await self._call(LOAD_CASE, LoadCaseInput(reference=self._state.reference))
                if isinstance(cause, ApplicationError) and (
                    cause.non_retryable or not workflow.patched(UNKNOWN_IS_UNKNOWN)
                ):
                    # A refusal: the domain's (or the proof's) own words. Any other error raised in the
                    # activity (a lost connection, a full disk) arrives as a retryable ApplicationError
                    # named after its class: its outcome is unknown, said as such since the patch.
                    raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from None
                raise ApplicationError(
                    "the store did not answer in time; the command may or may not be recorded: repeat it "
                    "with the same command id to be sure (it will not be recorded twice)",
                    type="StoreUnavailable",
                    non_retryable=True,
                ) from None
        return self._state

    @staticmethod
    def _command_id(act: ActInput) -> str:
        """The command id the proof signs. Commands sent before `ActInput.command_id` existed used it
        as the update id, and their histories replay that way; the patch marks the change."""
        if act.command_id and workflow.patched(COMMAND_ID_IN_ACT):
            return act.command_id
        info = workflow.current_update_info()
        return info.id if info is not None else str(workflow.uuid4())

    async def _fire(self, name: str) -> CaseState:
        arg = FireTimerInput(
            reference=self._state.reference, command_id=f"{self._state.reference}:{name}", at=workflow.now(), timer=name
        )
        try:
            return await self._call(FIRE_TIMER, arg)
        except ActivityError as err:
            cause = err.cause
            if not isinstance(cause, ApplicationError):
                raise
            if cause.type not in STALE_TYPES:
                workflow.logger.warning("timer %s refused: %s", name, cause.message)
                self._stuck.add(name)
            return await self._call(LOAD_CASE, LoadCaseInput(reference=self._state.reference))

    async def _call(self, activity: str, arg: object, schedule_to_close_timeout: timedelta | None = None) -> CaseState:
        state: CaseState = await workflow.execute_activity(
            activity,
            arg,
            result_type=CaseState,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            schedule_to_close_timeout=schedule_to_close_timeout,
            retry_policy=RETRY,
        )
        return state


@workflow.defn
class CaseWorkflow(CaseTimeline):
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


# Cases started before one workflow ran every kind: the same workflow under their old type names
# (Temporal wants the run method and handlers defined on each workflow class, at module level).
@workflow.defn
class DisputeWorkflow(CaseTimeline):
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


LEGACY_WORKFLOWS: list[type] = [DisputeWorkflow, TerminationWorkflow, VariationWorkflow, FundingWorkflow]
ALL_WORKFLOWS: list[type] = [CaseWorkflow, *LEGACY_WORKFLOWS]
# Workflow types `concordat resume --migrate` moves to `CaseWorkflow` (ProposalWorkflow's code is gone).
LEGACY_TYPES = ("ProposalWorkflow", *(w.__name__ for w in LEGACY_WORKFLOWS))
