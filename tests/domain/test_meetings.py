"""Meetings of the board: scheduled from the policy's dates, an agenda from the cases awaiting the
board published 5 clear days ahead (LGA 1972 s.100B), an elected member in the chair (ToR 5.1),
declarations of interest, quorum per item, and decisions recorded against the meeting and item only
while it sits (or afterwards, from its minutes). The policy here turns `decisions_at_meetings` on
for the board; the shipped policy leaves it off (see `test_a_board_that_keeps_no_meetings_...`)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.actor import Actor
from domain.application import CaseService
from domain.errors import InvalidInputError, NotAllowedError, RequirementNotMetError
from domain.meeting import (
    AgendaTooLateError,
    DeclaredInterestError,
    MeetingRequiredError,
    NotInSessionError,
    NotQuorateError,
)
from domain.meeting_rules import MeetingRules
from domain.meetings import MeetingService
from domain.policy import Policy
from tests.domain.support import DAN, SAM, T0, cid, decide, start
from tests.policies import WITHOUT_COUNCIL_PROCEDURE

PRESENT = {"cllr_ada": "elected_member", "bob": "ccg", "cy": "public_health", "dee": "council_officer"}
MEETS = date(2027, 1, 12)  # the board's next meeting after T0 (second Tuesday, every other month)
IN_SESSION = datetime(2027, 1, 12, 10, 30, tzinfo=UTC)


def meeting_policy(**rules: object) -> Policy:
    base = WITHOUT_COUNCIL_PROCEDURE
    board = base.meeting_rules["board"].model_copy(update={"decisions_at_meetings": True, **rules})
    return base.model_copy(update={"meeting_rules": {**base.meeting_rules, "board": board}})


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


def make(policy: Policy, clock: Clock) -> tuple[CaseService, MeetingService]:
    app = CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=policy, clock=clock)
    return app, MeetingService(app)


@pytest.fixture
def apps(clock: Clock) -> tuple[CaseService, MeetingService]:
    return make(meeting_policy(), clock)


def at_the_board(app: CaseService) -> str:
    ref = start(app).reference
    decide(app, ref, DAN, "jcu", "refer")
    return ref


def sitting(apps: tuple[CaseService, MeetingService], clock: Clock) -> tuple[str, str]:
    """A case awaiting the board, and the board's next meeting with it on the agenda, in session."""
    app, meetings = apps
    ref = at_the_board(app)
    mtg = meetings.schedule(actor=SAM, forum="board", command_id=cid())["reference"]
    meetings.publish_agenda(mtg, actor=SAM, command_id=cid())
    clock.at = IN_SESSION
    meetings.open(mtg, actor=SAM, chair="cllr_ada", attendance=PRESENT, command_id=cid())
    return ref, mtg


def test_the_next_board_meeting_is_scheduled_from_the_policys_dates(apps: tuple[CaseService, MeetingService]) -> None:
    _, meetings = apps
    first = meetings.schedule(actor=SAM, forum="board", command_id=cid())
    second = meetings.schedule(actor=SAM, forum="board", command_id=cid())
    assert (first["reference"], first["on"], first["called"]) == ("MTG-2026-0001", "2027-01-12", False)
    assert (second["on"], second["called"]) == ("2027-03-09", False)
    called = meetings.schedule(actor=SAM, forum="board", on=date(2027, 2, 2), command_id=cid())
    assert called["called"] is True
    with pytest.raises(InvalidInputError, match="already meets on 2027-02-02"):
        meetings.schedule(actor=SAM, forum="board", on=date(2027, 2, 2), command_id=cid())


def test_scheduling_again_with_the_same_command_id_returns_the_same_meeting(
    apps: tuple[CaseService, MeetingService],
) -> None:
    _, meetings = apps
    command = cid()
    once = meetings.schedule(actor=SAM, forum="board", command_id=command)
    again = meetings.schedule(actor=SAM, forum="board", command_id=command)
    assert once["reference"] == again["reference"]
    assert [m.reference for m in meetings.meetings("board")] == [once["reference"]]


def test_only_the_boards_secretary_keeps_its_meetings(apps: tuple[CaseService, MeetingService]) -> None:
    _, meetings = apps
    with pytest.raises(NotAllowedError, match="secretary:board does"):
        meetings.schedule(actor=Actor.parse("secretary:cmet:cat"), forum="board", command_id=cid())


def test_the_agenda_lists_the_cases_awaiting_the_board_and_hides_exempt_items_from_the_public(
    apps: tuple[CaseService, MeetingService],
) -> None:
    app, meetings = apps
    first, second = at_the_board(app), at_the_board(app)
    start(app)  # still at the JCU: not the board's business yet
    mtg = meetings.schedule(actor=SAM, forum="board", command_id=cid())["reference"]
    agenda = meetings.publish_agenda(mtg, actor=SAM, exempt=[second], command_id=cid())["agenda"]
    assert [(i["item"], i["case"], i["stage"], i["exempt"]) for i in agenda] == [
        (1, first, "board", False),
        (2, second, "board", True),
    ]
    assert [i["case"] for i in meetings.view(mtg, public=True)["agenda"]] == [first]


def test_an_agenda_published_with_fewer_than_five_clear_days_is_refused(
    apps: tuple[CaseService, MeetingService], clock: Clock
) -> None:
    app, meetings = apps
    at_the_board(app)
    mtg = meetings.schedule(actor=SAM, forum="board", command_id=cid())["reference"]
    clock.at = datetime(2027, 1, 7, 9, tzinfo=UTC)  # Thu 7 Jan: 8, 9, 10, 11 clear, only 4
    with pytest.raises(AgendaTooLateError, match="by 2027-01-06 .5 clear days.; today leaves 4"):
        meetings.publish_agenda(mtg, actor=SAM, command_id=cid())
    clock.at = datetime(2027, 1, 6, 16, tzinfo=UTC)  # Wed 6 Jan: the last day it may be
    assert meetings.publish_agenda(mtg, actor=SAM, command_id=cid())["agenda_published_on"] == "2027-01-06"


def test_the_boards_chair_is_an_elected_member(apps: tuple[CaseService, MeetingService], clock: Clock) -> None:
    app, meetings = apps
    at_the_board(app)
    mtg = meetings.schedule(actor=SAM, forum="board", command_id=cid())["reference"]
    meetings.publish_agenda(mtg, actor=SAM, command_id=cid())
    clock.at = IN_SESSION
    with pytest.raises(NotAllowedError, match="chair attends as elected_member; bob attends as ccg"):
        meetings.open(mtg, actor=SAM, chair="bob", attendance=PRESENT, command_id=cid())
    opened = meetings.open(mtg, actor=SAM, chair="cllr_ada", attendance=PRESENT, command_id=cid())
    assert (opened["status"], opened["chair"]) == ("in_session", "cllr_ada")


def test_a_meeting_opens_only_on_its_day(apps: tuple[CaseService, MeetingService], clock: Clock) -> None:
    app, meetings = apps
    at_the_board(app)
    mtg = meetings.schedule(actor=SAM, forum="board", command_id=cid())["reference"]
    meetings.publish_agenda(mtg, actor=SAM, command_id=cid())
    with pytest.raises(RequirementNotMetError, match="meets on 2027-01-12, not 2026-11-24"):
        meetings.open(mtg, actor=SAM, chair="cllr_ada", attendance=PRESENT, command_id=cid())


def test_a_decision_is_recorded_against_the_meeting_and_item_it_was_taken_at(
    apps: tuple[CaseService, MeetingService], clock: Clock
) -> None:
    app, meetings = apps
    ref, mtg = sitting(apps, clock)
    decide(app, ref, SAM, "board", "recommend", meeting=mtg)
    recorded = app.state(ref).details["decisions"][-1]["meeting"]
    assert recorded == {
        "reference": mtg,
        "on": "2027-01-12",
        "item": 1,
        "taking_part": ["cllr_ada", "bob", "cy", "dee"],
        "written_procedure": False,
    }
    assert meetings.view(mtg)["decisions"]["1"]["outcome"] == "recommend"


def test_a_member_who_declared_an_interest_takes_no_part_in_that_items_decision(
    apps: tuple[CaseService, MeetingService], clock: Clock
) -> None:
    app, meetings = apps
    ref, mtg = sitting(apps, clock)
    meetings.declare_interest(mtg, actor=SAM, item=1, person="bob", nature="employed by the provider", command_id=cid())
    with pytest.raises(DeclaredInterestError, match="bob declared an interest in item 1"):
        decide(app, ref, SAM, "board", "recommend", meeting=mtg, taking_part=["cllr_ada", "bob", "cy"])
    assert app.state(ref).stage == "board"
    decide(app, ref, SAM, "board", "recommend", meeting=mtg)
    assert app.state(ref).details["decisions"][-1]["meeting"]["taking_part"] == ["cllr_ada", "cy", "dee"]


def test_a_meeting_not_quorate_for_an_item_takes_no_decision_on_it(clock: Clock) -> None:
    app, meetings = apps = make(meeting_policy(quorum=4), clock)
    ref, mtg = sitting(apps, clock)
    meetings.declare_interest(mtg, actor=SAM, item=1, person="dee", nature="a relative works there", command_id=cid())
    with pytest.raises(NotQuorateError, match="not quorate for item 1: 3 member.s. take part .* the quorum is 4"):
        decide(app, ref, SAM, "board", "recommend", meeting=mtg)
    assert app.state(ref).stage == "board"


def test_a_board_decision_needs_a_meeting_when_the_policy_says_so(
    apps: tuple[CaseService, MeetingService],
) -> None:
    app, _ = apps
    ref = at_the_board(app)
    with pytest.raises(MeetingRequiredError, match="--meeting: a decision of board is taken at one of its meetings"):
        decide(app, ref, SAM, "board", "recommend")


def test_no_decision_at_a_meeting_that_has_not_opened(apps: tuple[CaseService, MeetingService]) -> None:
    app, meetings = apps
    ref = at_the_board(app)
    mtg = meetings.schedule(actor=SAM, forum="board", command_id=cid())["reference"]
    meetings.publish_agenda(mtg, actor=SAM, command_id=cid())
    with pytest.raises(NotInSessionError, match="not in session"):
        decide(app, ref, SAM, "board", "recommend", meeting=mtg)


def test_after_the_meeting_a_decision_is_recorded_from_its_minutes(
    apps: tuple[CaseService, MeetingService], clock: Clock
) -> None:
    app, meetings = apps
    ref, mtg = sitting(apps, clock)
    meetings.close(mtg, actor=SAM, minutes_ref="BRD-2027-01", command_id=cid())
    with pytest.raises(NotInSessionError, match="--minutes-ref BRD-2027-01"):
        decide(app, ref, SAM, "board", "recommend", meeting=mtg, minutes_ref="BRD-2026-11")
    assert (
        decide(app, ref, SAM, "board", "recommend", meeting=mtg, minutes_ref="BRD-2027-01").stage == "programme_board"
    )


def test_a_case_not_on_the_agenda_is_not_decided_at_the_meeting(
    apps: tuple[CaseService, MeetingService], clock: Clock
) -> None:
    app, _ = apps
    _, mtg = sitting(apps, clock)
    late = at_the_board(app)
    with pytest.raises(RequirementNotMetError, match="is not on the agenda"):
        decide(app, late, SAM, "board", "recommend", meeting=mtg)


def test_minutes_are_approved_at_the_next_meeting_while_it_sits(
    apps: tuple[CaseService, MeetingService], clock: Clock
) -> None:
    app, meetings = apps
    ref, mtg = sitting(apps, clock)
    decide(app, ref, SAM, "board", "defer", meeting=mtg)
    meetings.close(mtg, actor=SAM, minutes_ref="BRD-2027-01", command_id=cid())
    nxt = meetings.schedule(actor=SAM, forum="board", command_id=cid())["reference"]
    with pytest.raises(NotInSessionError):
        meetings.approve_minutes(mtg, actor=SAM, at_meeting=nxt, command_id=cid())
    meetings.publish_agenda(nxt, actor=SAM, command_id=cid())
    clock.at = datetime(2027, 3, 9, 10, tzinfo=UTC)
    meetings.open(nxt, actor=SAM, chair="cllr_ada", attendance=PRESENT, command_id=cid())
    assert meetings.approve_minutes(mtg, actor=SAM, at_meeting=nxt, command_id=cid())["minutes_approved_at"] == nxt


def test_a_decision_by_written_procedure_is_marked_so(apps: tuple[CaseService, MeetingService]) -> None:
    app, _ = apps
    ref = at_the_board(app)
    decide(app, ref, SAM, "board", "recommend", written_procedure=True)
    assert app.state(ref).details["decisions"][-1]["meeting"] == {"written_procedure": True}


def test_written_procedure_only_where_the_policy_allows_it(clock: Clock) -> None:
    app, _ = make(meeting_policy(written_procedure=False), clock)
    ref = at_the_board(app)
    with pytest.raises(InvalidInputError, match="no decisions by written procedure"):
        decide(app, ref, SAM, "board", "recommend", written_procedure=True)


def test_a_board_that_keeps_no_meetings_by_policy_decides_as_before(clock: Clock) -> None:
    # Meeting rules for the board, but `decisions_at_meetings` off (the shipped policy has it on).
    off = WITHOUT_COUNCIL_PROCEDURE
    assert off.meeting_rules["board"] == MeetingRules(
        notice_clear_days=5,
        quorum=3,
        chair_capacity="elected_member",
        capacities=off.meeting_rules["board"].capacities,
        decisions_at_meetings=False,
        written_procedure=True,
    )
    app, _ = make(off, clock)
    ref = at_the_board(app)
    assert decide(app, ref, SAM, "board", "recommend").stage == "programme_board"


def test_a_rebuilt_meeting_equals_the_live_one(apps: tuple[CaseService, MeetingService], clock: Clock) -> None:
    app, meetings = apps
    ref, mtg = sitting(apps, clock)
    meetings.declare_interest(mtg, actor=SAM, item=1, person="bob", nature="provider", command_id=cid())
    decide(app, ref, SAM, "board", "recommend", meeting=mtg)
    rebuilt = MeetingService(app).view(mtg)
    assert rebuilt["interests"] == {"1": {"bob": "provider"}}
    assert rebuilt["decisions"]["1"]["taking_part"] == ["cllr_ada", "cy", "dee"]
