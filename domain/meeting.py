"""A meeting of a forum (`MTG-2027-0001`): its agenda, attendance, declarations of interest, the
decisions taken at it, and its minutes.

Lifecycle: `scheduled` (from the policy's dates for the forum, `[meetings.<forum>]`, or called by
its secretary on another date) → agenda published (no later than the forum's notice period before
the meeting: `notice_clear_days` clear days, LGA 1972 s.100B) → `in_session` (opened on its day, with
the chair and the members present) → `closed` (with the reference of its minutes) → minutes approved
at the forum's next meeting, while that one is in session.

Invariants: only the forum's decider (its secretary) acts on its meetings; an agenda lists cases
awaiting the forum, each item once, and is published once; papers are attached by reference to an
item; the chair is present in the capacity the policy names (the board's: an elected member, ToR
5.1); a member declares an interest in an item only while present; a decision is recorded against an
item on the agenda only while the meeting is in session (or after it, citing its minutes), only when
the members taking part — present, with no declared interest in the item — make it quorate, and
never with a member who declared an interest taking part (`check_decision`). Every command id is
applied at most once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.domain import event

from domain.actor import Actor
from domain.calendar import WorkingDayCalendar
from domain.case import CASE_NAMESPACE, Case
from domain.errors import (
    CaseNotFoundError,
    InvalidInputError,
    NotAllowedError,
    NotYourForumError,
    RequirementNotMetError,
)
from domain.meeting_rules import MeetingRules
from domain.policy import Policy
from domain.recorded import Recorded

SCHEDULED = "scheduled"
IN_SESSION = "in_session"
CLOSED = "closed"


class AgendaTooLateError(RequirementNotMetError):
    """The agenda would leave fewer clear days before the meeting than the forum's notice period."""


class NotInSessionError(RequirementNotMetError):
    """A decision or declaration at a meeting that is not in session (and, for a decision, not
    recorded afterwards from its minutes)."""


class NotQuorateError(RequirementNotMetError):
    """Too few members present and taking part in an item for the forum's quorum."""


class DeclaredInterestError(NotAllowedError):
    """A member with a declared interest in an item takes no part in its decision."""


class MeetingRequiredError(InvalidInputError):
    """The forum's decisions are taken at meetings (`decisions_at_meetings`): name one, or say the
    decision was taken by written procedure where the policy allows it."""


class MeetingSlot(Recorded):
    """One meeting per forum per day: saved with the meeting it holds, so a second is refused."""

    @staticmethod
    def create_id(forum: str, on: date | str) -> UUID:
        day = on if isinstance(on, str) else on.isoformat()
        return uuid5(CASE_NAMESPACE, f"meeting-slot:{forum}:{day}")

    @event("Taken")
    def __init__(self, *, forum: str, on: str, reference: str) -> None:
        self.forum = forum
        self.on = date.fromisoformat(on)
        self.reference = reference


class Meeting(Case):
    """A meeting of one forum on one day (see the module docstring for its lifecycle)."""

    @staticmethod
    def create_id(reference: str) -> UUID:
        return uuid5(CASE_NAMESPACE, f"meeting:{reference}")

    @event("Scheduled")
    def __init__(
        self,
        *,
        reference: str,
        forum: str,
        on: str,
        called: bool,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.reference = reference
        self.forum = forum
        self.on = date.fromisoformat(on)  # events hold dates as ISO text (the store's JSON)
        self.called = called
        self.status = SCHEDULED
        self.agenda: list[dict[str, Any]] = []
        self.agenda_published_on: date | None = None
        self.attendance: dict[str, str] = {}
        self.chair = ""
        self.interests: dict[str, dict[str, str]] = {}
        self.decisions: dict[str, dict[str, Any]] = {}
        self.minutes_ref = ""
        self.minutes_approved_at = ""
        self.command_versions: dict[str, int] = {command_id: 1}

    # --- who acts ------------------------------------------------------------------------------

    def check_secretary(self, policy: Policy, actor: Actor) -> None:
        decider = policy.decider_of(self.forum)
        if actor.role != decider:
            error = NotYourForumError if actor.role.startswith("secretary:") else NotAllowedError
            raise error(f"role {actor.role} may not act on {self.reference}; {decider} keeps {self.forum}'s meetings")

    def item(self, number: int) -> dict[str, Any]:
        for entry in self.agenda:
            if entry["item"] == number:
                return entry
        items = ", ".join(str(e["item"]) for e in self.agenda) or "none (publish the agenda first)"
        raise InvalidInputError(f"{self.reference} has no agenda item {number}; items: {items}")

    def item_for(self, case: str, stage: str) -> dict[str, Any] | None:
        return next((e for e in self.agenda if e["case"] == case and e["stage"] == stage), None)

    # --- the agenda ----------------------------------------------------------------------------

    def publish_agenda(
        self,
        *,
        calendar: WorkingDayCalendar,
        rules: MeetingRules,
        items: list[dict[str, Any]],
        actor: Actor,
        command_id: str,
        at: datetime,
    ) -> None:
        """LGA 1972 s.100B: the agenda is published `notice_clear_days` clear days before the meeting.
        `items` are the cases awaiting the forum (case, stage, title, exempt), numbered in order."""
        if self.agenda_published_on is not None:
            raise InvalidInputError(
                f"{self.reference}'s agenda was published on {self.agenda_published_on.isoformat()}; it is published once"
            )
        if not items:
            raise InvalidInputError(f"no case awaits {self.forum}: an agenda needs at least one item")
        today = calendar.local_date(at)
        clear = calendar.clear_days_between(today, self.on)
        if clear < rules.notice_clear_days:
            latest = calendar.latest_publication(self.on, rules.notice_clear_days)
            raise AgendaTooLateError(
                f"{self.reference} meets on {self.on.isoformat()}: its agenda needed publishing by "
                f"{latest.isoformat()} ({rules.notice_clear_days} clear days); today leaves {clear}"
            )
        numbered = [{**i, "item": n, "papers": list(i.get("papers", []))} for n, i in enumerate(items, start=1)]
        self._publish(items=numbered, published_on=today.isoformat(), **self._who(actor, command_id, at))

    @event("AgendaPublished")
    def _publish(
        self,
        *,
        items: list[dict[str, Any]],
        published_on: str,
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.agenda = [dict(i) for i in items]
        self.agenda_published_on = date.fromisoformat(published_on)
        self._done(command_id)

    def attach_paper(self, *, item: int, paper_ref: str, actor: Actor, command_id: str, at: datetime) -> None:
        """A report or paper for an item, by its reference in the forum's own papers."""
        entry = self.item(item)
        if not paper_ref.strip():
            raise InvalidInputError("a paper needs a reference, e.g. BRD-2027-01-03")
        if paper_ref.strip() in entry["papers"]:
            raise InvalidInputError(f"item {item} of {self.reference} already has paper {paper_ref.strip()}")
        self._attach(item=item, paper_ref=paper_ref.strip(), **self._who(actor, command_id, at))

    @event("PaperAttached")
    def _attach(
        self, *, item: int, paper_ref: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.item(item)["papers"].append(paper_ref)
        self._done(command_id)

    # --- the meeting itself --------------------------------------------------------------------

    def open(
        self,
        *,
        calendar: WorkingDayCalendar,
        rules: MeetingRules,
        chair: str,
        attendance: dict[str, str],
        actor: Actor,
        command_id: str,
        at: datetime,
    ) -> None:
        """Opened on its day, with its chair and the members present (person → capacity). ToR 5.1:
        the board's chair is an elected member."""
        if self.status != SCHEDULED:
            raise InvalidInputError(
                f"{self.reference} is {self.status.replace('_', ' ')}; only a scheduled meeting opens"
            )
        if self.agenda_published_on is None:
            raise RequirementNotMetError(f"{self.reference} has no published agenda; publish it before the meeting")
        today = calendar.local_date(at)
        if today != self.on:
            raise RequirementNotMetError(f"{self.reference} meets on {self.on.isoformat()}, not {today.isoformat()}")
        self._check_capacities(rules, attendance)
        if chair not in attendance:
            raise InvalidInputError(
                f"the chair, {chair}, is not among those present: {', '.join(attendance) or 'nobody'}"
            )
        if rules.chair_capacity and attendance[chair] != rules.chair_capacity:
            raise NotAllowedError(
                f"{self.forum}'s chair attends as {rules.chair_capacity}; {chair} attends as {attendance[chair]}"
            )
        self._open(chair=chair, attendance=dict(attendance), **self._who(actor, command_id, at))

    @staticmethod
    def _check_capacities(rules: MeetingRules, attendance: dict[str, str]) -> None:
        for person, capacity in attendance.items():
            if not person.strip():
                raise InvalidInputError("a member present needs a name")
            if rules.capacities and capacity not in rules.capacities:
                raise InvalidInputError(
                    f"{person} attends as {capacity!r}, which is not a capacity of this forum; "
                    f"capacities: {', '.join(rules.capacities)}"
                )

    @event("Opened")
    def _open(
        self, *, chair: str, attendance: dict[str, str], actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.status = IN_SESSION
        self.chair = chair
        self.attendance = dict(attendance)
        self._done(command_id)

    def attend(
        self, *, rules: MeetingRules, person: str, capacity: str, actor: Actor, command_id: str, at: datetime
    ) -> None:
        """A member who arrives after the meeting opened."""
        self._check_in_session("record attendance")
        self._check_capacities(rules, {person: capacity})
        if person in self.attendance:
            raise InvalidInputError(f"{person} is already recorded present at {self.reference}")
        self._attend(person=person, capacity=capacity, **self._who(actor, command_id, at))

    @event("Attended")
    def _attend(
        self, *, person: str, capacity: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.attendance[person] = capacity
        self._done(command_id)

    def declare_interest(
        self, *, item: int, person: str, nature: str, actor: Actor, command_id: str, at: datetime
    ) -> None:
        """A member present declares an interest in an item: they take no part in its decision."""
        self._check_in_session("declare an interest")
        self.item(item)
        if person not in self.attendance:
            raise InvalidInputError(f"{person} is not recorded present at {self.reference}")
        if not nature.strip():
            raise InvalidInputError("a declaration of interest says what the interest is (--nature)")
        if person in self.interests.get(str(item), {}):
            raise InvalidInputError(f"{person} has already declared an interest in item {item}")
        self._declare(item=item, person=person, nature=nature.strip(), **self._who(actor, command_id, at))

    @event("InterestDeclared")
    def _declare(
        self, *, item: int, person: str, nature: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.interests.setdefault(str(item), {})[person] = nature
        self._done(command_id)

    def close(self, *, minutes_ref: str, actor: Actor, command_id: str, at: datetime) -> None:
        self._check_in_session("close")
        if not minutes_ref.strip():
            raise InvalidInputError("a meeting closes with the reference of its minutes (--minutes-ref)")
        self._close(minutes_ref=minutes_ref.strip(), **self._who(actor, command_id, at))

    @event("Closed")
    def _close(self, *, minutes_ref: str, actor_id: str, actor_role: str, command_id: str, at: datetime) -> None:
        self.status = CLOSED
        self.minutes_ref = minutes_ref
        self._done(command_id)

    def approve_minutes(self, *, at_meeting: Meeting, actor: Actor, command_id: str, at: datetime) -> None:
        """The minutes are approved at the forum's next meeting, while it is in session."""
        if self.status != CLOSED:
            raise InvalidInputError(f"{self.reference} has not closed; its minutes are approved at a later meeting")
        if self.minutes_approved_at:
            raise InvalidInputError(f"{self.reference}'s minutes were approved at {self.minutes_approved_at}")
        if at_meeting.forum != self.forum or at_meeting.on <= self.on:
            raise InvalidInputError(f"{at_meeting.reference} is not a later meeting of {self.forum}")
        if at_meeting.status != IN_SESSION:
            raise NotInSessionError(f"{at_meeting.reference} is not in session; minutes are approved at a meeting")
        self._approve_minutes(at_meeting=at_meeting.reference, **self._who(actor, command_id, at))

    @event("MinutesApproved")
    def _approve_minutes(
        self, *, at_meeting: str, actor_id: str, actor_role: str, command_id: str, at: datetime
    ) -> None:
        self.minutes_approved_at = at_meeting
        self._done(command_id)

    # --- decisions -----------------------------------------------------------------------------

    def check_decision(
        self,
        *,
        rules: MeetingRules,
        case: str,
        stage: str,
        forum: str,
        recorder: Actor,
        taking_part: list[str],
        minutes_ref: str,
    ) -> tuple[dict[str, Any], list[str]]:
        """The agenda item a decision on `case` at `stage` is recorded against, and the members who
        take part in it; refused when the meeting is not the forum's, not in session (nor closed and
        cited by its minutes), the case is not on its agenda, a member with a declared interest would
        take part, or too few take part for the quorum."""
        if forum != self.forum:
            raise InvalidInputError(f"{self.reference} is a meeting of {self.forum}, not {forum}")
        if self.status == SCHEDULED:
            raise NotInSessionError(f"{self.reference} ({self.on.isoformat()}) is not in session; it has not opened")
        if self.status == CLOSED and minutes_ref.strip() != self.minutes_ref:
            raise NotInSessionError(
                f"{self.reference} has closed; a decision taken at it is recorded from its minutes, "
                f"--minutes-ref {self.minutes_ref}"
            )
        entry = self.item_for(case, stage)
        if entry is None:
            raise RequirementNotMetError(f"{case} ({stage}) is not on the agenda of {self.reference}")
        number = entry["item"]
        if str(number) in self.decisions:
            raise InvalidInputError(f"item {number} of {self.reference} is already decided")
        interested = self.interests.get(str(number), {})
        if recorder.id in interested:
            raise DeclaredInterestError(
                f"{recorder.id} declared an interest in item {number} of {self.reference} and takes no part in it"
            )
        chosen = taking_part or [p for p in self.attendance if p not in interested]
        for person in chosen:
            if person in interested:
                raise DeclaredInterestError(
                    f"{person} declared an interest in item {number} of {self.reference} "
                    f"({interested[person]}) and takes no part in its decision"
                )
            if person not in self.attendance:
                raise InvalidInputError(f"{person} is not recorded present at {self.reference}")
        if len(chosen) < rules.quorum:
            raise NotQuorateError(
                f"{self.reference} is not quorate for item {number}: {len(chosen)} member(s) take part "
                f"({', '.join(chosen) or 'none'}), the quorum is {rules.quorum}"
            )
        return entry, list(chosen)

    def record_decision(
        self,
        *,
        item: int,
        case: str,
        stage: str,
        outcome: str,
        taking_part: list[str],
        actor: Actor,
        command_id: str,
        at: datetime,
    ) -> None:
        self._decided(
            item=item,
            case=case,
            stage=stage,
            outcome=outcome,
            taking_part=taking_part,
            **self._who(actor, command_id, at),
        )

    @event("ItemDecided")
    def _decided(
        self,
        *,
        item: int,
        case: str,
        stage: str,
        outcome: str,
        taking_part: list[str],
        actor_id: str,
        actor_role: str,
        command_id: str,
        at: datetime,
    ) -> None:
        self.decisions[str(item)] = {"case": case, "stage": stage, "outcome": outcome, "taking_part": taking_part}
        self._done(command_id)

    # --- internals -----------------------------------------------------------------------------

    def _check_in_session(self, what: str) -> None:
        if self.status != IN_SESSION:
            raise NotInSessionError(
                f"{self.reference} is {self.status.replace('_', ' ')}; only in session can one {what}"
            )

    def view(self, *, public: bool = False) -> dict[str, Any]:
        """The meeting as plain data. `public`: items marked exempt from publication are hidden (LGA
        1972 Sch.12A), and nothing but what the public may see is shown."""
        agenda = [
            dict(i) if not public else {k: i[k] for k in ("item", "case", "stage", "title", "papers")}
            for i in self.agenda
            if not (public and i.get("exempt"))
        ]
        found: dict[str, Any] = {
            "reference": self.reference,
            "forum": self.forum,
            "on": self.on.isoformat(),
            "called": self.called,
            "status": self.status,
            "agenda_published_on": self.agenda_published_on.isoformat() if self.agenda_published_on else None,
            "agenda": agenda,
            "minutes_ref": self.minutes_ref,
            "minutes_approved_at": self.minutes_approved_at,
        }
        if not public:
            found |= {
                "chair": self.chair,
                "attendance": dict(self.attendance),
                "interests": {k: dict(v) for k, v in self.interests.items()},
                "decisions": {k: dict(v) for k, v in self.decisions.items()},
            }
        return found


@dataclass
class MeetingBook:
    """The meetings a case's decision may name, read from the store on demand; those a decision
    records an item on (`changed`) are saved with the case, in one transaction."""

    repository: Repository
    changed: list[Meeting] = field(default_factory=list)

    def get(self, reference: str) -> Meeting:
        for meeting in self.changed:
            if meeting.reference == reference:
                return meeting
        try:
            found: Any = self.repository.get(Meeting.create_id(reference))
        except AggregateNotFoundError:
            raise CaseNotFoundError(f"no meeting has the reference {reference!r}") from None
        return found
