"""Termination of the partnership: a party's notice, and the partnership it changes.

MOU, Termination: "Parties to this MOU may terminate by giving at least six months' notice in
writing to the other partners. Ideally, termination should coincide with year-end. Termination can
be agreed at any time by mutual consent."

A `TerminationNotice` is served in writing (its letter's reference is required) by one member's
representative. The date of service is the date the letter was served: it may be recorded late, up
to the policy's `late_recording_working_days` (default 10) after it; never before the partnership
began, never in the future, and never so that the date it takes effect has already come. It takes
effect no earlier than six calendar months after service (the same day six months on, or the last
day of that month where the day does not exist: 31 August → 28 or 29 February); with `year_end`, on
the first 31 March on or after that. Reminders go to all parties three months and one month before
(policy), on a working day (the one before, if that day is not). The serving party may withdraw it
before it takes effect. When a notice matures, the serving party leaves the `Partnership`; with
fewer than two members left, the partnership ends.

Termination by mutual consent needs no notice: it is an agreement of its own
(`domain/agreement.py`). Notices recorded by earlier releases may carry consents; those still count.

The `Partnership` records who takes part; the rules read it as a `Membership` (domain/membership.py):
a party that has left is no party to new cases and takes no part in open ones.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import ClassVar
from uuid import UUID, uuid5

from dateutil.relativedelta import relativedelta
from eventsourcing.domain import event

from domain.actor import Actor
from domain.calendar import WorkingDayCalendar
from domain.case import CASE_NAMESPACE, SYSTEM_ACTOR, Case, CaseAction, CaseView, Command, Rules, Timer
from domain.errors import (
    CaseClosedError,
    DeadlineNotReachedError,
    InvalidInputError,
    NotAllowedError,
    NotAPartyError,
    NoticeTooShortError,
    WrongStageError,
)
from domain.membership import Departure, Membership
from domain.recorded import Recorded
from domain.values import Note, Reference

PENDING = "pending"


class ServeNotice(Command):
    letter_ref: Reference
    served_on: date | None = None
    effective: date | None = None
    year_end: bool = False


class WithdrawNotice(Command):
    note: Note = ""


class Consent(Command):
    effective: date


def earliest_effective(rules: Rules, served_on: date) -> date:
    """Six calendar months on: relativedelta keeps the day, or takes the month's last day."""
    return served_on + relativedelta(months=rules.policy.termination.notice_months)


def first_year_end(rules: Rules, on_or_after: date) -> date:
    ye = rules.policy.termination.year_end
    candidate = date(on_or_after.year, ye.month, ye.day)
    return candidate if candidate >= on_or_after else date(on_or_after.year + 1, ye.month, ye.day)


def check_service_date(rules: Rules, served_on: date, today: date) -> None:
    """MOU, Termination ("notice in writing"); governance.md: the date of service is the date the
    letter was served. It may be recorded late, but only within the policy's window of working days
    (`late_recording_working_days`); never before the partnership began; never in the future."""
    if served_on > today:
        raise InvalidInputError(
            f"--served-on {served_on.isoformat()} is in the future; notice is served on or before today"
        )
    began = rules.policy.partnership.started_on
    if served_on < began:
        raise InvalidInputError(
            f"--served-on {served_on.isoformat()} is before the partnership began on {began.isoformat()}; "
            "notice can only be served by a member"
        )
    window = rules.policy.termination.late_recording_working_days
    # The last day before the window's next working day begins (a weekend after the tenth counts).
    last_day = rules.calendar.add_working_days(served_on, window + 1) - timedelta(days=1)
    if today > last_day:
        raise InvalidInputError(
            f"--served-on {served_on.isoformat()} is too long ago: a notice may be recorded at most {window} "
            f"working days after it was served (this one by {last_day.isoformat()}; today is {today.isoformat()})"
        )


def reminder_day(rules: Rules, effective: date, months: int) -> date:
    """`months` calendar months before the date a notice takes effect, on a working day: a day that
    falls on a weekend or bank holiday moves to the working day before (a reminder is never late)."""
    day = effective - relativedelta(months=months)
    while not rules.calendar.is_working_day(day):
        day -= timedelta(days=1)
    return day


class Partnership(Recorded):
    """The member parties. Changes only through events: formed, a party left, ended."""

    @staticmethod
    def create_id() -> UUID:
        return uuid5(CASE_NAMESPACE, "partnership")

    @event("Formed")
    def __init__(self, *, members: list[str], started_on: datetime) -> None:
        self.members = list(members)
        self.started_on = started_on
        self.ended_on: datetime | None = None
        self.departures: list[dict[str, str]] = []

    @property
    def is_active(self) -> bool:
        return self.ended_on is None

    def leave(self, *, party: str, notice_ref: str, on: datetime) -> None:
        if party not in self.members:
            return  # already gone (e.g. the partnership ended by consent first)
        self._leave(party=party, notice_ref=notice_ref, on=on)
        if len(self.members) < 2 and self.is_active:
            self._end(reason=f"fewer than two members after {party} left", notice_ref=notice_ref, on=on)

    def end_by_consent(self, *, notice_ref: str, on: datetime) -> None:
        if self.is_active:
            self._end(reason="mutual consent of all members", notice_ref=notice_ref, on=on)

    @event("PartyLeft")
    def _leave(self, *, party: str, notice_ref: str, on: datetime) -> None:
        self.members.remove(party)
        self.departures.append({"party": party, "notice_ref": notice_ref, "on": on.isoformat()})

    @event("Ended")
    def _end(self, *, reason: str, notice_ref: str, on: datetime) -> None:
        self.ended_on = on
        self.ended_by = notice_ref

    def membership(self, calendar: WorkingDayCalendar) -> Membership:
        """Who takes part now, as the rules read it (dates are the partnership's local days)."""
        return Membership(
            members=tuple(self.members),
            departures=tuple(
                Departure(
                    party=d["party"],
                    on=calendar.local_date(datetime.fromisoformat(d["on"])),
                    reference=d["notice_ref"],
                )
                for d in self.departures
            ),
            ended_on=calendar.local_date(self.ended_on) if self.ended_on else None,
            ended_by=getattr(self, "ended_by", ""),
        )


class TerminationNotice(Case):
    COLLABORATORS: ClassVar[tuple[str, ...]] = ("partnership",)
    kind: ClassVar[str] = "termination"

    @classmethod
    def serve(
        cls,
        rules: Rules,
        *,
        reference: str,
        actor: Actor,
        command: ServeNotice,
        members: list[str],
        command_id: str,
        at: datetime,
    ) -> TerminationNotice:
        party = actor.party
        if party is None:
            raise NotAllowedError(f"role {actor.role} may not serve notice; a party_rep:<party> serves it")
        rules.membership.check_acting_for(party, "the partnership's cases: it has no notice to give")
        if party not in members:
            raise NotAPartyError(f"{party} is not a member of the partnership; members: {', '.join(members)}")
        today = rules.calendar.local_date(at)
        served_on = command.served_on or today
        check_service_date(rules, served_on, today)
        if command.effective and command.year_end:
            raise InvalidInputError("give --effective DATE or --year-end, not both")
        earliest = earliest_effective(rules, served_on)
        if command.effective is not None and command.effective < earliest:
            raise NoticeTooShortError(
                f"effective date {command.effective.isoformat()} is less than "
                f"{rules.policy.termination.notice_months} months after service on {served_on.isoformat()}; "
                f"the earliest allowed date is {earliest.isoformat()}"
            )
        effective = first_year_end(rules, earliest) if command.year_end else (command.effective or earliest)
        if effective <= today:
            raise InvalidInputError(
                f"a notice served on {served_on.isoformat()} takes effect on {effective.isoformat()}, which has "
                f"already come (today is {today.isoformat()}); a notice is recorded before it takes effect"
            )
        return cls._create(
            cls.Served,
            reference=reference,
            party=party,
            letter_ref=command.letter_ref,
            served_on=served_on.isoformat(),
            effective=effective.isoformat(),
            earliest=earliest.isoformat(),
            year_end=command.year_end,
            takes_effect_at=rules.calendar.at(effective, time(0, 0)),
            members=list(members),
            policy_hash=rules.policy.content_hash,
            actor_id=actor.id,
            actor_role=actor.role,
            command_id=command_id,
            at=at,
        )

    class Served(Case.Created):
        reference: str
        party: str
        letter_ref: str
        served_on: str
        effective: str
        earliest: str
        year_end: bool
        takes_effect_at: datetime
        members: list[str]
        policy_hash: str
        actor_id: str
        actor_role: str
        command_id: str
        at: datetime

    @event(Served)
    def __init__(
        self,
        *,
        reference: str,
        party: str,
        letter_ref: str,
        served_on: str,
        effective: str,
        earliest: str,
        year_end: bool,
        takes_effect_at: datetime,
        members: list[str],
        policy_hash: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.reference = reference
        self.party = party
        self.letter_ref = letter_ref
        self.served_on = served_on
        self.effective = effective
        self.year_end = year_end
        self.members = list(members)
        self.policy_hash = policy_hash
        self.started_by = {"id": actor_id, "role": actor_role}
        self.started_at = at
        self.status = PENDING
        self.reminders_sent: list[str] = []
        self.consents: dict[str, str] = {}
        self.agreed_on: str | None = None
        # The party each person has acted for in this notice (separation of duties).
        self.acted_for: dict[str, str] = {actor_id: party}
        self.command_versions: dict[str, int] = {command_id: 1}

    # --- who may act, and when the clock wakes ------------------------------------------------

    ACTIONS: ClassVar[dict[str, tuple[type[Command], str]]] = {
        "withdraw": (WithdrawNotice, "withdraw"),
        "consent": (Consent, "consent"),
    }

    def actions(self, rules: Rules) -> list[CaseAction]:
        if self.status != PENDING:
            return []
        # Mutual consent is an agreement of its own (domain/agreement.py), not a command on a notice.
        return [CaseAction("withdraw", [f"party_rep:{self.party}"])]

    def _instant(self, rules: Rules, day: date) -> datetime:
        """A date takes effect at its start, midnight in Europe/London."""
        return rules.calendar.at(day, time(0, 0))

    def timers(self, rules: Rules) -> list[Timer]:
        if self.status != PENDING:
            return []
        if self.agreed_on:
            return [Timer("mutual", self._instant(rules, date.fromisoformat(self.agreed_on)))]
        effective = date.fromisoformat(self.effective)
        timers = []
        for months in rules.policy.termination.reminder_months_before:
            name = f"remind:{months}m"
            day = reminder_day(rules, effective, months)
            at = rules.calendar.at(day, rules.calendar.start_of_business)
            # None before the letter was served, nor before it was recorded (no reminder after the fact).
            if name not in self.reminders_sent and day > date.fromisoformat(self.served_on) and at > self.started_at:
                timers.append(Timer(name, at))
        timers.append(Timer("mature", self._instant(rules, effective)))
        return timers

    def view(self, rules: Rules) -> CaseView:
        return CaseView(
            reference=self.reference,
            kind=self.kind,
            title=f"{self.party} gives notice to leave the partnership",
            status=self.status,
            stage="notice" if self.status == PENDING else "",
            version=self.version,
            deadline=self._instant(rules, date.fromisoformat(self.agreed_on or self.effective))
            if self.status == PENDING
            else None,
            policy_hash=self.policy_hash,
            started_at=self.started_at,
            started_by=dict(self.started_by),
            actions=self.actions(rules),
            timers=self.timers(rules),
            details={
                "party": self.party,
                "letter_ref": self.letter_ref,
                "served_on": self.served_on,
                "effective": self.effective,
                "year_end": self.year_end,
                "members": list(self.members),
                "consents": dict(self.consents),
                "mutual_termination_on": self.agreed_on,
                "reminders_sent": list(self.reminders_sent),
            },
        )

    # --- commands ---------------------------------------------------------------------------

    def withdraw(
        self,
        rules: Rules,
        *,
        actor: Actor,
        command: WithdrawNotice,
        command_id: str,
        at: datetime,
        partnership: Partnership,
    ) -> None:
        """The serving party withdraws its notice before it takes effect."""
        self._check(rules, "withdraw", actor)
        self._withdraw(note=command.note, **self._who(actor, command_id, at))

    @event("Withdrawn")
    def _withdraw(self, *, note: str, actor_id: str, actor_role: str, command_id: str, at: datetime) -> None:
        self.status = "withdrawn"
        self._done(command_id)

    def consent(
        self, rules: Rules, *, actor: Actor, command: Consent, command_id: str, at: datetime, partnership: Partnership
    ) -> None:
        """Consent on a notice, as earlier releases took it: refused now. Termination by mutual consent
        is an agreement of its own that needs no notice (`TerminationAgreement`); consents recorded on
        a notice before still count (the `mutual` timer), so those cases run as they were recorded."""
        if self.status == PENDING:
            raise InvalidInputError(
                f"{self.reference} is a notice; mutual consent is an agreement of its own: propose one "
                "(`concordat termination propose`, POST /agreements) and every party signs it"
            )
        self._check(rules, "consent", actor)

    @event("ConsentRecorded")
    def _consent(
        self,
        *,
        party: str,
        effective: str,
        agreed_by_all: bool,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.consents[party] = effective
        self.agreed_on = effective if agreed_by_all else None
        self.acted_for.setdefault(actor_id, party)
        self._done(command_id)

    # --- the clock --------------------------------------------------------------------------

    def fire(self, rules: Rules, *, timer: str, command_id: str, at: datetime, partnership: Partnership) -> None:
        if self.status != PENDING:
            raise CaseClosedError(f"{self.reference} is {self.status}; it takes no more commands")
        due = {t.name: t.at for t in self.timers(rules)}
        if timer not in due:
            raise DeadlineNotReachedError(f"{self.reference} has no timer {timer!r} pending")
        if at < due[timer]:
            raise DeadlineNotReachedError(f"{timer} for {self.reference} is due at {due[timer].isoformat()}")
        if timer.startswith("remind:"):
            self._remind(
                reminder=timer,
                effective=self.effective,
                recipients=list(partnership.members),
                **self._who(SYSTEM_ACTOR, command_id, at),
            )
        else:
            self._conclude(rules, timer, partnership, command_id=command_id, at=at)

    @event("RemindersSent")
    def _remind(
        self,
        *,
        reminder: str,
        effective: str,
        recipients: list[str],
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.reminders_sent.append(reminder)
        self._done(command_id)

    def _conclude(self, rules: Rules, how: str, partnership: Partnership, *, command_id: str, at: datetime) -> None:
        on = (
            self._instant(rules, rules.calendar.local_date(at))
            if how == "mutual"
            else self._instant(rules, date.fromisoformat(self.effective))
        )
        if how == "mutual":
            self._terminate_by_consent(on=on, **self._who(SYSTEM_ACTOR, command_id, at))
            partnership.end_by_consent(notice_ref=self.reference, on=on)
        else:
            self._mature(party=self.party, on=on, **self._who(SYSTEM_ACTOR, command_id, at))
            partnership.leave(party=self.party, notice_ref=self.reference, on=on)

    @event("Matured")
    def _mature(
        self, *, party: str, on: datetime, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.status = "matured"
        self._done(command_id)

    @event("MutuallyTerminated")
    def _terminate_by_consent(
        self, *, on: datetime, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.status = "ended_by_consent"
        self._done(command_id)

    # --- internals --------------------------------------------------------------------------

    def _check(self, rules: Rules, action: str, actor: Actor) -> None:
        if self.status != PENDING:
            raise CaseClosedError(f"{self.reference} is {self.status}; it takes no more commands")
        allowed = {a.name: a.roles for a in self.actions(rules)}
        if action not in allowed:
            raise WrongStageError(f"{action} is not possible on {self.reference} now")
        if actor.role not in allowed[action]:
            raise NotAllowedError(
                f"role {actor.role} may not {action} on {self.reference}; allowed: {', '.join(allowed[action])}"
            )
