"""What the workflows exchange with their callers and their activities: names and pydantic models.

This module is all a workflow knows of the rest of the engine. Every workflow, update and activity
takes one model, so fields can be added later without breaking running cases; add fields with
defaults only (a running workflow's history holds the old shape).
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

# Activity names: the worker registers its methods under these, workflows call them by name.
LOAD_CASE = "load_case"
DECIDE_CASE = "decide_case"
WITHDRAW_CASE = "withdraw_case"
REMIND_CASE = "remind_case"
ESCALATE_CASE = "escalate_case"

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
