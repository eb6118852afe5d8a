"""Separation of duties: who may not decide what, whatever roles they hold.

A person may hold several roles (the Lead Director may also be a board member; a council officer may
be a party's representative and a forum's secretary). The roles say what each may do; these rules say
what one *person* may not do twice in one case, as the policy's `[separation]` table sets them:

- `one_stage_per_person`: no person decides at two stages of one case, or for two forums at one stage
  (records a forum's decision, or decides in a stage's place for the escalation forum). `allow_for`
  lists the forums — or groups of forums, as a list — among whose stages one person may decide more
  than once: `"jcu"` lets the Lead Director decide at each of the JCU's stages; `["cmet",
  "governing_body"]` would let one secretary record for both of the CCG's bodies.
- `no_self_approval`: the person who started a case decides none of its stages, except at the forums
  in `allow_for`.

A decision here is a stage's own outcome, or the escalation forum's decision in a stage's place. An
escalation's `extend` and `send_back` decide the clock and the way back, not the case, and a
withdrawal is no decision: neither counts nor is checked.

Disputes (MOU, Governance: "an independent mediator (selected by agreement between the parties and
appointed in writing)"): under `one_stage_per_person`, the mediator is nobody who has acted in the
dispute, and one person acts for one party only; under `no_self_approval`, the person who raised a
concern does not resolve it nor nominate or appoint its mediator. Termination (MOU: "agreed at any
time by mutual consent"): under `one_stage_per_person`, one person consents for one party only.

The rules are checked when a command is given, never when events are applied: a case decided before
a rule existed (or under a policy that turned it off) loads and replays as it was recorded.

A policy file without `[separation]` gets both rules on with no exceptions. `rule = true` or `false`
is short for `rule = { applies = true }` (or false).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from domain.errors import NotAllowedError


class SeparationOfDutiesError(NotAllowedError):
    """One person would decide what the policy's separation of duties gives to two."""


def _rule(value: Any) -> Any:
    """`rule = true` (or false) is short for `rule = { applies = true }`."""
    if isinstance(value, bool):
        return {"applies": value}
    if not isinstance(value, dict):
        msg = 'give true, false, or a table like { allow_for = ["jcu"] }'
        raise ValueError(msg)
    return value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OneStagePerPerson(_Model):
    applies: bool = True
    allow_for: list[str | list[str]] = []

    def groups(self) -> list[set[str]]:
        return [{entry} if isinstance(entry, str) else set(entry) for entry in self.allow_for]

    def together(self, a: str, b: str) -> bool:
        """Whether one person may decide both for forum `a` and for forum `b` in one case."""
        return any(a in g and b in g for g in self.groups())


class NoSelfApproval(_Model):
    applies: bool = True
    allow_for: list[str] = []


class Separation(_Model):
    one_stage_per_person: Annotated[OneStagePerPerson, BeforeValidator(_rule)] = OneStagePerPerson()
    no_self_approval: Annotated[NoSelfApproval, BeforeValidator(_rule)] = NoSelfApproval()

    def problems(self, forums: Iterable[str]) -> list[tuple[tuple[str, ...], str]]:
        known = set(forums)
        found: list[tuple[tuple[str, ...], str]] = []
        for entry in self.one_stage_per_person.allow_for:
            names = [entry] if isinstance(entry, str) else entry
            if not names:
                found.append((("one_stage_per_person", "allow_for"), "an empty group of forums allows nothing"))
            for name in names:
                if name not in known:
                    found.append((("one_stage_per_person", "allow_for"), f"{name!r} is not a forum"))
        for name in self.no_self_approval.allow_for:
            if name not in known:
                found.append((("no_self_approval", "allow_for"), f"{name!r} is not a forum"))
        return found

    def lines(self) -> list[str]:
        """The rules in words, for `concordat policy show`."""
        one, own = self.one_stage_per_person, self.no_self_approval
        if one.applies:
            groups = [" + ".join(sorted(g)) for g in one.groups()]
            text = "one stage per person (no person decides at two stages of a case)"
            if groups:
                text += "; except among the stages of " + "; ".join(groups)
        else:
            text = "one stage per person: off (one person may decide at several stages)"
        if own.applies:
            text2 = "no self-approval (who started a case decides none of its stages)"
            if own.allow_for:
                text2 += "; except at " + ", ".join(own.allow_for)
        else:
            text2 = "no self-approval: off (who started a case may decide it)"
        return [text, text2]

    # --- the checks ------------------------------------------------------------------------------

    def check_decision(
        self,
        *,
        reference: str,
        person: str,
        stage: str,
        forum: str,
        started_by: dict[str, str],
        earlier: Iterable[dict[str, Any]],
    ) -> None:
        """Refuse `person` deciding at `stage` for `forum`, given who started the case and the
        decisions (`earlier`: each with stage, forum, actor_id, actor_role, at) that count."""
        own = self.no_self_approval
        if own.applies and started_by.get("id") == person and forum not in own.allow_for:
            raise SeparationOfDutiesError(
                f"separation of duties (no_self_approval): {person} started {reference} "
                f"(as {started_by.get('role', '?')}) and may not decide it at {stage}; another person must"
            )
        one = self.one_stage_per_person
        if not one.applies:
            return
        for d in earlier:
            if d["actor_id"] != person or (d["stage"], d["forum"]) == (stage, forum):
                continue
            if one.together(d["forum"], forum):
                continue
            where = d["stage"] if d["stage"] != stage else f"{stage} for {d['forum']}"
            raise SeparationOfDutiesError(
                f"separation of duties (one_stage_per_person): {person} already decided {reference} at "
                f"{where} (as {d['actor_role']}, {str(d['at'])[:10]}) and may not decide it at {stage} too; "
                "another person must"
            )

    def check_independent(self, *, reference: str, person: str, acted: dict[str, str], what: str) -> None:
        """Refuse `person` for `what` (e.g. "be its mediator") if they acted in the case already
        (`acted`: person → the part they played)."""
        if self.one_stage_per_person.applies and person in acted:
            raise SeparationOfDutiesError(
                f"separation of duties (one_stage_per_person): {person} {acted[person]} in {reference} "
                f"and may not {what}; the mediator is independent of the dispute"
            )

    def check_one_party(self, *, reference: str, person: str, party: str, acted_for: dict[str, str]) -> None:
        """Refuse `person` acting for `party` when they already acted for another party of the case."""
        other = acted_for.get(person)
        if self.one_stage_per_person.applies and other is not None and other != party:
            raise SeparationOfDutiesError(
                f"separation of duties (one_stage_per_person): {person} already acted for {other} in "
                f"{reference} and may not act for {party} too; each party answers through its own person"
            )

    def check_not_starter(self, *, reference: str, person: str, started_by: dict[str, str], what: str) -> None:
        """Refuse the person who started a case doing `what` (e.g. "resolve it")."""
        if self.no_self_approval.applies and started_by.get("id") == person:
            raise SeparationOfDutiesError(
                f"separation of duties (no_self_approval): {person} raised {reference} "
                f"(as {started_by.get('role', '?')}) and may not {what}; another person must"
            )
