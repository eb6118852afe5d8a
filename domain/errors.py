"""The errors the domain raises when a rule refuses a command.

Every error names the broken rule and carries what a person needs to put it right (the allowed
outcomes, the current stage, the decision already recorded). They are expected outcomes of using the
system, not faults: entry points turn them into one clear line (CLI) or a 4xx response (HTTP), and
activities turn them into non-retryable Temporal failures.
"""

from __future__ import annotations


class ConcordatError(Exception):
    """Base of every refusal the domain can give."""


class InvalidInputError(ConcordatError):
    """A value is malformed (an unknown kind, a negative value, an unknown party)."""


class IdempotencyKeyReusedError(InvalidInputError):
    """The same person's idempotency key on the same route came again with other fields."""


class PolicyError(ConcordatError):
    """The governance policy file is malformed or cannot answer a question asked of it."""


class CaseNotFoundError(ConcordatError):
    """No case has that reference."""


class NotAllowedError(ConcordatError):
    """The actor's role may not issue this command."""


class NotYourForumError(NotAllowedError):
    """A secretary tried to record the decision of a forum other than their own."""


class CaseClosedError(ConcordatError):
    """The case has ended (approved, rejected or withdrawn); it takes no more commands."""


def closed_text(reference: str, status: str, last_decision: str | None = None) -> str:
    """The one wording of "this case has ended", naming the decision that ended it when there is one
    (the person who lost a race to decide learns what the winner recorded)."""
    already = f"; decision already recorded: {last_decision}" if last_decision else ""
    return f"{reference} is {status}; it takes no more commands{already}"


class WrongStageError(ConcordatError):
    """A decision names a stage the case is not at (often: another person decided first)."""


class OutcomeNotAllowedError(ConcordatError):
    """The outcome is not one the stage allows for this case."""


class DeadlineNotReachedError(ConcordatError):
    """Escalation or a reminder was asked for before its time."""


class CommandConflictError(ConcordatError):
    """A command id was reused for a different command."""


class TriggeredTooSoonError(ConcordatError):
    """A schedule was fired by hand again within a minute of the last time: the same report or review
    twice (a double press, or two administrators at once), not a second one wanted."""


class NoticeTooShortError(ConcordatError):
    """A termination notice asks for a date earlier than the notice period allows (MOU, Termination)."""


class NotAPartyError(NotAllowedError):
    """The actor's party is not a party to this case, or not a member of the partnership."""


class RequirementNotMetError(ConcordatError):
    """A case would enter a stage whose route requires something not yet done (e.g. a contractual
    lever executed before the provider's Chief Executive was informed: MOU, Contract Management)."""


ChiefExecutiveNotInformedError = RequirementNotMetError


class FundWouldOverspendError(ConcordatError):
    """An approved change would take an aligned or pooled fund below zero (ToR 2.6)."""


class MinutesRequiredError(InvalidInputError):
    """A forum's decision names no minutes (the policy's `[minutes]`: a forum's decisions are minuted
    unless the policy exempts it)."""
