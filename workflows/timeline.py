"""The clock and inbox shared by the case kinds whose rules come back as data: what may be done now
(`actions`) and when to wake (`timers`). `DisputeWorkflow` and `TerminationWorkflow` are this
machinery under their own names; every rule is the domain's.

Update `act(ActInput) -> CaseState`: a person's command by name; the validator refuses a command
that is not among the actions or a role that may not give it, before anything is written. The
update id is the command id.
Query `state() -> CaseState`.
Waits: until the earliest timer (then `fire_timer` with the timer's name, which names the command),
cut short by any change to the case; the workflow ends when the case has neither actions nor timers,
after every update handler has finished.
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


def check_act(state: CaseState, act: ActInput) -> tuple[str, str] | None:
    """Why `act` cannot be taken now, from the actions the domain returned, or None: (the domain
    error's name, the message)."""
    allowed = {a.name: a.roles for a in state.actions}
    if not allowed:
        return "CaseClosedError", f"{state.reference} is {state.status}; it takes no more commands"
    if act.action not in allowed:
        return "WrongStageError", f"{state.reference} cannot take {act.action!r} now; it can take: {', '.join(allowed)}"
    asked = act.fields.get("stage")
    if act.action == "decide" and asked and asked != state.stage:
        return "WrongStageError", f"{state.reference} is awaiting {state.stage}, not {asked}"
    if act.actor.role not in allowed[act.action]:
        return "NotAllowedError", (f"role {act.actor.role} may not {act.action} on {state.reference}; allowed: "
                                   + ", ".join(allowed[act.action]))
    return None


class CaseTimeline:
    """Shared body of the timeline workflows. Subclasses carry the Temporal definitions."""

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
            info = workflow.current_update_info()
            command = ActOnCaseInput(
                reference=self._state.reference,
                command_id=info.id if info is not None else str(workflow.uuid4()),
                at=workflow.now(),
                act=act,
            )
            try:
                self._state = await self._call(ACT_ON_CASE, command, schedule_to_close_timeout=UPDATE_ACTIVITY_DEADLINE)
            except ActivityError as err:
                cause = err.cause
                self._state = await self._call(LOAD_CASE, LoadCaseInput(reference=self._state.reference))
                if isinstance(cause, ApplicationError):
                    raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from None
                raise ApplicationError(
                    "the store did not answer in time; the command may or may not be recorded: repeat it "
                    "with the same command id to be sure (it will not be recorded twice)",
                    type="StoreUnavailable", non_retryable=True,
                ) from None
        return self._state

    def _validate(self, act: ActInput) -> None:
        problem = check_act(self._state, act)
        if problem:
            raise ApplicationError(problem[1], type=problem[0], non_retryable=True)

    async def _fire(self, name: str) -> CaseState:
        arg = FireTimerInput(reference=self._state.reference, command_id=f"{self._state.reference}:{name}",
                             at=workflow.now(), timer=name)
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

    async def _call(self, activity: str, arg: object, **options: object) -> CaseState:
        return await workflow.execute_activity(
            activity, arg, result_type=CaseState, start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY, **options,
        )
