"""Meetings on the real stores (SQLite and PostgreSQL): a decision at a meeting saves the case and the
meeting together, a meeting read back from the store equals the one written, and a second meeting of
the board on the same day is refused by the store's own uniqueness (the slot)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from concordat import bootstrap
from concordat.settings import Settings
from domain.application import CaseService
from domain.errors import InvalidInputError
from domain.meeting import DeclaredInterestError
from domain.meetings import MeetingService
from tests.domain.support import DAN, SAM, T0, cid, decide, start
from tests.domain.test_meetings import PRESENT, Clock, meeting_policy


def test_a_decision_at_a_meeting_is_stored_with_the_meeting_and_both_read_back(settings: Settings) -> None:
    policy = meeting_policy()
    bootstrap.open_cases(settings, policy).close()  # the tables, once
    clock = Clock(T0)
    app = CaseService(bootstrap.store_env(settings), policy=policy, clock=clock)
    try:
        meetings = MeetingService(app)
        ref = start(app).reference
        decide(app, ref, DAN, "jcu", "refer")
        mtg = meetings.schedule(actor=SAM, forum="board", command_id=cid())["reference"]
        with pytest.raises(InvalidInputError, match="already meets on 2027-01-12"):
            meetings.schedule(actor=SAM, forum="board", on=date(2027, 1, 12), command_id=cid())
        meetings.publish_agenda(mtg, actor=SAM, command_id=cid())
        clock.at = datetime(2027, 1, 12, 10, tzinfo=UTC)
        meetings.open(mtg, actor=SAM, chair="cllr_ada", attendance=PRESENT, command_id=cid())
        meetings.declare_interest(mtg, actor=SAM, item=1, person="bob", nature="provider", command_id=cid())
        with pytest.raises(DeclaredInterestError):
            decide(app, ref, SAM, "board", "recommend", meeting=mtg, taking_part=["bob", "cy", "dee"])
        command = cid()
        app.decide(ref, actor=SAM, stage="board", outcome="recommend", minutes_ref="M", meeting=mtg, command_id=command)
        # A retry of the same command records nothing more on either.
        app.decide(ref, actor=SAM, stage="board", outcome="recommend", minutes_ref="M", meeting=mtg, command_id=command)
    finally:
        app.close()
    again = CaseService(bootstrap.store_env(settings), policy=policy, clock=clock)
    try:
        stored = MeetingService(again).view(mtg)
        assert stored["decisions"] == {
            "1": {"case": ref, "stage": "board", "outcome": "recommend", "taking_part": ["cllr_ada", "cy", "dee"]}
        }
        assert stored["interests"] == {"1": {"bob": "provider"}}
        decisions = again.state(ref).details["decisions"]
        assert [d.get("meeting", {}).get("reference") for d in decisions] == [None, mtg]
    finally:
        again.close()
