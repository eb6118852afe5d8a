"""A dispute between partners, from the Corporate Director to a binding mediation.

Lifecycle (MOU, Governance; governance.md, "Dispute"):

    director ──resolve: resolved──────────────────────────────────▶ resolved
       │      └─resolve: no_mediation─────────────────────────────▶ closed without mediation
       │ resolve: mediation
       ▼
    mediator_selection: nominate → every party agrees → appoint (in writing: the letter's reference)
       │  a party's refusal, or its objection that the nominee is not independent, clears the nominee
       ▼
    mediation ──findings (the appointed mediator only; binding; costs split equally)──▶ findings_recorded
       │  the mediator withdraws ──▶ back to mediator_selection (a new deadline)
       └─ a replacement: nominate → every party agrees → appoint (in writing) ──▶ mediation (the new one)

A concern is raised by a party's representative against one or more other parties. The Lead
Director (the Corporate Director: People & Communities) tries first to resolve it and decides
whether mediation is required. The mediator is selected by agreement between the parties: every
party to the dispute must agree to the nominee. Each stage has a working-day deadline from the
policy, with a reminder before it; a missed deadline is escalated (recorded, and the escalation
forum is told), and the stage stays open for the people who act in it.

The mediator is a person of the directory (the `people` collaborator: the roles each person holds
now) who holds the `mediator` role and no role tied to a party — neither a party's representative
(`party_rep:<party>`) nor an officer who records a party's own body's decisions (a forum with
`party` in the policy). That is checked at nomination and again at appointment. Each party may
object that a nominee is not independent, with its reason: the objection is recorded, the nominee
lapses, and that person is not nominated again in this dispute. A nominee named `mediator:<id>` (the
form an earlier description of the field suggested) is the person `<id>`, and such a name recorded
before is read so, so a dispute stuck with it carries on.

There is no dead end after the appointment: the mediator may withdraw (the dispute goes back to
mediator selection), or the parties replace them by agreement — the Lead Director nominates another,
every party agrees, and the new mediator is appointed in writing while the first still serves. A
dispute closes with the findings: its stage is then empty, as every closed case's is.

Separation of duties (`domain/separation.py`): the mediator is independent — nobody who has acted in
the dispute (raised it, decided at the director stage, nominated or appointed, answered for a party)
may be nominated or appointed, nor may the nominee answer for a party (`one_stage_per_person`); one
person answers for one party only (the MOU's "agreement between the parties"); and the person who
raised the concern does not resolve it, nor nominate or appoint its mediator (`no_self_approval`).

Costs are borne equally (MOU): `split_cost` divides the total into equal shares in pence; the
pence that do not divide go one each to the parties in the partnership's own order (PCC, CCC,
CPCCG), so the shares always sum to the total and differ by at most a penny.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, ClassVar, Literal

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
)
from domain.identity import Roster
from domain.separation import Separation
from domain.timing import with_reminder, working_day_times
from domain.values import CaseReference, LongText, MediatorId, Note, PartyCode, Reference, Title

OPEN = "open"
REFERENCE = re.compile(r"^(PRO|VAR|FUN|DSP|TRM|AGR)-\d{4}-\d{4}$")
MEDIATOR_ROLE = "mediator"


class MediatorNotEligibleError(InvalidInputError):
    """The person named as mediator cannot be one (MOU, Governance: "an independent mediator"): no
    person of the directory, without the mediator role, tied to a party, or objected to by a party."""


def person_id(name: str) -> str:
    """The mediator as the directory knows them: `mo`. `mediator:mo` names the same person (an earlier
    description of the field suggested that form); any other role is no part of a person's id."""
    role, sep, ident = name.strip().rpartition(":")
    return ident.strip() if sep and role.strip() == MEDIATOR_ROLE else name.strip()


class RaiseDispute(Command):
    against: list[PartyCode] = Field(min_length=1, max_length=20)
    subject: Title
    description: Note = ""
    linked_case: CaseReference | None = None


class Resolve(Command):
    outcome: Literal["resolved", "mediation", "no_mediation"]
    note: Note = ""


class Nominate(Command):
    mediator: MediatorId = Field(
        description="The nominee's user id in the directory (e.g. mo): a person who holds the mediator role "
        "and no role of a party.",
    )
    note: Note = ""


class Object(Command):
    """A party's objection that the nominee is not independent (of the dispute or of the parties)."""

    reason: LongText = Field(description="Why the nominee is not independent.")


class Withdraw(Command):
    """The appointed mediator withdraws from the dispute."""

    note: Note = ""


class Agree(Command):
    pass


class Refuse(Command):
    note: Note = ""


class Appoint(Command):
    letter_ref: Reference


class Findings(Command):
    findings: LongText
    cost_pence: int = Field(ge=0)


class Extend(Command):
    """The escalation forum gives an escalated stage more time: to a date, or by the stage's own rule."""

    new_deadline: date | None = None
    note: Note = ""


def split_cost(total_pence: int, parties: list[str], order: list[str]) -> dict[str, int]:
    """Equal shares to the penny; the remainder goes a penny each to the first parties in `order`."""
    ranked = sorted(parties, key=order.index)
    share, remainder = divmod(total_pence, len(ranked))
    return {p: share + (1 if i < remainder else 0) for i, p in enumerate(ranked)}


class Dispute(Case):
    kind: ClassVar[str] = "dispute"

    # --- raising ----------------------------------------------------------------------------

    @classmethod
    def raise_(
        cls,
        rules: Rules,
        *,
        reference: str,
        actor: Actor,
        command: RaiseDispute,
        members: list[str],
        command_id: str,
        at: datetime,
    ) -> Dispute:
        """A party's representative raises a concern against other parties (MOU, Governance)."""
        party = actor.party
        if party is None:
            raise NotAllowedError(f"role {actor.role} may not raise a dispute; a party_rep:<party> raises it")
        rules.membership.check_acting_for(party, "the partnership's disputes")
        if party not in members:
            raise NotAPartyError(f"{party} is not a member of the partnership; members: {', '.join(members)}")
        against = list(dict.fromkeys(command.against))
        rules.membership.check_parties(against, "--against")
        strangers = [p for p in against if p not in members]
        if strangers:
            raise InvalidInputError(
                f"--against {', '.join(map(repr, strangers))}: not members; members: {','.join(members)}"
            )
        if party in against:
            raise InvalidInputError(f"{party} cannot raise a dispute against itself")
        if command.linked_case and not REFERENCE.match(command.linked_case):
            raise InvalidInputError(f"linked case {command.linked_case!r} is not a reference like PRO-2026-0001")
        order = rules.policy.partnership.parties
        parties = sorted({party, *against}, key=order.index)
        times = working_day_times(
            rules, rules.policy.dispute.stages["director"].deadline, at, rules.policy.dispute.reminder_working_days
        )
        return cls._create(
            cls.Raised,
            reference=reference,
            subject=command.subject,
            description=command.description,
            raised_by=party,
            against=sorted(against, key=order.index),
            parties=parties,
            linked_case=command.linked_case,
            policy_hash=rules.policy.content_hash,
            actor_id=actor.id,
            actor_role=actor.role,
            command_id=command_id,
            at=at,
            deadline=times.deadline,
            reminder_at=times.reminder_at,
        )

    class Raised(Case.Created):
        reference: str
        subject: str
        description: str
        raised_by: str
        against: list[str]
        parties: list[str]
        linked_case: str | None
        policy_hash: str
        actor_id: str
        actor_role: str
        command_id: str
        at: datetime
        deadline: datetime
        reminder_at: datetime | None

    @event(Raised)
    def __init__(
        self,
        *,
        reference: str,
        subject: str,
        description: str,
        raised_by: str,
        against: list[str],
        parties: list[str],
        linked_case: str | None,
        policy_hash: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
        deadline: datetime,
        reminder_at: datetime | None,
    ) -> None:
        self.reference = reference
        self.subject = subject
        self.description = description
        self.raised_by = raised_by
        self.against = list(against)
        self.parties = list(parties)
        self.linked_case = linked_case
        self.policy_hash = policy_hash
        self.started_by = {"id": actor_id, "role": actor_role}
        self.started_at = at
        self.status = OPEN
        self.stage = ""
        self.stage_seq = 0
        self.deadline: datetime | None = None
        self.reminder_at: datetime | None = None
        self.reminder_sent = False
        self.escalated_to: str | None = None
        self.nominee: str | None = None
        self.agreed: list[str] = []
        self.mediator: str | None = None
        self.letter_ref: str | None = None
        self.findings: str | None = None
        self.cost_pence: int | None = None
        self.cost_shares: dict[str, int] = {}
        self.resolution: dict[str, Any] | None = None
        self.objections: list[dict[str, Any]] = []
        self.former_mediators: list[dict[str, Any]] = []
        # Who has acted in the dispute, and for which party (separation of duties).
        self.acted: dict[str, str] = {actor_id: f"raised it (as {actor_role})"}
        self.acted_for: dict[str, str] = {actor_id: raised_by}
        self.command_versions: dict[str, int] = {command_id: 1}
        self._open_stage("director", deadline, reminder_at)

    # --- who may act ------------------------------------------------------------------------

    ACTIONS: ClassVar[dict[str, tuple[type[Command], str]]] = {
        "resolve": (Resolve, "resolve"),
        "nominate": (Nominate, "nominate"),
        "agree": (Agree, "agree"),
        "refuse": (Refuse, "refuse"),
        "object": (Object, "object_to_nominee"),
        "appoint": (Appoint, "appoint"),
        "findings": (Findings, "record_findings"),
        "withdraw": (Withdraw, "withdraw"),
        "extend": (Extend, "extend"),
    }
    # Commands and timers read the directory's roster: who holds the mediator role, and who a party's.
    COLLABORATORS: ClassVar[tuple[str, ...]] = ("people",)

    def actions(self, rules: Rules) -> list[CaseAction]:
        if self.status != OPEN:
            return []
        if self.escalated_to:  # the escalation forum may give the stage more time; its people still act
            extend = CaseAction("extend", [rules.policy.decider_of(self.escalated_to)])
            return [*self._stage_actions(rules), extend]
        return self._stage_actions(rules)

    def _stage_actions(self, rules: Rules) -> list[CaseAction]:
        d = rules.policy.dispute
        if self.stage == "director":
            return [CaseAction("resolve", list(d.resolved_by))]
        if self.stage == "mediator_selection":
            return self._selection_actions(rules)
        # Mediation: the mediator's findings or withdrawal; meanwhile a replacement may be selected.
        mediator = [CaseAction("findings", [MEDIATOR_ROLE]), CaseAction("withdraw", [MEDIATOR_ROLE])]
        return [*mediator, *self._selection_actions(rules)]

    def _selection_actions(self, rules: Rules) -> list[CaseAction]:
        d = rules.policy.dispute
        if self.nominee is None:
            return [CaseAction("nominate", list(d.nominated_by))]
        # A party that has left the partnership takes no part: its agreement is not awaited.
        current = rules.membership.current(self.parties)
        waiting = [f"party_rep:{p}" for p in current if p not in self.agreed]
        every = [f"party_rep:{p}" for p in current]
        if waiting:
            return [CaseAction("agree", waiting), CaseAction("refuse", waiting), CaseAction("object", every)]
        return [CaseAction("appoint", list(d.appointed_by)), CaseAction("object", every)]

    def timers(self) -> list[Timer]:
        if self.status != OPEN or self.deadline is None:
            return []
        timers = []
        if self.reminder_at and not self.reminder_sent:
            timers.append(Timer(f"remind:{self.stage_seq}", self.reminder_at))
        if not self.escalated_to:
            timers.append(Timer(f"escalate:{self.stage_seq}", self.deadline))
        return timers

    def view(self, rules: Rules) -> CaseView:
        return CaseView(
            reference=self.reference,
            kind=self.kind,
            title=self.subject,
            status=self.status,
            stage=self.stage,
            deadline=self.deadline,
            version=self.version,
            policy_hash=self.policy_hash,
            started_at=self.started_at,
            started_by=dict(self.started_by),
            actions=self.actions(rules),
            timers=self.timers(),
            stage_seq=self.stage_seq,
            details={
                "raised_by": self.raised_by,
                "against": list(self.against),
                "parties": list(self.parties),
                "description": self.description,
                "linked_case": self.linked_case,
                "escalated_to": self.escalated_to,
                "nominee": self.nominee,
                "agreed": list(self.agreed),
                "mediator": self.mediator,
                "letter_ref": self.letter_ref,
                "resolution": self.resolution,
                "objections": [dict(o) for o in self.objections],
                "former_mediators": [dict(m) for m in self.former_mediators],
                "findings": self.findings,
                "cost_pence": self.cost_pence,
                "cost_shares": dict(self.cost_shares),
                "binding": self.findings is not None,
            },
        )

    # --- commands ---------------------------------------------------------------------------

    def resolve(
        self, rules: Rules, *, actor: Actor, command: Resolve, command_id: str, at: datetime, people: Roster
    ) -> None:
        """The Lead Director resolves the concern, or decides whether mediation is required."""
        self._check(rules, "resolve", actor)
        self._separation(rules).check_not_starter(
            reference=self.reference, person=actor.id, started_by=self.started_by, what="resolve it"
        )
        if command.outcome == "mediation":
            times = self._times(rules, "mediator_selection", at)
            self._resolve(
                outcome="mediation",
                note=command.note,
                next_stage="mediator_selection",
                status=OPEN,
                deadline=times.deadline,
                reminder_at=times.reminder_at,
                **self._who(actor, command_id, at),
            )
        else:
            status = "resolved" if command.outcome == "resolved" else "not_mediated"
            self._resolve(
                outcome=command.outcome,
                note=command.note,
                next_stage="",
                status=status,
                deadline=None,
                reminder_at=None,
                **self._who(actor, command_id, at),
            )

    @event("DirectorDecided")
    def _resolve(
        self,
        *,
        outcome: str,
        note: str,
        next_stage: str,
        status: str,
        deadline: datetime | None,
        reminder_at: datetime | None,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.resolution = {"outcome": outcome, "note": note, "by": f"{actor_role}:{actor_id}", "at": at.isoformat()}
        self._acted(actor_id, f"decided it at the director stage (as {actor_role})")
        self._done(command_id)
        self._move(next_stage, status, deadline, reminder_at)

    def nominate(
        self, rules: Rules, *, actor: Actor, command: Nominate, command_id: str, at: datetime, people: Roster
    ) -> None:
        """The Lead Director nominates a mediator (at mediator selection, or a replacement during
        mediation): a person of the directory holding the mediator role and no party's role, whom no
        party has objected to, and who has not acted in the dispute."""
        self._check(rules, "nominate", actor)
        nominee = person_id(command.mediator)
        if ":" in nominee:
            raise InvalidInputError(
                f"mediator {command.mediator!r}: give the mediator's user id (e.g. mo), not a role and an id"
            )
        sep = self._separation(rules)
        sep.check_not_starter(
            reference=self.reference, person=actor.id, started_by=self.started_by, what="nominate its mediator"
        )
        sep.check_independent(
            reference=self.reference,
            person=nominee,
            acted={actor.id: f"nominates the mediator (as {actor.role})", **self.acted},
            what="be its mediator",
        )
        if nominee == self.mediator:
            raise InvalidInputError(f"{nominee} is already the mediator of {self.reference}; nominate another person")
        self._check_eligible(rules, people, nominee)
        self._nominate(mediator=nominee, note=command.note, **self._who(actor, command_id, at))

    @event("MediatorNominated")
    def _nominate(
        self, *, mediator: str, note: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.nominee = person_id(mediator)  # recorded as `mediator:<id>` before: the same person
        self.agreed = []
        self._acted(actor_id, f"nominated a mediator (as {actor_role})")
        self._done(command_id)

    def agree(
        self, rules: Rules, *, actor: Actor, command: Agree, command_id: str, at: datetime, people: Roster
    ) -> None:
        """Every party to the dispute must agree to the nominee (MOU: selected by agreement)."""
        self._check(rules, "agree", actor)
        self._check_party_person(rules, actor)
        self._agree(party=actor.party or "", mediator=self.nominee or "", **self._who(actor, command_id, at))

    @event("MediatorAgreed")
    def _agree(
        self, *, party: str, mediator: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.agreed.append(party)
        self._acted(actor_id, f"agreed to a mediator for {party}", party)
        self._done(command_id)

    def refuse(
        self, rules: Rules, *, actor: Actor, command: Refuse, command_id: str, at: datetime, people: Roster
    ) -> None:
        """A party refuses the nominee: the nomination lapses and a new one is needed."""
        self._check(rules, "refuse", actor)
        self._check_party_person(rules, actor)
        self._refuse(
            party=actor.party or "", mediator=self.nominee or "", note=command.note, **self._who(actor, command_id, at)
        )

    @event("MediatorRefused")
    def _refuse(
        self, *, party: str, mediator: str, note: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.nominee = None
        self.agreed = []
        self._acted(actor_id, f"refused a mediator for {party}", party)
        self._done(command_id)

    def object_to_nominee(
        self, rules: Rules, *, actor: Actor, command: Object, command_id: str, at: datetime, people: Roster
    ) -> None:
        """A party objects that the nominee is not independent, and says why. Any party to the dispute
        may, whether or not it has agreed, until the nominee is appointed: the nominee lapses (the
        mediator is selected by agreement, and this party does not agree) and is not nominated
        again in this dispute."""
        self._check(rules, "object", actor)
        self._check_party_person(rules, actor)
        self._object(
            party=actor.party or "",
            mediator=self.nominee or "",
            reason=command.reason,
            **self._who(actor, command_id, at),
        )

    @event("MediatorObjected")
    def _object(
        self, *, party: str, mediator: str, reason: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.objections.append(
            {
                "party": party,
                "nominee": mediator,
                "reason": reason,
                "by": f"{actor_role}:{actor_id}",
                "at": at.isoformat(),
            }
        )
        self.nominee = None
        self.agreed = []
        self._acted(actor_id, f"objected to a mediator for {party}", party)
        self._done(command_id)

    def appoint(
        self, rules: Rules, *, actor: Actor, command: Appoint, command_id: str, at: datetime, people: Roster
    ) -> None:
        """The agreed mediator is appointed in writing: the letter's reference is recorded. They must
        still be eligible (a role granted or revoked since the nomination counts). A replacement
        agreed during mediation takes the first mediator's place, and the mediation starts afresh."""
        self._check(rules, "appoint", actor)
        sep = self._separation(rules)
        sep.check_not_starter(
            reference=self.reference, person=actor.id, started_by=self.started_by, what="appoint its mediator"
        )
        sep.check_independent(
            reference=self.reference,
            person=self.nominee or "",
            acted={actor.id: f"appoints the mediator (as {actor.role})", **self.acted},
            what="be its mediator",
        )
        self._check_eligible(rules, people, self.nominee or "")
        times = self._times(rules, "mediation", at)
        self._appoint(
            mediator=self.nominee or "",
            letter_ref=command.letter_ref,
            deadline=times.deadline,
            reminder_at=times.reminder_at,
            **self._who(actor, command_id, at),
        )

    @event("MediatorAppointed")
    def _appoint(
        self,
        *,
        mediator: str,
        letter_ref: str,
        deadline: datetime,
        reminder_at: datetime | None,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        if self.mediator is not None:  # a replacement, agreed by the parties during the mediation
            self.former_mediators.append(
                {
                    "id": self.mediator,
                    "letter_ref": self.letter_ref,
                    "ended": "replaced",
                    "note": "",
                    "at": at.isoformat(),
                }
            )
        self.mediator = person_id(mediator)  # recorded as `mediator:<id>` before: the same person
        self.letter_ref = letter_ref
        self.nominee = None
        self.agreed = []
        self._acted(actor_id, f"appointed the mediator (as {actor_role})")
        self._done(command_id)
        self._move("mediation", OPEN, deadline, reminder_at)

    def record_findings(
        self, rules: Rules, *, actor: Actor, command: Findings, command_id: str, at: datetime, people: Roster
    ) -> None:
        """Only the appointed mediator records findings; they bind the parties; costs are shared equally."""
        self._check(rules, "findings", actor)
        if actor.id != self.mediator:
            raise NotAllowedError(
                f"only the appointed mediator ({self.mediator}) records findings for {self.reference}"
            )
        shares = split_cost(command.cost_pence, self.parties, rules.policy.partnership.parties)
        self._findings(
            findings=command.findings,
            cost_pence=command.cost_pence,
            cost_shares=shares,
            **self._who(actor, command_id, at),
        )

    @event("FindingsRecorded")
    def _findings(
        self,
        *,
        findings: str,
        cost_pence: int,
        cost_shares: dict[str, int],
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.findings = findings
        self.cost_pence = cost_pence
        self.cost_shares = dict(cost_shares)
        self._done(command_id)
        self._move("", "findings_recorded", None, None)

    def withdraw(
        self, rules: Rules, *, actor: Actor, command: Withdraw, command_id: str, at: datetime, people: Roster
    ) -> None:
        """The appointed mediator withdraws: the dispute goes back to mediator selection, with that
        stage's deadline from now, and the parties select another by agreement (a replacement already
        being selected carries on)."""
        self._check(rules, "withdraw", actor)
        if actor.id != self.mediator:
            raise NotAllowedError(f"only the appointed mediator ({self.mediator}) may withdraw from {self.reference}")
        times = self._times(rules, "mediator_selection", at)
        self._withdraw(
            mediator=self.mediator,
            note=command.note,
            deadline=times.deadline,
            reminder_at=times.reminder_at,
            **self._who(actor, command_id, at),
        )

    @event("MediatorWithdrew")
    def _withdraw(
        self,
        *,
        mediator: str,
        note: str,
        deadline: datetime,
        reminder_at: datetime | None,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.former_mediators.append(
            {"id": mediator, "letter_ref": self.letter_ref, "ended": "withdrew", "note": note, "at": at.isoformat()}
        )
        self.mediator = None
        self.letter_ref = None
        self._done(command_id)
        self._move("mediator_selection", OPEN, deadline, reminder_at)

    # --- the clock --------------------------------------------------------------------------

    def extend(
        self, rules: Rules, *, actor: Actor, command: Extend, command_id: str, at: datetime, people: Roster
    ) -> None:
        """An escalated stage gets a new deadline from the escalation forum (governance.md: every kind's
        escalation is actionable); the stage and what was done in it so far stay as they are."""
        self._check(rules, "extend", actor)
        if command.new_deadline is not None:
            if command.new_deadline <= rules.calendar.local_date(at):
                raise InvalidInputError(f"new deadline {command.new_deadline.isoformat()} is not after today")
            d = rules.policy.dispute
            times = with_reminder(
                rules, rules.calendar.close_of_business_on(command.new_deadline), at, d.reminder_working_days
            )
        else:
            times = self._times(rules, self.stage, at)
        self._extend(
            stage=self.stage,
            deadline=times.deadline,
            reminder_at=times.reminder_at,
            note=command.note,
            **self._who(actor, command_id, at),
        )

    @event("DeadlineExtended")
    def _extend(
        self,
        *,
        stage: str,
        deadline: datetime,
        reminder_at: datetime | None,
        note: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self._open_stage(stage, deadline, reminder_at)
        self._done(command_id)

    def fire(self, rules: Rules, *, timer: str, command_id: str, at: datetime, people: Roster) -> None:
        """A reminder before a stage's deadline, or the escalation of a missed one."""
        due = {t.name: t.at for t in self.timers()}
        if self.status != OPEN:
            raise CaseClosedError(f"{self.reference} is {self.status}; it takes no more commands")
        if timer not in due:
            raise DeadlineNotReachedError(f"{self.reference} has no timer {timer!r} pending")
        if at < due[timer]:
            raise DeadlineNotReachedError(f"{timer} for {self.reference} is due at {due[timer].isoformat()}")
        who = self._who(SYSTEM_ACTOR, command_id, at)
        if timer.startswith("remind:"):
            # The mediation's deadline is the mediator's: a replacement being selected meanwhile is not
            # what the reminder is about.
            acting = {r for a in self.actions(rules) for r in a.roles}
            recipients = [MEDIATOR_ROLE] if self.stage == "mediation" else sorted(acting)
            self._remind(stage=self.stage, deadline=self.deadline, recipient_roles=recipients, **who)
        else:
            self._escalate(
                stage=self.stage, missed_deadline=self.deadline, to_forum=rules.policy.dispute.escalation_forum, **who
            )

    @event("ReminderSent")
    def _remind(
        self,
        *,
        stage: str,
        deadline: datetime | None,
        recipient_roles: list[str],
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.reminder_sent = True
        self._done(command_id)

    @event("Escalated")
    def _escalate(
        self,
        *,
        stage: str,
        missed_deadline: datetime | None,
        to_forum: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.escalated_to = to_forum
        self._done(command_id)

    # --- internals --------------------------------------------------------------------------

    @staticmethod
    def _separation(rules: Rules) -> Separation:
        return rules.policy.separation

    def _acted(self, person: str, part: str, party: str | None = None) -> None:
        """Remember (in an event body) that `person` acted in the dispute, and for which party."""
        self.acted.setdefault(person, part)
        if party is not None:
            self.acted_for.setdefault(person, party)

    def _check_eligible(self, rules: Rules, people: Roster, person: str) -> None:
        """The mediator is a person of the directory who holds the mediator role, no role tied to a
        party (MOU, Governance: "an independent mediator"), and no party has objected to."""
        roles = people.roles_of(person)
        if roles is None:
            raise MediatorNotEligibleError(
                f"no user has the id {person!r}: the mediator is a person of the directory who holds the "
                f"{MEDIATOR_ROLE} role (an administrator adds them with `concordat user add`)"
            )
        if MEDIATOR_ROLE not in roles:
            raise MediatorNotEligibleError(
                f"{person} does not hold the {MEDIATOR_ROLE} role (they hold: {', '.join(roles) or 'none'}); "
                f"an administrator grants it with `concordat user grant {person} --role {MEDIATOR_ROLE}`"
            )
        for role in roles:
            party = rules.policy.party_of_role(role)
            if party is not None:
                raise MediatorNotEligibleError(
                    f"{person} holds {role}, a role of {party}: the mediator is independent of the parties; "
                    "nominate someone who holds no party's role"
                )
        for o in self.objections:
            if o["nominee"] == person:
                raise MediatorNotEligibleError(
                    f"{o['party']} objected to {person} as not independent ({o['reason']}); nominate someone else"
                )

    def _check_party_person(self, rules: Rules, actor: Actor) -> None:
        """A party's agreement to a mediator is given by its own person: not by one who acts for
        another party, nor by the nominee."""
        sep = self._separation(rules)
        sep.check_one_party(
            reference=self.reference, person=actor.id, party=actor.party or "", acted_for=self.acted_for
        )
        if self.nominee is not None:
            sep.check_independent(
                reference=self.reference,
                person=self.nominee,
                acted={actor.id: f"answers for {actor.party}"},
                what="be its mediator",
            )

    def _check(self, rules: Rules, action: str, actor: Actor) -> None:
        if self.status != OPEN:
            raise CaseClosedError(f"{self.reference} is {self.status}; it takes no more commands")
        if actor.party is not None:
            rules.membership.check_acting_for(actor.party, self.reference)
        allowed = {a.name: a.roles for a in self.actions(rules)}
        if action not in allowed:
            raise WrongStageError(
                f"{self.reference} is at {self.stage}; {action} is not possible now; possible: {', '.join(allowed)}"
            )
        if actor.role not in allowed[action]:
            if actor.party and actor.party not in self.parties and action == "object":
                raise NotAPartyError(
                    f"{actor.party} is not a party to {self.reference}; parties: {', '.join(self.parties)}"
                )
            if actor.party and f"party_rep:{actor.party}" not in allowed[action] and action in ("agree", "refuse"):
                raise NotAPartyError(
                    f"{actor.party} is not a party waiting to agree in {self.reference}; waiting: "
                    + ", ".join(r.removeprefix("party_rep:") for r in allowed[action])
                )
            raise NotAllowedError(
                f"role {actor.role} may not {action} in {self.reference}; allowed: {', '.join(allowed[action])}"
            )

    def _times(self, rules: Rules, stage: str, at: datetime):  # noqa: ANN202 - StageTimes
        d = rules.policy.dispute
        return working_day_times(rules, d.stages[stage].deadline, at, d.reminder_working_days)

    def _move(self, stage: str, status: str, deadline: datetime | None, reminder_at: datetime | None) -> None:
        self.status = status
        if status != OPEN:  # closed: no stage is awaited any more (findings close the mediation)
            self.stage = ""
            self.deadline = self.reminder_at = None
            return
        if deadline is not None:
            self._open_stage(stage, deadline, reminder_at)

    def _open_stage(self, stage: str, deadline: datetime, reminder_at: datetime | None) -> None:
        self.stage = stage
        self.stage_seq += 1
        self.deadline = deadline
        self.reminder_at = reminder_at
        self.reminder_sent = False
        self.escalated_to = None
