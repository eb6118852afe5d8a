"""`ProposalWorkflow`: the clock and the inbox of one proposal. Workflow id = case reference.

It decides nothing. Every rule (routes, deadlines, who may decide what) is the domain's; each
activity returns the case's new state (`CaseState`) and the workflow waits on the instants in it.

Updates
    `decide(DecideInput) -> CaseState`   a forum's decision; the validator rejects a closed case, a
                                          wrong stage, role or outcome against the allowed actions
                                          the domain returned, before anything is written.
    `withdraw(WithdrawInput) -> CaseState` a JCU lead withdraws the case.
    The update id is the command id, so a client that repeats an update (same id) gets the first
    answer from Temporal, and an activity retried after its commit gets it from the store.
Queries
    `state() -> CaseState`                current stage, deadline, reminder and allowed actions.
Waits
    until the stage's reminder instant (then `remind_case`), until its deadline (then
    `escalate_case`), each cut short by a decision that opens a new stage; with no deadline pending
    (overdue, nowhere left to escalate) it waits for a decision alone. It ends when the case closes,
    after every update handler has finished.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        DECIDE_CASE,
        ESCALATE_CASE,
        LOAD_CASE,
        REMIND_CASE,
        STALE_TYPES,
        WITHDRAW_CASE,
        CaseState,
        DecideCaseInput,
        DecideInput,
        LoadCaseInput,
        ProposalInput,
        TimerCommandInput,
        WithdrawCaseInput,
        WithdrawInput,
    )

# Infrastructure faults (a database restart) are retried until they pass; refusals by the rules are
# non-retryable ApplicationErrors raised by the activities.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
ACTIVITY_TIMEOUT = timedelta(seconds=30)
# A person waiting on a decision gets an answer within this, even while the store is down; the
# command id makes a later retry by that person safe.
UPDATE_ACTIVITY_DEADLINE = timedelta(minutes=2)
# Timers fire at or after their instant; a second's margin keeps `at` past the deadline the
# domain checks against, whatever the rounding.
TIMER_MARGIN = timedelta(seconds=1)


def check_decision(state: CaseState, decision: DecideInput) -> tuple[str, str] | None:
    """Why `decision` cannot be taken now, from the allowed actions the domain returned, or None:
    (the domain error's name, so a caller can tell a stale command from a forbidden one; the message)."""
    already = f"; decision already recorded: {state.last_decision}" if state.last_decision else ""
    if state.status != "open":
        return "CaseClosedError", f"{state.reference} is {state.status}; it takes no more commands{already}"
    action = next((a for a in state.allowed_actions if a.stage == decision.stage), None)
    if action is None:
        waiting = ", ".join(a.stage for a in state.allowed_actions) or state.stage
        return "WrongStageError", f"{state.reference} is awaiting {waiting}, not {decision.stage}{already}"
    if decision.actor.role != action.role:
        return "NotAllowedError", (
            f"role {decision.actor.role} may not decide at {decision.stage} for "
            f"{state.reference}; {action.role} decides there"
        )
    if decision.outcome not in action.outcomes:
        return "OutcomeNotAllowedError", (
            f"outcome {decision.outcome!r} is not allowed at {decision.stage} for "
            f"{state.reference}; allowed: {', '.join(action.outcomes)}"
        )
    if decision.outcome == "decide" and decision.stage_outcome not in action.stage_outcomes:
        return "OutcomeNotAllowedError", "decide in the stage's place needs a stage outcome, one of: " + ", ".join(
            action.stage_outcomes
        )
    return None


@workflow.defn
class ProposalWorkflow:
    @workflow.init
    def __init__(self, input: ProposalInput) -> None:
        self._state = input.state
        self._lock = asyncio.Lock()
        self._stuck_seq = -1

    @workflow.run
    async def run(self, input: ProposalInput) -> CaseState:
        async with self._lock:
            self._state = await self._call(LOAD_CASE, LoadCaseInput(reference=input.reference))
        while self._state.status == "open":
            seq = self._state.stage_seq
            timer = self._next_timer()
            if timer is None:
                await workflow.wait_condition(lambda seq=seq: self._moved_on(seq))
                continue
            due, activity = timer
            wait = (due - workflow.now()) + TIMER_MARGIN
            if wait > timedelta(0):
                try:
                    await workflow.wait_condition(lambda seq=seq: self._moved_on(seq), timeout=wait)
                    continue  # a decision opened a new stage: its own instants apply
                except TimeoutError:
                    pass
            async with self._lock:
                if self._moved_on(seq):
                    continue
                command_id = f"{input.reference}:{activity}:{seq}"
                self._state = await self._timer_command(activity, command_id)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    @workflow.query
    def state(self) -> CaseState:
        return self._state

    @workflow.update
    async def decide(self, decision: DecideInput) -> CaseState:
        async with self._lock:
            command = DecideCaseInput(
                reference=self._state.reference,
                command_id=self._command_id(),
                at=workflow.now(),
                decision=decision,
            )
            self._state = await self._command(DECIDE_CASE, command)
        return self._state

    @decide.validator
    def _validate_decide(self, decision: DecideInput) -> None:
        problem = check_decision(self._state, decision)
        if problem:
            raise ApplicationError(problem[1], type=problem[0], non_retryable=True)

    @workflow.update
    async def withdraw(self, withdrawal: WithdrawInput) -> CaseState:
        async with self._lock:
            command = WithdrawCaseInput(
                reference=self._state.reference,
                command_id=self._command_id(),
                at=workflow.now(),
                withdrawal=withdrawal,
            )
            self._state = await self._command(WITHDRAW_CASE, command)
        return self._state

    @withdraw.validator
    def _validate_withdraw(self, withdrawal: WithdrawInput) -> None:
        if self._state.status != "open":
            raise ApplicationError(f"{self._state.reference} is {self._state.status}; it cannot be withdrawn",
                                   type="CaseClosedError", non_retryable=True)
        if withdrawal.actor.role not in self._state.withdraw_roles:
            raise ApplicationError(
                f"role {withdrawal.actor.role} may not withdraw {self._state.reference}; allowed: "
                + ", ".join(self._state.withdraw_roles), type="NotAllowedError", non_retryable=True,
            )

    # --- internals --------------------------------------------------------------------------

    def _moved_on(self, seq: int) -> bool:
        return self._state.status != "open" or self._state.stage_seq != seq

    def _next_timer(self) -> tuple[datetime, str] | None:
        s = self._state
        if s.stage_seq == self._stuck_seq:
            return None
        if s.reminder_at is not None and not s.reminder_sent:
            return s.reminder_at, REMIND_CASE
        if s.deadline is not None and not s.deadline_missed:
            return s.deadline, ESCALATE_CASE
        return None

    @staticmethod
    def _command_id() -> str:
        info = workflow.current_update_info()
        return info.id if info is not None else str(workflow.uuid4())

    async def _call(self, activity: str, arg: object, **options: object) -> CaseState:
        return await workflow.execute_activity(
            activity,
            arg,
            result_type=CaseState,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            **options,
        )

    async def _command(self, activity: str, arg: object) -> CaseState:
        """A person's command: a refusal fails the update with the domain's own words."""
        try:
            return await self._call(activity, arg, schedule_to_close_timeout=UPDATE_ACTIVITY_DEADLINE)
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError):
                # Someone else may have changed the case: show the next caller the truth.
                self._state = await self._call(LOAD_CASE, LoadCaseInput(reference=self._state.reference))
                raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from None
            raise ApplicationError(
                "the store did not answer in time; the command may or may not be recorded: "
                "repeat it with the same command id to be sure (it will not be recorded twice)",
                type="StoreUnavailable",
                non_retryable=True,
            ) from None

    async def _timer_command(self, activity: str, command_id: str) -> CaseState:
        arg = TimerCommandInput(reference=self._state.reference, command_id=command_id, at=workflow.now())
        try:
            return await self._call(activity, arg)
        except ActivityError as err:
            cause = err.cause
            if not isinstance(cause, ApplicationError):
                raise
            if cause.type not in STALE_TYPES:
                # A rule refused the timer for good (e.g. the policy lists no next meeting): the
                # case waits for a person, and the failure is in the activity's history.
                workflow.logger.warning("timer command %s refused: %s", activity, cause.message)
                self._stuck_seq = self._state.stage_seq
            return await self._call(LOAD_CASE, LoadCaseInput(reference=self._state.reference))
