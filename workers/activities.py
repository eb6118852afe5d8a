"""The activities: thin calls into the domain application, one each.

They are methods of a class built in the composition root with the application injected. A domain
refusal becomes a non-retryable `ApplicationError` whose type names the rule; anything else (the
store is down) propagates, and Temporal retries it. Every command carries the command id the workflow
made, so a retry after a commit finds the command applied and returns the same state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.actor import Actor
from domain.application import CaseService
from domain.case import CaseView
from domain.errors import ConcordatError
from domain.recorded import workflow_id_cvar
from domain.refusals import RefusalLog
from workers.proof import ProofError, verify
from workflows.contracts import (
    ACT_ON_CASE,
    FIRE_TIMER,
    LOAD_CASE,
    ActOnCaseInput,
    ActorRef,
    CaseState,
    FireTimerInput,
    LoadCaseInput,
)

log = structlog.get_logger("concordat.activities")
T = TypeVar("T")


def case_state(state: CaseView) -> CaseState:
    """The domain's answer in the workflow's vocabulary: the fields the workflow waits on, taken one
    by one (not `asdict` of the whole view, which would deep-copy the case's details and history
    only for the contract to drop them)."""
    fields = {name: getattr(state, name) for name in CaseState.model_fields if name not in ("actions", "timers")}
    return CaseState.model_validate(
        {**fields, "actions": [asdict(a) for a in state.actions], "timers": [asdict(t) for t in state.timers]}
    )


def _actor(ref: ActorRef) -> Actor:
    return Actor(id=ref.id, role=ref.role)


class CaseActivities:
    """`command_key` verifies the proof each person's command carries (`workers/proof.py`): a command
    whose proof does not hold writes nothing but its refusal."""

    def __init__(
        self,
        app: CaseService,
        *,
        command_key: bytes,
        pause_after_commit: float = 0.0,
        pause_once_file: Path | None = None,
    ) -> None:
        self.app = app
        self.command_key = command_key
        self.refusals = RefusalLog(app)
        # Fault injection for the fault tests (settings.fault_pause_after_commit); zero otherwise.
        self.pause_after_commit = pause_after_commit
        self.pause_once_file = pause_once_file

    def _run(
        self,
        reference: str,
        call: Callable[[], CaseView],
        *,
        writes: bool = True,
        refused: Callable[[ConcordatError], None] | None = None,
        **context: object,
    ) -> CaseState:
        workflow_id = _workflow_id()
        with structlog.contextvars.bound_contextvars(case=reference, workflow_id=workflow_id, **context):
            token = workflow_id_cvar.set(workflow_id or "")
            try:
                state = call()
            except ConcordatError as err:
                log.info("command.refused", error=str(err), rule=type(err).__name__)
                if refused is not None:
                    refused(err)
                raise ApplicationError(str(err), type=type(err).__name__, non_retryable=True) from None
            finally:
                workflow_id_cvar.reset(token)
        if writes and self.pause_after_commit and self._first_pause():
            time.sleep(self.pause_after_commit)
        return case_state(state)

    def _first_pause(self) -> bool:
        """Fault tests: every pause, or (with `pause_once_file`) the one that creates the file alone."""
        if self.pause_once_file is None:
            return True
        try:
            self.pause_once_file.open("x").close()
        except FileExistsError:
            return False
        return True

    @activity.defn(name=LOAD_CASE)
    def load_case(self, input: LoadCaseInput) -> CaseState:
        return self._run(input.reference, lambda: self.app.state(input.reference, history=False), writes=False)

    @activity.defn(name=ACT_ON_CASE)
    def act_on_case(self, input: ActOnCaseInput) -> CaseState:
        a = input.act
        door = self._proven_door(input)

        def refused(err: ConcordatError) -> None:
            self.refusals.record(
                door=door,
                command=a.action,
                reason=str(err),
                rule=type(err).__name__,
                actor=_actor(a.actor),
                reference=input.reference,
                command_id=input.command_id,
                at=input.at,
            )

        return self._run(
            input.reference,
            lambda: self.app.act(
                input.reference,
                actor=_actor(a.actor),
                action=a.action,
                fields=a.fields,
                command_id=input.command_id,
                at=input.at,
            ),
            refused=refused,
            actor=str(a.actor),
        )

    def _proven_door(self, input: ActOnCaseInput) -> str:
        """The door a command came through if its proof holds; else the refusal is recorded (once per
        command id) and the command refused before anything else is read or written."""
        try:
            return verify(
                self.command_key, input.act, reference=input.reference, command_id=input.command_id, taken_at=input.at
            )
        except ProofError as err:
            a = input.act
            log.warning("command.forged", case=input.reference, claimed=str(a.actor), reason=str(err))
            self.refusals.record(
                door="temporal",
                command=a.action,
                reason=str(err),
                rule="ForgedCommandError",
                claimed=f"{a.actor.role}:{a.actor.id}",
                reference=input.reference,
                command_id=input.command_id,
                at=input.at,
            )
            raise ApplicationError(
                f"refused: {err}; nothing was written (commands are accepted only from Concordat's CLI, API "
                "and pages, signed for a proven person)",
                type="ForgedCommandError",
                non_retryable=True,
            ) from None

    @activity.defn(name=FIRE_TIMER)
    def fire_timer(self, input: FireTimerInput) -> CaseState:
        return self._run(
            input.reference,
            lambda: self.app.fire_timer(input.reference, timer=input.timer, command_id=input.command_id, at=input.at),
        )

    def all(self) -> list[Callable[..., CaseState]]:
        return [self.load_case, self.act_on_case, self.fire_timer]


def _workflow_id() -> str | None:
    return activity.info().workflow_id if activity.in_activity() else None
