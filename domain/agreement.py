"""Termination by mutual consent: an agreement of every party, not a notice.

MOU, Termination: "Termination can be agreed at any time by mutual consent." governance.md: an
agreement, signed by every party, that a named party leaves — or that the partnership ends — on an
agreed date; once every party has agreed, no single party can undo it.

A `TerminationAgreement` (`AGR-2026-0001`) is proposed by one party's representative, who signs it
for that party as they propose it; it names the party that leaves (or none: the partnership ends),
the agreed date (today or later) and the reference of the written agreement. Needs no notice, and
no notice period applies.

Lifecycle: `open` (awaiting the other parties' signatures) → `in_force` once every party to it that
is still a member has signed (irrevocable: nobody may refuse or withdraw it then) → `took_effect` at
the start of the agreed date (at once, if that day has come), when the named party leaves the
`Partnership` (with fewer than two members left the partnership ends), or the partnership ends.
While open, any party to it may refuse (`declined`: one refusal is enough, the agreement needs
everyone); if the agreed date passes without every signature it `lapsed`.

Separation of duties (`one_stage_per_person`): one person signs for one party only. A party that has
left the partnership takes no part (domain/membership.py).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import ClassVar

from eventsourcing.domain import event
from pydantic import Field

from domain.actor import Actor
from domain.case import SYSTEM_ACTOR, Case, CaseAction, CaseView, Command, Rules, Timer
from domain.errors import (
    CaseClosedError,
    DeadlineNotReachedError,
    InvalidInputError,
    NotAllowedError,
    NotAPartyError,
    WrongStageError,
    closed_text,
)
from domain.termination import Partnership

OPEN = "open"
IN_FORCE = "in_force"


class ProposeAgreement(Command):
    leaving: str | None = Field(default=None, max_length=40)
    effective: date
    agreement_ref: str = Field(min_length=1, max_length=200)
    note: str = Field(default="", max_length=2000)


class Sign(Command):
    pass


class Decline(Command):
    note: str = Field(default="", max_length=2000)


class TerminationAgreement(Case):
    COLLABORATORS: ClassVar[tuple[str, ...]] = ("partnership",)
    kind: ClassVar[str] = "agreement"

    @classmethod
    def propose(
        cls, rules: Rules, *, reference: str, actor: Actor, command: ProposeAgreement, command_id: str, at: datetime
    ) -> TerminationAgreement:
        party = actor.party
        if party is None:
            raise NotAllowedError(
                f"role {actor.role} may not propose a termination agreement; a party_rep:<party> proposes it"
            )
        membership = rules.membership
        membership.check_acting_for(party, "the partnership's agreements")
        members = membership.current(membership.members)
        if party not in members:
            raise NotAPartyError(f"{party} is not a member of the partnership; members: {', '.join(members)}")
        leaving = (command.leaving or "").strip() or None
        if leaving is not None:
            membership.check_parties([leaving], "--leaving")
            if leaving not in members:
                raise InvalidInputError(
                    f"--leaving {leaving!r} is not a member; members: {', '.join(members)} "
                    "(or leave it out: the partnership ends)"
                )
        today = rules.calendar.local_date(at)
        if command.effective < today:
            raise InvalidInputError(
                f"--effective {command.effective.isoformat()} is in the past; the agreed date is today or later"
            )
        return cls._create(
            cls.Proposed,
            reference=reference,
            leaving=leaving,
            effective=command.effective.isoformat(),
            agreement_ref=command.agreement_ref,
            note=command.note,
            parties=members,
            party=party,
            takes_effect_at=rules.calendar.at(command.effective, time(0, 0)),
            policy_hash=rules.policy.content_hash,
            actor_id=actor.id,
            actor_role=actor.role,
            command_id=command_id,
            at=at,
        )

    class Proposed(Case.Created):
        reference: str
        leaving: str | None
        effective: str
        agreement_ref: str
        note: str
        parties: list[str]
        party: str
        takes_effect_at: datetime
        policy_hash: str
        actor_id: str
        actor_role: str
        command_id: str
        at: datetime

    @event(Proposed)
    def __init__(
        self,
        *,
        reference: str,
        leaving: str | None,
        effective: str,
        agreement_ref: str,
        note: str,
        parties: list[str],
        party: str,
        takes_effect_at: datetime,
        policy_hash: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.reference = reference
        self.leaving = leaving
        self.effective = effective
        self.agreement_ref = agreement_ref
        self.note = note
        self.parties = list(parties)
        self.takes_effect_at = takes_effect_at
        self.policy_hash = policy_hash
        self.started_by = {"id": actor_id, "role": actor_role}
        self.started_at = at
        self.status = OPEN
        # Each party's signature: who signed for it, and when.
        self.signed: dict[str, dict[str, str]] = {party: {"by": actor_id, "at": at.isoformat()}}
        self.acted_for: dict[str, str] = {actor_id: party}
        self.declined_by: str | None = None
        self.command_versions: dict[str, int] = {command_id: 1}

    # --- who may act, and when the clock wakes ------------------------------------------------

    ACTIONS: ClassVar[dict[str, tuple[type[Command], str]]] = {
        "agree": (Sign, "sign"),
        "refuse": (Decline, "decline"),
    }

    def _needed(self, rules: Rules) -> list[str]:
        """The parties whose signature it needs: its parties that are still members."""
        return rules.membership.current(self.parties)

    def _waiting(self, rules: Rules) -> list[str]:
        return [p for p in self._needed(rules) if p not in self.signed]

    def actions(self, rules: Rules) -> list[CaseAction]:
        if self.status != OPEN:
            return []  # in force: irrevocable; or over
        return [
            CaseAction("agree", [f"party_rep:{p}" for p in self._waiting(rules)]),
            CaseAction("refuse", [f"party_rep:{p}" for p in self._needed(rules)]),
        ]

    def _effective_day(self) -> date:
        return date.fromisoformat(self.effective)

    def timers(self, rules: Rules) -> list[Timer]:
        if self.status == OPEN:
            # Signatures are taken until the end of the agreed day; then it lapses.
            return [Timer("lapse", rules.calendar.at(self._effective_day() + timedelta(days=1), time(0, 0)))]
        if self.status == IN_FORCE:
            return [Timer("take_effect", self.takes_effect_at)]
        return []

    @property
    def title(self) -> str:
        if self.leaving:
            return f"{self.leaving} leaves the partnership by agreement"
        return "The partnership ends by agreement"

    def view(self, rules: Rules) -> CaseView:
        live = self.status in (OPEN, IN_FORCE)
        return CaseView(
            reference=self.reference,
            kind=self.kind,
            title=self.title,
            status=self.status,
            stage={OPEN: "signatures", IN_FORCE: "agreed"}.get(self.status, ""),
            version=self.version,
            deadline=self.takes_effect_at if live else None,
            policy_hash=self.policy_hash,
            started_at=self.started_at,
            started_by=dict(self.started_by),
            actions=self.actions(rules),
            timers=self.timers(rules),
            details={
                "leaving": self.leaving,
                "ends_partnership": self.leaving is None,
                "effective": self.effective,
                "agreement_ref": self.agreement_ref,
                "note": self.note,
                "parties": list(self.parties),
                "signed": {p: dict(s) for p, s in self.signed.items()},
                "awaiting": self._waiting(rules) if self.status == OPEN else [],
                "declined_by": self.declined_by,
            },
        )

    # --- commands ---------------------------------------------------------------------------

    def sign(
        self, rules: Rules, *, actor: Actor, command: Sign, command_id: str, at: datetime, partnership: Partnership
    ) -> None:
        """A party signs the agreement. When every party still a member has signed it is in force and
        irrevocable; on the agreed date (at once, if that has come) it takes effect."""
        party = self._check(rules, "agree", actor)
        rules.policy.separation.check_one_party(
            reference=self.reference, person=actor.id, party=party, acted_for=self.acted_for
        )
        in_force = not [p for p in self._waiting(rules) if p != party]
        self._sign(party=party, in_force=in_force, **self._who(actor, command_id, at))
        if in_force and self.takes_effect_at <= at:
            # One command, two events: the command id answers with the state after both.
            self._conclude(partnership, command_id=command_id, at=at)

    @event("Signed")
    def _sign(
        self, *, party: str, in_force: bool, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.signed[party] = {"by": actor_id, "at": at.isoformat()}
        self.acted_for.setdefault(actor_id, party)
        if in_force:
            self.status = IN_FORCE
        self._done(command_id)

    def decline(
        self, rules: Rules, *, actor: Actor, command: Decline, command_id: str, at: datetime, partnership: Partnership
    ) -> None:
        """A party refuses the agreement before it is in force (one refusal ends it: it needs everyone)."""
        party = self._check(rules, "refuse", actor)
        rules.policy.separation.check_one_party(
            reference=self.reference, person=actor.id, party=party, acted_for=self.acted_for
        )
        self._decline(party=party, note=command.note, **self._who(actor, command_id, at))

    @event("Declined")
    def _decline(self, *, party: str, note: str, actor_id: str, actor_role: str, command_id: str, at: datetime) -> None:
        self.status = "declined"
        self.declined_by = party
        self._done(command_id)

    # --- the clock --------------------------------------------------------------------------

    def fire(self, rules: Rules, *, timer: str, command_id: str, at: datetime, partnership: Partnership) -> None:
        if self.status not in (OPEN, IN_FORCE):
            raise CaseClosedError(closed_text(self.reference, self.status))
        due = {t.name: t.at for t in self.timers(rules)}
        if timer not in due:
            raise DeadlineNotReachedError(f"{self.reference} has no timer {timer!r} pending")
        if at < due[timer]:
            raise DeadlineNotReachedError(f"{timer} for {self.reference} is due at {due[timer].isoformat()}")
        if timer == "lapse":
            self._lapse(waiting=self._waiting(rules), **self._who(SYSTEM_ACTOR, command_id, at))
        else:
            self._conclude(partnership, command_id=command_id, at=at)

    @event("Lapsed")
    def _lapse(self, *, waiting: list[str], actor_id: str, actor_role: str, command_id: str, at: datetime) -> None:
        self.status = "lapsed"
        self._done(command_id)

    def _conclude(self, partnership: Partnership, *, command_id: str, at: datetime) -> None:
        on = self.takes_effect_at
        self._take_effect(leaving=self.leaving, on=on, **self._who(SYSTEM_ACTOR, command_id, at))
        if self.leaving:
            partnership.leave(party=self.leaving, notice_ref=self.reference, on=on)
        else:
            partnership.end_by_consent(notice_ref=self.reference, on=on)

    @event("TookEffect")
    def _take_effect(
        self, *, leaving: str | None, on: datetime, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.status = "took_effect"
        self._done(command_id)

    # --- internals --------------------------------------------------------------------------

    def _check(self, rules: Rules, action: str, actor: Actor) -> str:
        """The party the actor signs or refuses for, once the rules allow it."""
        if self.status == IN_FORCE:
            raise CaseClosedError(
                f"{self.reference} is in force: every party has agreed, and no one party can undo it; "
                f"it takes effect on {self.effective}"
            )
        if self.status != OPEN:
            raise CaseClosedError(closed_text(self.reference, self.status))
        party = actor.party
        if party is None:
            raise NotAllowedError(f"role {actor.role} may not {action} on {self.reference}; a party_rep:<party> does")
        rules.membership.check_acting_for(party, f"{self.reference}")
        if party not in self.parties:
            raise NotAPartyError(f"{party} is not a party to {self.reference}; parties: {', '.join(self.parties)}")
        if action == "agree" and party in self.signed:
            raise WrongStageError(f"{party} has signed {self.reference} already (by {self.signed[party]['by']})")
        return party
