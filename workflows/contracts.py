"""What the workflows exchange with their callers and their activities: names and pydantic models.

This module is all a workflow knows of the rest of the engine. Every workflow, update and activity
takes one model, so fields can be added later without breaking running cases; add fields with
defaults only (a running workflow's history holds the old shape).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Activity names: the worker registers its methods under these, workflows call them by name.
LOAD_CASE = "load_case"
DECIDE_CASE = "decide_case"
WITHDRAW_CASE = "withdraw_case"
REMIND_CASE = "remind_case"
ESCALATE_CASE = "escalate_case"
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


class AllowedAction(Contract):
    stage: str
    role: str
    outcomes: list[str]
    stage_outcomes: list[str] = []


class ActionRef(Contract):
    """A command someone may give now, by name, and the roles that may give it."""

    name: str
    roles: list[str]


class TimerRef(Contract):
    """An instant the workflow must wake at, named for what the domain then does."""

    name: str
    at: datetime


class CaseState(Contract):
    """The case as the domain last returned it: the rules' answers the workflow waits on."""

    reference: str
    kind: str = ""
    title: str = ""
    status: str
    stage: str
    escalated_to: str | None = None
    deadline: datetime | None = None
    reminder_at: datetime | None = None
    reminder_sent: bool = False
    deadline_missed: bool = False
    stage_seq: int
    version: int
    allowed_actions: list[AllowedAction] = []
    withdraw_roles: list[str] = []
    last_decision: str | None = None
    # Disputes and termination notices: what may be done, and when the clock must wake. The case
    # lives while either list has something in it.
    actions: list[ActionRef] = []
    timers: list[TimerRef] = []


class ProposalInput(Contract):
    """Starts `ProposalWorkflow`; the case already exists in the store with this state."""

    reference: str
    state: CaseState


class DecideInput(Contract):
    actor: ActorRef
    stage: str = Field(min_length=1)
    outcome: str = Field(min_length=1)
    minutes_ref: str = ""
    note: str = ""
    stage_outcome: str | None = None
    new_deadline: date | None = None


class WithdrawInput(Contract):
    actor: ActorRef
    note: str = ""


class LoadCaseInput(Contract):
    reference: str


class DecideCaseInput(Contract):
    reference: str
    command_id: str
    at: datetime
    decision: DecideInput


class WithdrawCaseInput(Contract):
    reference: str
    command_id: str
    at: datetime
    withdrawal: WithdrawInput


class TimerCommandInput(Contract):
    """A reminder or an escalation, run by the workflow's clock."""

    reference: str
    command_id: str
    at: datetime


class CaseInput(Contract):
    """Starts a `DisputeWorkflow` or `TerminationWorkflow`; the case exists in the store already."""

    reference: str
    state: CaseState


class ActInput(Contract):
    """A person's command on a dispute or notice: its name and its own fields."""

    actor: ActorRef
    action: str = Field(min_length=1)
    fields: dict[str, Any] = {}


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
