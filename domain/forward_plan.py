"""A case's entry on a council executive's forward plan of key decisions, and the rule that a key
decision waits for it (the 2012 Executive Arrangements Regulations, regs 9-11; `[key_decisions]`).

An entry (`ForwardPlanEntry`, one per case and forum) is published by the forum's secretary, saying
whether the decision will have a significant effect on communities. Then the forum's decision on that
case, if key, is taken no sooner than `forward_plan_clear_days` clear days after publication (28) —
unless the general exception is recorded (notice given to the chair of scrutiny, and
`general_exception_clear_days` clear days passed since: reg 10) or special urgency (the chair of
scrutiny agreed that the decision is urgent and cannot reasonably be deferred: reg 11). Each is an
event naming who and why. `check_key_decision` is what the case's `decide` asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.domain import event

from domain.actor import Actor
from domain.calendar import WorkingDayCalendar
from domain.case import CASE_NAMESPACE, Case
from domain.errors import InvalidInputError, RequirementNotMetError
from domain.meeting_rules import KeyDecisionRules
from domain.recorded import Recorded


class KeyDecisionNoticeError(RequirementNotMetError):
    """A key decision before its forward-plan notice (or a recorded exception) allows it."""


class ForwardPlanEntry(Recorded):
    """One case's entry on one forum's forward plan (see the module docstring)."""

    _who = staticmethod(Case._who)  # noqa: SLF001 - the same stamp every case's events carry

    def _done(self, command_id: str) -> None:
        self.command_versions[command_id] = self.version + 1

    @staticmethod
    def create_id(case: str, forum: str) -> UUID:
        return uuid5(CASE_NAMESPACE, f"forward-plan:{case}:{forum}")

    @event("Published")
    def __init__(
        self,
        *,
        case: str,
        forum: str,
        title: str,
        published_on: str,
        significant_effect: bool,
        key: bool,
        exempt: bool,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.case = case
        self.forum = forum
        self.title = title
        self.published_on = date.fromisoformat(published_on)  # events hold dates as ISO text
        self.significant_effect = significant_effect
        self.key = key
        self.exempt = exempt
        self.general_exception: dict[str, str] | None = None
        self.special_urgency: dict[str, str] | None = None
        self.command_versions: dict[str, int] = {command_id: 1}

    def give_general_exception(
        self, *, calendar: WorkingDayCalendar, notice_to: str, reason: str, actor: Actor, command_id: str, at: datetime
    ) -> None:
        """Reg 10: notice to the chair of scrutiny (named) of a key decision not on the plan in time."""
        if not notice_to.strip() or not reason.strip():
            raise InvalidInputError("the general exception names the chair of scrutiny given notice and why")
        if self.general_exception is not None:
            raise InvalidInputError(
                f"the general exception for {self.case} was given on {self.general_exception['on']}"
            )
        self._general_exception(
            notice_to=notice_to.strip(),
            reason=reason.strip(),
            on=calendar.local_date(at).isoformat(),
            **self._who(actor, command_id, at),
        )

    @event("GeneralExceptionGiven")
    def _general_exception(
        self, *, notice_to: str, reason: str, on: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.general_exception = {"notice_to": notice_to, "reason": reason, "on": on, "by": f"{actor_role}:{actor_id}"}
        self._done(command_id)

    def agree_special_urgency(
        self, *, calendar: WorkingDayCalendar, agreed_by: str, reason: str, actor: Actor, command_id: str, at: datetime
    ) -> None:
        """Reg 11: the chair of scrutiny agrees the decision is urgent and cannot reasonably be deferred."""
        if not agreed_by.strip() or not reason.strip():
            raise InvalidInputError("special urgency names the chair who agreed it and why it cannot wait")
        if self.special_urgency is not None:
            raise InvalidInputError(f"special urgency for {self.case} was agreed on {self.special_urgency['on']}")
        self._special_urgency(
            agreed_by=agreed_by.strip(),
            reason=reason.strip(),
            on=calendar.local_date(at).isoformat(),
            **self._who(actor, command_id, at),
        )

    @event("SpecialUrgencyAgreed")
    def _special_urgency(
        self, *, agreed_by: str, reason: str, on: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.special_urgency = {"agreed_by": agreed_by, "reason": reason, "on": on, "by": f"{actor_role}:{actor_id}"}
        self._done(command_id)

    def earliest(self, rules: KeyDecisionRules, calendar: WorkingDayCalendar) -> tuple[date, str]:
        """The first day the key decision may be taken, and on what footing."""
        options = [(calendar.earliest_after_notice(self.published_on, rules.forward_plan_clear_days), "forward plan")]
        if self.general_exception is not None:
            given = date.fromisoformat(self.general_exception["on"])
            options.append(
                (calendar.earliest_after_notice(given, rules.general_exception_clear_days), "general exception")
            )
        if self.special_urgency is not None:
            options.append((date.fromisoformat(self.special_urgency["on"]), "special urgency"))
        return min(options)

    def view(self, *, public: bool = False) -> dict[str, Any]:
        found: dict[str, Any] = {
            "case": self.case,
            "forum": self.forum,
            "title": self.title,
            "published_on": self.published_on.isoformat(),
            "key": self.key,
            "significant_effect": self.significant_effect,
            "general_exception": dict(self.general_exception) if self.general_exception else None,
            "special_urgency": dict(self.special_urgency) if self.special_urgency else None,
        }
        if not public:
            found["exempt"] = self.exempt
        return found


def is_key(rules: KeyDecisionRules, forum: str, value_pence: int, significant_effect: bool) -> bool:
    return forum in rules.forums and (value_pence >= rules.value_at_least_pence or significant_effect)


@dataclass
class ForwardPlan:
    """The forward-plan entries a decision reads (read only: the decision changes none)."""

    repository: Repository

    def entry(self, case: str, forum: str) -> ForwardPlanEntry | None:
        try:
            found: Any = self.repository.get(ForwardPlanEntry.create_id(case, forum))
        except AggregateNotFoundError:
            return None
        return found

    def check_key_decision(
        self,
        *,
        rules: KeyDecisionRules | None,
        calendar: WorkingDayCalendar,
        case: str,
        forum: str,
        value_pence: int,
        at: datetime,
    ) -> dict[str, Any] | None:
        """Refuse a key decision taken too soon; the footing it is taken on otherwise (None: not key)."""
        if rules is None or forum not in rules.forums:
            return None
        entry = self.entry(case, forum)
        if entry is None:
            if value_pence < rules.value_at_least_pence:
                return None
            raise KeyDecisionNoticeError(
                f"{case} is a key decision of {forum} (its value is at least "
                f"£{rules.value_at_least_pence // 100:,}): publish it on the forward plan "
                f"(`concordat forward-plan add {case} --forum {forum}`) {rules.forward_plan_clear_days} clear days "
                "before it is taken, or record the general exception or special urgency"
            )
        if not is_key(rules, forum, value_pence, entry.significant_effect):
            return None
        today = calendar.local_date(at)
        earliest, footing = entry.earliest(rules, calendar)
        if today < earliest:
            raise KeyDecisionNoticeError(
                f"{case} is a key decision of {forum}, on the forward plan since "
                f"{entry.published_on.isoformat()}: it may be taken from {earliest.isoformat()} "
                f"({rules.forward_plan_clear_days} clear days), not {today.isoformat()}; "
                "or record the general exception or special urgency"
            )
        return {"key": True, "footing": footing, "on_plan_since": entry.published_on.isoformat()}
