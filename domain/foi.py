"""Freedom of Information requests about the partnership's workings (`FOI-2026-0001`).

MOU, Freedom of Information: "Requests regarding partnership workings or collective decisions of the
parties will be responded to by the party first approached for the request within the legal time
frame, with the response agreed by the other party."

A `FoiRequest` is recorded by a representative of the party first approached (`party_rep:<party>`),
with the date it was received (today or earlier, never before the partnership began). That party
answers it. The legal time frame is `domain/foi_clock.py`'s: twenty working days of the whole UK
(`[foi]` in the policy), stopped while clarification is sought (s.1(3): when it arrives the count
starts again from day one) and while a fees notice is unpaid (s.10(2)), moved to a later date by a
public-interest extension with its reason (s.10(3); at most the policy's further working days).

Lifecycle: `open` → a draft response, citing any exemptions, goes to each other party (the members
of the partnership when the draft is put) → each other party's representative agrees it or refuses
it (a refusal sends it back for a new draft); one that has not answered by the policy's deadline is
escalated to the Lead Director (`[foi.agreement] escalate_to`), who may then agree it in that party's
place → once every other party has agreed, the first party sends it (`sent`, on a date), and whether
it was on time is recorded. A reminder goes to the answering party before the due date; the due date
passing unanswered is recorded (`Overdue`).

Invariants: dates are never in the future and never go back (a clarification arrives on or after it
was sought; a fee is paid on or after its notice); nothing but a clarification's or fee's arrival is
recorded while the clock is stopped; a response is sent only with every other party's agreement to
its latest draft; every command id is applied at most once.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any, ClassVar

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
from domain.foi_clock import AWAITING_CLARIFICATION, AWAITING_FEE, FoiClock, Span, UkWorkingDays, foi_clock
from domain.values import Note, Reference, Title

OPEN = "open"
SENT = "sent"


class ReceiveRequest(Command):
    subject: Title
    requester_ref: Reference
    received_on: date | None = None


class OnDate(Command):
    """A step on a date: today when not given."""

    on: date | None = None
    note: Note = ""


class Extend(Command):
    to: date
    reason: Reference


class Draft(Command):
    draft_ref: Reference
    exemptions: list[Reference] = Field(default_factory=list, max_length=20)
    note: Note = ""


class AgreeDraft(Command):
    pass


class RefuseDraft(Command):
    note: Note = ""


@lru_cache(maxsize=8)
def working_days_of(country: str, nations: tuple[str, ...]) -> UkWorkingDays:
    """The FOI calendar for the policy's nations (built once: the holiday lists are costly)."""
    return UkWorkingDays(country, nations)


def foi_calendar(rules: Rules) -> UkWorkingDays:
    return working_days_of(rules.policy.partnership.holiday_country, tuple(rules.policy.foi.holiday_nations))


class FoiRequest(Case):
    kind: ClassVar[str] = "foi"

    @classmethod
    def receive(
        cls, rules: Rules, *, reference: str, actor: Actor, command: ReceiveRequest, command_id: str, at: datetime
    ) -> FoiRequest:
        party = actor.party
        if party is None:
            raise NotAllowedError(
                f"role {actor.role} may not record an FOI request; the representative of the party first "
                "approached does (party_rep:<party>)"
            )
        membership = rules.membership
        membership.check_acting_for(party, "FOI requests")
        members = membership.current(membership.members)
        if party not in members:
            raise NotAPartyError(f"{party} is not a member of the partnership; members: {', '.join(members)}")
        today = rules.calendar.local_date(at)
        received = command.received_on or today
        _not_future(received, today, "--received-on")
        began = rules.policy.partnership.started_on
        if received < began:
            raise InvalidInputError(
                f"--received-on {received.isoformat()} is before the partnership began on {began.isoformat()}"
            )
        subject = command.subject.strip()
        return cls._create(
            cls.Received,
            reference=reference,
            subject=subject,
            requester_ref=command.requester_ref,
            party=party,
            parties=members,
            received_on=received.isoformat(),
            policy_hash=rules.policy.content_hash,
            actor_id=actor.id,
            actor_role=actor.role,
            command_id=command_id,
            at=at,
        )

    class Received(Case.Created):
        reference: str
        subject: str
        requester_ref: str
        party: str
        parties: list[str]
        received_on: str
        policy_hash: str
        actor_id: str
        actor_role: str
        command_id: str
        at: datetime

    @event(Received)
    def __init__(
        self,
        *,
        reference: str,
        subject: str,
        requester_ref: str,
        party: str,
        parties: list[str],
        received_on: str,
        policy_hash: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.reference = reference
        self.subject = subject
        self.requester_ref = requester_ref
        self.party = party
        self.parties = list(parties)
        self.received_on = received_on
        self.policy_hash = policy_hash
        self.started_by = {"id": actor_id, "role": actor_role}
        self.started_at = at
        self.status = OPEN
        self.clarifications: list[dict[str, str | None]] = []
        self.fees: list[dict[str, str | None]] = []
        self.extension: dict[str, str] | None = None
        self.drafts: list[dict[str, Any]] = []
        self.sent_on: str | None = None
        self.on_time: bool | None = None
        self.reminded: set[str] = set()
        self.overdue: set[str] = set()
        self.command_versions: dict[str, int] = {command_id: 1}

    # --- the clock ------------------------------------------------------------------------------

    def clock(self, rules: Rules) -> FoiClock:
        return foi_clock(
            foi_calendar(rules),
            received=date.fromisoformat(self.received_on),
            clarifications=[_span(c["asked_on"], c["arrived_on"]) for c in self.clarifications],
            fees=[_span(f["notice_on"], f["paid_on"]) for f in self.fees],
            extended_to=date.fromisoformat(self.extension["to"]) if self.extension else None,
            working_days=rules.policy.foi.working_days,
        )

    @property
    def draft(self) -> dict[str, Any] | None:
        return self.drafts[-1] if self.drafts and self.drafts[-1]["status"] == "agreeing" else None

    def _others(self, rules: Rules) -> list[str]:
        """The other parties whose agreement a response needs: those still members."""
        return [p for p in rules.membership.current(self.parties) if p != self.party]

    def _waiting(self, rules: Rules) -> list[str]:
        d = self.draft
        return [p for p in self._others(rules) if d is not None and p not in d["agreed"]]

    # --- what may be done now -------------------------------------------------------------------

    ACTIONS: ClassVar[dict[str, tuple[type[Command], str]]] = {
        "seek_clarification": (OnDate, "seek_clarification"),
        "clarification_received": (OnDate, "clarification_received"),
        "fees_notice": (OnDate, "fees_notice"),
        "fee_paid": (OnDate, "fee_paid"),
        "extend_public_interest": (Extend, "extend_public_interest"),
        "draft_response": (Draft, "put_draft"),
        "agree": (AgreeDraft, "agree"),
        "refuse": (RefuseDraft, "refuse"),
        "send_response": (OnDate, "send"),
    }

    def actions(self, rules: Rules) -> list[CaseAction]:
        if self.status != OPEN:
            return []
        own = [f"party_rep:{self.party}"]
        state = self.clock(rules).status
        if state == AWAITING_CLARIFICATION:
            return [CaseAction("clarification_received", own)]
        if state == AWAITING_FEE:
            return [CaseAction("fee_paid", own)]
        found = [CaseAction("draft_response", own)]
        if self.draft is None:
            found.append(CaseAction("seek_clarification", own))
            found.append(CaseAction("fees_notice", own))
        if self.extension is None:
            found.append(CaseAction("extend_public_interest", own))
        waiting = self._waiting(rules)
        if self.draft is not None and waiting:
            escalated = set(self.draft["escalated"])
            agree = [f"party_rep:{p}" for p in waiting]
            if escalated & set(waiting):
                agree.append(rules.policy.foi.agreement.escalate_to)
            found.append(CaseAction("agree", agree))
            found.append(CaseAction("refuse", [f"party_rep:{p}" for p in waiting]))
        if self.draft is not None and not waiting:
            found.append(CaseAction("send_response", own))
        return found

    def timers(self, rules: Rules) -> list[Timer]:
        if self.status != OPEN:
            return []
        found: list[Timer] = []
        clock = self.clock(rules)
        cal = rules.calendar
        if clock.due is not None:
            due = clock.due.isoformat()
            lead = rules.policy.foi.reminder_working_days
            if lead and f"remind:{due}" not in self.reminded:
                day = foi_calendar(rules).add_working_days(clock.counted_from, rules.policy.foi.working_days - lead)
                if day < clock.due:
                    found.append(Timer(f"remind:{due}", cal.at(day, cal.start_of_business)))
            if f"overdue:{due}" not in self.overdue:
                found.append(Timer(f"overdue:{due}", cal.close_of_business_on(clock.due)))
        d = self.draft
        if d is not None and not d["escalation_done"] and self._waiting(rules):
            found.append(Timer(f"escalate:{d['number']}", datetime.fromisoformat(d["deadline"])))
        return found

    def view(self, rules: Rules) -> CaseView:
        clock = self.clock(rules)
        d = self.draft
        stage = (
            clock.status
            if clock.status != "running"
            else ("agreement" if d is not None and self._waiting(rules) else ("send" if d is not None else "drafting"))
        )
        return CaseView(
            reference=self.reference,
            kind=self.kind,
            title=f"FOI: {self.subject}",
            status=self.status,
            stage=stage if self.status == OPEN else "",
            deadline=rules.calendar.close_of_business_on(clock.due) if clock.due and self.status == OPEN else None,
            version=self.version,
            policy_hash=self.policy_hash,
            started_at=self.started_at,
            started_by=dict(self.started_by),
            actions=self.actions(rules),
            timers=self.timers(rules),
            details={
                "subject": self.subject,
                "requester_ref": self.requester_ref,
                "party": self.party,
                "parties": list(self.parties),
                "received_on": self.received_on,
                "clock": clock.status if self.status == OPEN else "answered",
                "counted_from": clock.counted_from.isoformat(),
                "statutory_due": clock.statutory_due.isoformat() if clock.statutory_due else None,
                "due": clock.due.isoformat() if clock.due else None,
                "clarifications": [dict(c) for c in self.clarifications],
                "fees": [dict(f) for f in self.fees],
                "extension": dict(self.extension) if self.extension else None,
                "drafts": [
                    {**dr, "agreed": dict(dr["agreed"]), "escalated": list(dr["escalated"])} for dr in self.drafts
                ],
                "awaiting": self._waiting(rules) if self.status == OPEN else [],
                "exemptions": list(self.drafts[-1]["exemptions"]) if self.drafts else [],
                "sent_on": self.sent_on,
                "on_time": self.on_time,
            },
        )

    # --- commands: the clock --------------------------------------------------------------------

    def seek_clarification(self, rules: Rules, *, actor: Actor, command: OnDate, command_id: str, at: datetime) -> None:
        """s.1(3): the clock stops until the requester clarifies."""
        self._check(rules, "seek_clarification", actor)
        on = self._on(rules, command, at, not_before=self._clock_start(rules), what="the request's receipt")
        self._sought(asked_on=on.isoformat(), note=command.note, **self._who(actor, command_id, at))

    @event("ClarificationSought")
    def _sought(
        self, *, asked_on: str, note: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.clarifications.append({"asked_on": asked_on, "arrived_on": None})
        self._done(command_id)

    def clarification_received(
        self, rules: Rules, *, actor: Actor, command: OnDate, command_id: str, at: datetime
    ) -> None:
        """s.1(3), s.10(6)(b): the day it arrives is the new date of receipt; the count starts again."""
        self._check(rules, "clarification_received", actor)
        asked = date.fromisoformat(str(self.clarifications[-1]["asked_on"]))
        on = self._on(rules, command, at, not_before=asked, what="the day clarification was sought")
        self._clarified(arrived_on=on.isoformat(), note=command.note, **self._who(actor, command_id, at))

    @event("ClarificationReceived")
    def _clarified(
        self, *, arrived_on: str, note: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.clarifications[-1]["arrived_on"] = arrived_on
        self._done(command_id)

    def fees_notice(self, rules: Rules, *, actor: Actor, command: OnDate, command_id: str, at: datetime) -> None:
        """s.10(2): from the day a fees notice is given to the day the fee arrives, the days are disregarded."""
        self._check(rules, "fees_notice", actor)
        clock = self.clock(rules)
        on = self._on(rules, command, at, not_before=clock.counted_from, what="the date the count runs from")
        if clock.statutory_due is not None and on > clock.statutory_due:
            raise InvalidInputError(
                f"--on {on.isoformat()} is after the day the answer was due ({clock.statutory_due.isoformat()}); "
                "a fees notice is given within the time for compliance"
            )
        self._fee_noticed(notice_on=on.isoformat(), note=command.note, **self._who(actor, command_id, at))

    @event("FeesNoticeGiven")
    def _fee_noticed(
        self, *, notice_on: str, note: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.fees.append({"notice_on": notice_on, "paid_on": None})
        self._done(command_id)

    def fee_paid(self, rules: Rules, *, actor: Actor, command: OnDate, command_id: str, at: datetime) -> None:
        self._check(rules, "fee_paid", actor)
        notice = date.fromisoformat(str(self.fees[-1]["notice_on"]))
        on = self._on(rules, command, at, not_before=notice, what="the day the fees notice was given")
        self._fee_paid(paid_on=on.isoformat(), note=command.note, **self._who(actor, command_id, at))

    @event("FeePaid")
    def _fee_paid(
        self, *, paid_on: str, note: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.fees[-1]["paid_on"] = paid_on
        self._done(command_id)

    def extend_public_interest(
        self, rules: Rules, *, actor: Actor, command: Extend, command_id: str, at: datetime
    ) -> None:
        """s.10(3): a reasonable further time to consider the public interest, with its reason."""
        self._check(rules, "extend_public_interest", actor)
        clock = self.clock(rules)
        due = clock.statutory_due
        if due is None:  # never: the action is offered only while the clock runs
            raise WrongStageError(f"{self.reference}'s clock is stopped ({clock.status})")
        most = rules.policy.foi.max_extension_working_days
        latest = foi_calendar(rules).add_working_days(due, most)
        if not (due < command.to <= latest):
            raise InvalidInputError(
                f"--to {command.to.isoformat()} must be after the day the answer is due ({due.isoformat()}) and at "
                f"most {most} working days after it ({latest.isoformat()})"
            )
        if not foi_calendar(rules).is_working_day(command.to):
            raise InvalidInputError(f"--to {command.to.isoformat()} is not a working day in every UK nation")
        self._extended(to=command.to.isoformat(), reason=command.reason, **self._who(actor, command_id, at))

    @event("PublicInterestExtended")
    def _extended(self, *, to: str, reason: str, actor_id: str, actor_role: str, command_id: str, at: datetime) -> None:
        self.extension = {"to": to, "reason": reason}
        self._done(command_id)

    # --- commands: the response -----------------------------------------------------------------

    def put_draft(self, rules: Rules, *, actor: Actor, command: Draft, command_id: str, at: datetime) -> None:
        """The draft response (its document's reference and the exemptions it cites) goes to each
        other party for agreement; a new draft replaces the one before and needs agreement afresh."""
        self._check(rules, "draft_response", actor)
        window = rules.policy.foi.agreement.working_days
        deadline = rules.calendar.deadline_after(at, window)
        exemptions = list(dict.fromkeys(e.strip() for e in command.exemptions if e.strip()))
        self._drafted(
            number=len(self.drafts) + 1,
            draft_ref=command.draft_ref,
            exemptions=exemptions,
            note=command.note,
            asks=self._others(rules),
            deadline=deadline.isoformat(),
            **self._who(actor, command_id, at),
        )

    @event("ResponseDrafted")
    def _drafted(
        self,
        *,
        number: int,
        draft_ref: str,
        exemptions: list[str],
        note: str,
        asks: list[str],
        deadline: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        for earlier in self.drafts:
            if earlier["status"] == "agreeing":
                earlier["status"] = "replaced"
        self.drafts.append(
            {
                "number": number,
                "draft_ref": draft_ref,
                "exemptions": list(exemptions),
                "asks": list(asks),
                "deadline": deadline,
                "agreed": {},
                "escalated": [],
                "escalation_done": False,
                "status": "agreeing",
            }
        )
        self._done(command_id)

    def agree(self, rules: Rules, *, actor: Actor, command: AgreeDraft, command_id: str, at: datetime) -> None:
        """An other party agrees the draft (MOU: "with the response agreed by the other party"); after
        escalation the Lead Director may agree it for each party that has not answered."""
        self._check(rules, "agree", actor)
        waiting = self._waiting(rules)
        d = self._current_draft()
        if actor.party is not None:
            if actor.party not in waiting:
                raise WrongStageError(f"{actor.party} is not asked to agree {self.reference}'s draft now")
            parties, in_place = [actor.party], False
        else:
            parties, in_place = [p for p in waiting if p in d["escalated"]], True
        self._agreed(number=d["number"], parties=parties, in_place=in_place, **self._who(actor, command_id, at))

    @event("ResponseAgreed")
    def _agreed(
        self,
        *,
        number: int,
        parties: list[str],
        in_place: bool,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        for p in parties:
            self.drafts[number - 1]["agreed"][p] = f"{actor_role}:{actor_id}"
        self._done(command_id)

    def refuse(self, rules: Rules, *, actor: Actor, command: RefuseDraft, command_id: str, at: datetime) -> None:
        """An other party does not agree the draft: it goes back for a new one."""
        self._check(rules, "refuse", actor)
        d = self._current_draft()
        if actor.party not in self._waiting(rules):
            raise WrongStageError(f"{actor.party} is not asked to agree {self.reference}'s draft now")
        self._refused(number=d["number"], party=str(actor.party), note=command.note, **self._who(actor, command_id, at))

    @event("ResponseRefused")
    def _refused(
        self, *, number: int, party: str, note: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.drafts[number - 1]["status"] = "refused"
        self._done(command_id)

    def send(self, rules: Rules, *, actor: Actor, command: OnDate, command_id: str, at: datetime) -> None:
        """The first party sends the agreed response; on time if on or before the due date."""
        self._check(rules, "send_response", actor)
        clock = self.clock(rules)
        on = self._on(rules, command, at, not_before=date.fromisoformat(self.received_on), what="receipt")
        due = clock.due
        d = self._current_draft()
        if due is None:  # never: sending is offered only while the clock runs
            raise WrongStageError(f"{self.reference}'s clock is stopped ({clock.status})")
        self._sent(
            sent_on=on.isoformat(),
            due=due.isoformat(),
            on_time=on <= due,
            draft_ref=d["draft_ref"],
            exemptions=list(d["exemptions"]),
            **self._who(actor, command_id, at),
        )

    class ResponseSent(Case.Event):
        sent_on: str
        due: str
        on_time: bool
        draft_ref: str
        exemptions: list[str]
        actor_id: str
        actor_role: str
        command_id: str
        at: datetime

    @event(ResponseSent)
    def _sent(
        self,
        *,
        sent_on: str,
        due: str,
        on_time: bool,
        draft_ref: str,
        exemptions: list[str],
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.status = SENT
        self.sent_on = sent_on
        self.on_time = on_time
        if self.drafts:
            self.drafts[-1]["status"] = "sent"
        self._done(command_id)

    # --- the clock's timers ---------------------------------------------------------------------

    def fire(self, rules: Rules, *, timer: str, command_id: str, at: datetime, **others: Any) -> None:
        if self.status != OPEN:
            raise CaseClosedError(closed_text(self.reference, self.status))
        due = {t.name: t.at for t in self.timers(rules)}
        if timer not in due:
            raise DeadlineNotReachedError(f"{self.reference} has no timer {timer!r} pending")
        if at < due[timer]:
            raise DeadlineNotReachedError(f"{timer} for {self.reference} is due at {due[timer].isoformat()}")
        kind, _, key = timer.partition(":")
        who = self._who(SYSTEM_ACTOR, command_id, at)
        if kind == "remind":
            self._remind(timer=timer, due=key, recipient_role=f"party_rep:{self.party}", **who)
        elif kind == "overdue":
            self._overdue(timer=timer, due=key, escalated_to=rules.policy.foi.agreement.escalate_to, **who)
        else:
            d = self._current_draft()
            self._escalate(
                number=d["number"],
                parties=self._waiting(rules),
                to_role=rules.policy.foi.agreement.escalate_to,
                **who,
            )

    @event("ReminderSent")
    def _remind(
        self,
        *,
        timer: str,
        due: str,
        recipient_role: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.reminded.add(timer)
        self._done(command_id)

    @event("Overdue")
    def _overdue(
        self, *, timer: str, due: str, escalated_to: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.overdue.add(timer)
        self._done(command_id)

    @event("AgreementEscalated")
    def _escalate(
        self,
        *,
        number: int,
        parties: list[str],
        to_role: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.drafts[number - 1]["escalated"] = list(parties)
        self.drafts[number - 1]["escalation_done"] = True
        self._done(command_id)

    # --- internals ------------------------------------------------------------------------------

    def _current_draft(self) -> dict[str, Any]:
        d = self.draft
        if d is None:  # never after `_check`: these commands are offered only with a draft out
            raise WrongStageError(f"{self.reference} has no draft response awaiting agreement")
        return d

    def _clock_start(self, rules: Rules) -> date:
        return self.clock(rules).counted_from

    def _check(self, rules: Rules, action: str, actor: Actor) -> None:
        if self.status != OPEN:
            raise CaseClosedError(closed_text(self.reference, self.status))
        offered = {a.name: a.roles for a in self.actions(rules)}
        if action not in offered:
            state = self.clock(rules).status
            why = {
                AWAITING_CLARIFICATION: "the clock is stopped until the clarification arrives",
                AWAITING_FEE: "the clock is stopped until the fee is paid",
            }.get(state, f"it takes now: {', '.join(a.replace('_', '-') for a in offered)}")
            raise WrongStageError(f"{self.reference} takes no {action.replace('_', '-')} now: {why}")
        if actor.role not in offered[action]:
            raise NotAllowedError(
                f"role {actor.role} may not {action.replace('_', '-')} on {self.reference}; "
                f"allowed: {', '.join(offered[action])}"
            )
        if actor.party is not None:
            rules.membership.check_acting_for(actor.party, self.reference)

    @staticmethod
    def _on(rules: Rules, command: OnDate, at: datetime, *, not_before: date, what: str) -> date:
        today = rules.calendar.local_date(at)
        on = command.on or today
        _not_future(on, today, "--on")
        if on < not_before:
            raise InvalidInputError(f"--on {on.isoformat()} is before {what} ({not_before.isoformat()})")
        return on


def _not_future(day: date, today: date, name: str) -> None:
    if day > today:
        raise InvalidInputError(f"{name} {day.isoformat()} is in the future; today is {today.isoformat()}")


def _span(start: str | None, end: str | None) -> Span:
    return Span(date.fromisoformat(str(start)), date.fromisoformat(end) if end else None)
