"""The use cases of meetings: schedule one, publish its agenda from the cases awaiting its forum,
attach papers, open it with its chair and members present, record late arrivals and declarations of
interest, close it with its minutes, approve the minutes at the next meeting; and read them back.

Meetings live in the cases' own store (a decision recorded at a meeting saves the case and the
meeting in one transaction, see `StagedCase._at_meeting`), so this service works on the
`CaseService`'s repository. Every command is idempotent by its command id, as a case's is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import RecordConflictError

from domain.actor import Actor
from domain.application import CaseService
from domain.errors import CaseNotFoundError, InvalidInputError, NotAllowedError, PolicyError
from domain.meeting import Meeting, MeetingSlot
from domain.meeting_rules import MeetingRules
from domain.references import CommandReceipt, ReferenceSequence

log = structlog.get_logger(__name__)
PREFIX = "MTG"
ATTEMPTS = 5


class MeetingService:
    def __init__(self, cases: CaseService) -> None:
        self.cases = cases

    # --- questions ---------------------------------------------------------------------------

    def rules_of(self, forum: str) -> MeetingRules:
        policy = self.cases.policy
        if forum not in policy.forums:
            raise InvalidInputError(f"{forum!r} is not a forum; forums: {', '.join(policy.forums)}")
        found = policy.meetings_of(forum)
        if found is None:
            having = ", ".join(policy.meeting_rules) or "none"
            raise PolicyError(
                f"{forum} keeps no meetings under the policy (add [meeting_rules.{forum}]); forums that do: {having}"
            )
        return found

    def awaiting(self, forum: str) -> list[dict[str, Any]]:
        """The cases open at a stage of `forum` (an agenda's items), oldest first."""
        found = []
        for reference in self.cases.references(("PRO", "VAR", "FUN", "FND")):
            view = self.cases.state(reference, history=False)
            for entry in view.awaiting:
                if entry["forum"] == forum and not entry.get("escalated_to"):
                    found.append({"case": reference, "stage": entry["stage"], "title": view.title})
        return found

    def references(self) -> Iterator[str]:
        today = self.cases.rules.calendar.local_date(self.cases.now())
        for year in range(self.cases.policy.partnership.started_on.year, today.year + 2):
            try:
                sequence: ReferenceSequence = self.cases.repository.get(ReferenceSequence.create_id(PREFIX, year))
            except AggregateNotFoundError:
                continue
            for n in range(1, sequence.last + 1):
                yield f"{PREFIX}-{year}-{n:04d}"

    def meetings(self, forum: str | None = None) -> list[Meeting]:
        found = [self._load(r) for r in self.references()]
        return sorted((m for m in found if forum is None or m.forum == forum), key=lambda m: m.on)

    def view(self, reference: str, *, public: bool = False) -> dict[str, Any]:
        return self._load(reference).view(public=public)

    # --- commands ----------------------------------------------------------------------------

    def schedule(self, *, actor: Actor, forum: str, on: date | None = None, command_id: str) -> dict[str, Any]:
        """The forum's next meeting from the policy's dates (`[meetings.<forum>]`), or one its
        secretary calls on another day (`on`, marked as called)."""
        self.rules_of(forum)  # a forum that keeps meetings (its rules apply from the agenda on)
        self._check_secretary(actor, forum)
        if not command_id:
            raise InvalidInputError("a command needs a command id")
        calendar = self.cases.rules.calendar
        at = self.cases.now()
        today = calendar.local_date(at)
        pattern = self.cases.policy.meetings.get(forum)
        if on is None:
            if pattern is None:
                raise InvalidInputError(f"the policy lists no dates for {forum}'s meetings: name the day (--on)")
            after = max([today, *(m.on for m in self.meetings(forum))])
            on = calendar.next_meeting(pattern, after, forum)
        elif on <= today:
            raise InvalidInputError(
                f"a meeting is scheduled for a day after today ({today.isoformat()}), not {on.isoformat()}"
            )
        # Called: a day that is not one of the policy's dates for the forum.
        called = pattern is None or pattern.first_after(on - timedelta(days=1)) != on
        for _ in range(ATTEMPTS):
            receipt = self._receipt(command_id)
            if receipt is not None:
                return self.view(receipt)
            if MeetingSlot.create_id(forum, on) in self.cases.repository:
                slot: MeetingSlot = self.cases.repository.get(MeetingSlot.create_id(forum, on))
                raise InvalidInputError(f"{forum} already meets on {on.isoformat()}: {slot.reference}")
            with self.cases.stamp(f"{PREFIX}-{today.year}", command_id, actor):
                sequence = self._sequence(today.year)
                reference = sequence.issue()
            with self.cases.stamp(reference, command_id, actor):
                meeting = Meeting(
                    reference=reference,
                    forum=forum,
                    on=on.isoformat(),
                    called=called,
                    actor_id=actor.id,
                    actor_role=actor.role,
                    command_id=command_id,
                    at=at,
                )
                taken = MeetingSlot(forum=forum, on=on.isoformat(), reference=reference)
                receipt_made = CommandReceipt(command_id=command_id, reference=reference)
            try:
                self.cases.save(sequence, meeting, taken, receipt_made)
            except RecordConflictError:
                continue
            log.info("meeting.scheduled", meeting=reference, forum=forum, on=on.isoformat())
            return meeting.view()
        raise RecordConflictError(f"could not number a new meeting after {ATTEMPTS} tries")

    def publish_agenda(
        self,
        reference: str,
        *,
        actor: Actor,
        cases: list[str] | None = None,
        exempt: list[str] | None = None,
        command_id: str,
    ) -> dict[str, Any]:
        """The agenda: the cases awaiting the forum (all of them, or those named), in order; those
        named in `exempt` are marked exempt from publication (hidden from the public pages)."""

        def run(meeting: Meeting, at: datetime) -> None:
            waiting = self.awaiting(meeting.forum)
            chosen = waiting if not cases else [w for w in waiting if w["case"] in cases]
            missing = sorted(set(cases or []) - {w["case"] for w in waiting})
            if missing:
                raise InvalidInputError(f"not awaiting {meeting.forum}: {', '.join(missing)}")
            unknown = sorted(set(exempt or []) - {w["case"] for w in chosen})
            if unknown:
                raise InvalidInputError(f"--exempt names cases not on the agenda: {', '.join(unknown)}")
            items = [{**w, "exempt": w["case"] in (exempt or [])} for w in chosen]
            meeting.publish_agenda(
                calendar=self.cases.rules.calendar,
                rules=self.rules_of(meeting.forum),
                items=items,
                actor=actor,
                command_id=command_id,
                at=at,
            )

        return self._apply(reference, actor, command_id, run)

    def attach_paper(
        self, reference: str, *, actor: Actor, item: int, paper_ref: str, command_id: str
    ) -> dict[str, Any]:
        return self._apply(
            reference,
            actor,
            command_id,
            lambda m, at: m.attach_paper(item=item, paper_ref=paper_ref, actor=actor, command_id=command_id, at=at),
        )

    def open(
        self, reference: str, *, actor: Actor, chair: str, attendance: dict[str, str], command_id: str
    ) -> dict[str, Any]:
        def run(meeting: Meeting, at: datetime) -> None:
            meeting.open(
                calendar=self.cases.rules.calendar,
                rules=self.rules_of(meeting.forum),
                chair=chair,
                attendance=attendance,
                actor=actor,
                command_id=command_id,
                at=at,
            )

        return self._apply(reference, actor, command_id, run)

    def attend(self, reference: str, *, actor: Actor, person: str, capacity: str, command_id: str) -> dict[str, Any]:
        def run(meeting: Meeting, at: datetime) -> None:
            meeting.attend(
                rules=self.rules_of(meeting.forum),
                person=person,
                capacity=capacity,
                actor=actor,
                command_id=command_id,
                at=at,
            )

        return self._apply(reference, actor, command_id, run)

    def declare_interest(
        self, reference: str, *, actor: Actor, item: int, person: str, nature: str, command_id: str
    ) -> dict[str, Any]:
        return self._apply(
            reference,
            actor,
            command_id,
            lambda m, at: m.declare_interest(
                item=item, person=person, nature=nature, actor=actor, command_id=command_id, at=at
            ),
        )

    def close(self, reference: str, *, actor: Actor, minutes_ref: str, command_id: str) -> dict[str, Any]:
        return self._apply(
            reference,
            actor,
            command_id,
            lambda m, at: m.close(minutes_ref=minutes_ref, actor=actor, command_id=command_id, at=at),
        )

    def approve_minutes(self, reference: str, *, actor: Actor, at_meeting: str, command_id: str) -> dict[str, Any]:
        """The minutes of `reference`, approved at the forum's next meeting `at_meeting` (in session)."""
        later = self._load(at_meeting)
        return self._apply(
            reference,
            actor,
            command_id,
            lambda m, at: m.approve_minutes(at_meeting=later, actor=actor, command_id=command_id, at=at),
        )

    # --- internals ---------------------------------------------------------------------------

    def _check_secretary(self, actor: Actor, forum: str) -> None:
        policy = self.cases.policy
        if not policy.is_known_role(actor.role):
            raise NotAllowedError(f"role {actor.role!r} is not known; roles: {policy.known_roles_text}")
        self.cases.check_role_takes_part(actor.role)
        decider = policy.decider_of(forum)
        if actor.role != decider:
            raise NotAllowedError(f"role {actor.role} may not keep {forum}'s meetings; {decider} does")

    def _apply(
        self, reference: str, actor: Actor, command_id: str, command: Callable[[Meeting, datetime], None]
    ) -> dict[str, Any]:
        if not command_id:
            raise InvalidInputError("a command needs a command id")
        for _ in range(ATTEMPTS):
            meeting = self._load(reference)
            if command_id in meeting.command_versions:
                return self.view(reference)  # already applied: the same answer, nothing stored
            self._check_secretary(actor, meeting.forum)
            at = self.cases.now()
            with self.cases.stamp(reference, command_id, actor):
                command(meeting, at)
            try:
                self.cases.save(meeting)
            except RecordConflictError:
                continue
            log.info("meeting.acted", meeting=reference, actor=str(actor))
            return meeting.view()
        raise RecordConflictError(f"{reference} kept changing under {ATTEMPTS} attempts")

    def _load(self, reference: str) -> Meeting:
        try:
            found: Any = self.cases.repository.get(Meeting.create_id(reference))
        except AggregateNotFoundError:
            raise CaseNotFoundError(f"no meeting has the reference {reference!r}") from None
        return found

    def _sequence(self, year: int) -> ReferenceSequence:
        try:
            return self.cases.repository.get(ReferenceSequence.create_id(PREFIX, year))
        except AggregateNotFoundError:
            return ReferenceSequence(prefix=PREFIX, year=year)

    def _receipt(self, command_id: str) -> str | None:
        try:
            found: CommandReceipt = self.cases.repository.get(CommandReceipt.create_id(command_id))
        except AggregateNotFoundError:
            return None
        return found.reference
