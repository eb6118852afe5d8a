"""The use cases of the forward plan of key decisions: publish a case's entry for a forum, record
the general exception or special urgency, and read the plan back (`domain/forward_plan.py` holds
the rules). Entries live in the cases' store; every command is idempotent by its command id."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from eventsourcing.persistence import RecordConflictError

from domain.actor import Actor
from domain.application import CaseService
from domain.errors import CaseNotFoundError, InvalidInputError, NotAllowedError, PolicyError
from domain.forward_plan import ForwardPlan, ForwardPlanEntry, is_key
from domain.meeting_rules import KeyDecisionRules

log = structlog.get_logger(__name__)
ATTEMPTS = 5


class ForwardPlanService:
    def __init__(self, cases: CaseService) -> None:
        self.cases = cases

    def rules(self) -> KeyDecisionRules:
        found = self.cases.policy.key_decisions
        if found is None:
            raise PolicyError("the policy names no key decisions (add [key_decisions])")
        return found

    def add(
        self,
        *,
        actor: Actor,
        case: str,
        forum: str,
        significant_effect: bool = False,
        exempt: bool = False,
        command_id: str,
    ) -> dict[str, Any]:
        """Publish `case` on `forum`'s forward plan, today."""
        rules = self.rules()
        if forum not in rules.forums:
            raise InvalidInputError(f"{forum} takes no key decisions; forums that do: {', '.join(rules.forums)}")
        self._check_secretary(actor, forum)
        if not command_id:
            raise InvalidInputError("a command needs a command id")
        view = self.cases.state(case, history=False)  # CaseNotFoundError for an unknown reference
        if view.status != "open":
            raise InvalidInputError(f"{case} is {view.status}; only an open case goes on the forward plan")
        if not any(step["stage"] and self._forum_of(view.kind, step["stage"]) == forum for step in view.route):
            raise InvalidInputError(f"{case} does not go to {forum} on its route")
        plan = ForwardPlan(self.cases.repository)
        for _ in range(ATTEMPTS):
            existing = plan.entry(case, forum)
            if existing is not None:
                if command_id in existing.command_versions:
                    return existing.view()
                raise InvalidInputError(
                    f"{case} is on {forum}'s forward plan since {existing.published_on.isoformat()}"
                )
            at = self.cases.now()
            value = int(view.details.get("value_pence", view.details.get("value_change_pence", 0)) or 0)
            with self.cases.stamp(case, command_id, actor):
                entry = ForwardPlanEntry(
                    case=case,
                    forum=forum,
                    title=view.title,
                    published_on=self.cases.rules.calendar.local_date(at).isoformat(),
                    significant_effect=significant_effect,
                    key=is_key(rules, forum, value, significant_effect),
                    exempt=exempt,
                    actor_id=actor.id,
                    actor_role=actor.role,
                    command_id=command_id,
                    at=at,
                )
            try:
                self.cases.save(entry)
            except RecordConflictError:
                continue
            log.info("forward_plan.published", case=case, forum=forum)
            return entry.view()
        raise RecordConflictError(f"{case} kept changing under {ATTEMPTS} attempts")

    def general_exception(
        self, *, actor: Actor, case: str, forum: str, notice_to: str, reason: str, command_id: str
    ) -> dict[str, Any]:
        return self._apply(
            actor,
            case,
            forum,
            command_id,
            lambda e, at: e.give_general_exception(
                calendar=self.cases.rules.calendar,
                notice_to=notice_to,
                reason=reason,
                actor=actor,
                command_id=command_id,
                at=at,
            ),
        )

    def special_urgency(
        self, *, actor: Actor, case: str, forum: str, agreed_by: str, reason: str, command_id: str
    ) -> dict[str, Any]:
        return self._apply(
            actor,
            case,
            forum,
            command_id,
            lambda e, at: e.agree_special_urgency(
                calendar=self.cases.rules.calendar,
                agreed_by=agreed_by,
                reason=reason,
                actor=actor,
                command_id=command_id,
                at=at,
            ),
        )

    def entries(self, *, public: bool = False) -> list[dict[str, Any]]:
        """The forward plan: every entry, earliest published first (exempt ones left out for the public)."""
        rules = self.cases.policy.key_decisions
        if rules is None:
            return []
        plan = ForwardPlan(self.cases.repository)
        found = []
        for reference in self.cases.references(("PRO", "VAR", "FUN", "FND")):
            for forum in rules.forums:
                entry = plan.entry(reference, forum)
                if entry is not None and not (public and entry.exempt):
                    earliest, footing = entry.earliest(rules, self.cases.rules.calendar)
                    found.append({**entry.view(public=public), "earliest": earliest.isoformat(), "footing": footing})
        return sorted(found, key=lambda e: (e["published_on"], e["case"]))

    # --- internals ---------------------------------------------------------------------------

    def _forum_of(self, kind: str, stage: str) -> str | None:
        route = self.cases.policy.routes.get(kind)
        found = route.stages.get(stage) if route is not None else None
        return found.forum if found is not None else None

    def _check_secretary(self, actor: Actor, forum: str) -> None:
        policy = self.cases.policy
        if not policy.is_known_role(actor.role):
            raise NotAllowedError(f"role {actor.role!r} is not known; roles: {policy.known_roles_text}")
        self.cases.check_role_takes_part(actor.role)
        decider = policy.decider_of(forum)
        if actor.role != decider:
            raise NotAllowedError(f"role {actor.role} may not keep {forum}'s forward plan; {decider} does")

    def _apply(
        self,
        actor: Actor,
        case: str,
        forum: str,
        command_id: str,
        command: Callable[[ForwardPlanEntry, datetime], None],
    ) -> dict[str, Any]:
        if not command_id:
            raise InvalidInputError("a command needs a command id")
        self._check_secretary(actor, forum)
        plan = ForwardPlan(self.cases.repository)
        for _ in range(ATTEMPTS):
            entry = plan.entry(case, forum)
            if entry is None:
                raise CaseNotFoundError(
                    f"{case} is not on {forum}'s forward plan: `concordat forward-plan add {case} --forum {forum}` first"
                )
            if command_id in entry.command_versions:
                return entry.view()
            with self.cases.stamp(case, command_id, actor):
                command(entry, self.cases.now())
            try:
                self.cases.save(entry)
            except RecordConflictError:
                continue
            return entry.view()
        raise RecordConflictError(f"{case} kept changing under {ATTEMPTS} attempts")
