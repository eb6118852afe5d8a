"""What the workflows exchange with their callers and their activities: names and pydantic models.

This module is all a workflow knows of the rest of the engine. Every workflow, update and activity
takes one model, so fields can be added later without breaking running cases; add fields with
defaults only (a running workflow's history holds the old shape).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Activity names: the worker registers its methods under these, workflows call them by name.
LOAD_CASE = "load_case"
ACT_ON_CASE = "act_on_case"
FIRE_TIMER = "fire_timer"

# `ApplicationError.type` of a refusal that a later look at the case may explain (the deadline
# moved, someone decided first): the workflow reloads the case rather than failing.
STALE_TYPES = ("DeadlineNotReachedError", "WrongStageError", "CaseClosedError")


class Contract(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ActorRef(Contract):
    id: str = Field(min_length=1)
    role: str = Field(min_length=1)

    def __str__(self) -> str:
        return f"{self.role}:{self.id}"


class ActionRef(Contract):
    """A command someone may give now, by name, and the roles that may give it; for a decision, its
    stage and the outcomes offered there."""

    name: str
    roles: list[str]
    stage: str = ""
    outcomes: list[str] = []
    stage_outcomes: list[str] = []


class TimerRef(Contract):
    """An instant the workflow must wake at, named for what the domain then does."""

    name: str
    at: datetime


class CaseState(Contract):
    """The case as the domain last returned it: the rules' answers the workflow waits on. The case
    lives while `actions` or `timers` has something in it. (Fields are added with defaults only:
    running workflows' histories hold the older shapes.)"""

    reference: str
    kind: str = ""
    title: str = ""
    status: str
    stage: str
    deadline: datetime | None = None
    stage_seq: int
    version: int
    last_decision: str | None = None
    actions: list[ActionRef] = []
    timers: list[TimerRef] = []


class LoadCaseInput(Contract):
    reference: str


class CaseInput(Contract):
    """Starts a `CaseWorkflow`; the case exists in the store already."""

    reference: str
    state: CaseState


class CommandProof(Contract):
    """Who proved the person (`door`: cli, api, web), when, and an HMAC over the command
    (`workers/proof.py`): the workers act only on commands whose proof holds."""

    door: str
    signed_at: str
    signature: str


class ActInput(Contract):
    """A person's command on a case: its name and its own fields, and the proof of who sent it."""

    actor: ActorRef
    action: str = Field(min_length=1)
    fields: dict[str, Any] = {}
    proof: CommandProof | None = None
    # The command id the proof signs: the store's idempotency key. The update's own id carries an
    # attempt besides (`engine.send_update`), so a repeat after an unknown outcome is not answered
    # with the failure Temporal remembers under the first attempt's id. Absent from commands sent
    # before this field existed: their update id was the command id.
    command_id: str | None = None


class ActOnCaseInput(Contract):
    reference: str
    command_id: str
    at: datetime
    act: ActInput


class FireTimerInput(Contract):
    reference: str
    command_id: str
    at: datetime
    timer: str


OPEN_SCHEDULED_CASE = "open_scheduled_case"


class ScheduledFiring(Contract):
    """Starts a `ScheduledCaseWorkflow`: the schedule's name, and the instant fired for when not
    Temporal's own (`TemporalScheduledStartTime`)."""

    schedule: str
    scheduled_at: datetime | None = None


class OpenScheduledInput(Contract):
    schedule: str
    scheduled_at: datetime
    command_id: str
    at: datetime
