"""Review and report cases opened by the policy's schedules (domain/cycles.py): one case per firing
instant, due on the policy's working days, done by the owner (or, once overdue, the escalation role);
an operator's pause on the record; the policy check of `[schedules]`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.cycles import scheduled_command_id
from domain.errors import InvalidInputError, NotAllowedError, TriggeredTooSoonError
from domain.policy import Policy
from tests.domain.support import cid

TODAY = datetime(2027, 1, 5, 10, 0, tzinfo=UTC)
FIRED = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)  # 09:00 on 1 January in London (GMT)
JO = Actor.parse("jcu_lead:jo")
CY = Actor.parse("party_rep:CCC:cy")
DAN = Actor.parse("lead_director:dan")
ROOT = Actor.parse("admin:root")


@pytest.fixture
def app(policy: Policy) -> CaseService:
    return CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=policy, clock=lambda: TODAY)


def fire(app: CaseService, name: str, at: datetime = FIRED, figures: dict | None = None):
    return app.open_scheduled(
        schedule=name,
        scheduled_at=at,
        figures=lambda: figures or {"taken": True},
        command_id=scheduled_command_id(name, at),
    )


def test_a_firing_opens_one_case_per_instant_due_on_the_policys_working_days(app: CaseService) -> None:
    first = fire(app, "work_plan_review_ccc")
    assert first.reference.startswith("REV-") and fire(app, "work_plan_review_ccc").reference == first.reference
    assert list(app.references(("REV",))) == [first.reference]
    # 1 January 2027 is a bank holiday (a Friday): twenty working days on is Friday 29 January.
    assert first.details["due"] == "2027-01-29" and first.details["owner"] == "party_rep:CCC"
    assert first.details["figures"] == {}  # a review attaches none
    later = fire(app, "work_plan_review_ccc", FIRED + timedelta(days=181))
    assert later.reference != first.reference


def test_a_report_attaches_its_figures_taken_once(app: CaseService) -> None:
    taken: list[int] = []

    def figures() -> dict:
        taken.append(1)
        return {"cases": {"open": 3}}

    cmd = scheduled_command_id("parties_quarterly_report", FIRED)
    for _ in range(2):
        report = app.open_scheduled(
            schedule="parties_quarterly_report", scheduled_at=FIRED, figures=figures, command_id=cmd
        )
    assert report.reference.startswith("RPT-") and report.details["figures"] == {"cases": {"open": 3}}
    assert taken == [1]


def test_only_the_owner_records_it_done_until_it_is_overdue_then_the_escalation_role_may(app: CaseService) -> None:
    ref = fire(app, "work_plan_review_ccc").reference
    with pytest.raises(NotAllowedError, match="allowed: party_rep:CCC"):
        app.act(ref, actor=DAN, action="record_done", fields={"document_ref": "WP/1"}, command_id=cid())
    with pytest.raises(InvalidInputError):
        app.act(ref, actor=CY, action="record_done", fields={}, command_id=cid())
    deadline = app.state(ref).deadline
    assert deadline is not None
    app.fire_timer(ref, timer="overdue", command_id=cid(), at=deadline)
    done = app.act(ref, actor=DAN, action="record_done", fields={"document_ref": "WP/1"}, command_id=cid(), at=deadline)
    assert done.status == "done" and done.details["done"]["on_time"] == "yes"
    assert done.details["done"]["by"] == "lead_director:dan" and not done.actions and not done.timers


def test_a_schedule_that_is_not_in_the_policy_opens_nothing(app: CaseService) -> None:
    with pytest.raises(InvalidInputError, match="no schedule is named 'weekly'"):
        fire(app, "weekly")
    assert list(app.references(("REV", "RPT"))) == []


def test_a_pause_is_recorded_once_per_command_id_and_only_by_an_administrator(app: CaseService) -> None:
    with pytest.raises(NotAllowedError, match="allowed: admin"):
        app.record_schedule_control(actor=JO, name="annual_report", paused=True, reason="x", command_id="c1")
    with pytest.raises(InvalidInputError, match="reason"):
        app.record_schedule_control(actor=ROOT, name="annual_report", paused=True, reason=" ", command_id="c1")
    for _ in range(2):
        got = app.record_schedule_control(
            actor=ROOT, name="annual_report", paused=True, reason="recess", command_id="c1"
        )
    assert got["paused"] and len(got["history"]) == 1
    got = app.record_schedule_control(actor=ROOT, name="annual_report", paused=False, reason="back", command_id="c2")
    assert not got["paused"] and [h["reason"] for h in got["history"]] == ["recess", "back"]


def test_a_firing_by_hand_is_an_administrators_recorded_once_per_command_id(app: CaseService) -> None:
    with pytest.raises(NotAllowedError, match="allowed: admin"):
        app.record_schedule_trigger(actor=JO, name="parties_quarterly_report", reason="x", command_id="t1")
    with pytest.raises(InvalidInputError, match="no schedule is named 'nope'; schedules: work_plan_review_ccc"):
        app.record_schedule_trigger(actor=ROOT, name="nope", reason="x", command_id="t1")
    with pytest.raises(InvalidInputError, match="reason"):
        app.record_schedule_trigger(actor=ROOT, name="parties_quarterly_report", reason=" ", command_id="t1")
    first = app.record_schedule_trigger(
        actor=ROOT, name="parties_quarterly_report", reason="wanted early", command_id="t1", at=TODAY
    )
    again = app.record_schedule_trigger(
        actor=ROOT, name="parties_quarterly_report", reason="wanted early", command_id="t1", at=TODAY
    )
    assert first["fire"] and not again["fire"]  # a repeated command fires nothing twice
    assert (
        again["history"]
        == first["history"]
        == [{"paused": False, "triggered": True, "reason": "wanted early", "by": "admin:root", "at": TODAY.isoformat()}]
    )


def test_a_second_firing_by_hand_within_a_minute_is_refused_a_minute_on_it_fires(settings: Settings) -> None:
    """Two administrators, each with their own connection to the one store (SQLite and PostgreSQL)."""
    one, other = bootstrap.open_cases(settings), bootstrap.open_cases(settings)
    try:
        name = "parties_quarterly_report"
        one.record_schedule_trigger(actor=ROOT, name=name, reason="early", command_id="t1", at=TODAY)
        with pytest.raises(TriggeredTooSoonError, match=r"fired by hand 59s ago by admin:root"):
            other.record_schedule_trigger(
                actor=ROOT, name=name, reason="early", command_id="t2", at=TODAY + timedelta(seconds=59)
            )
        got = other.record_schedule_trigger(
            actor=ROOT, name=name, reason="again", command_id="t3", at=TODAY + timedelta(seconds=60)
        )
        assert got["fire"] and [h["reason"] for h in got["history"]] == ["early", "again"]
    finally:
        one.close()
        other.close()


def test_the_policy_check_names_what_is_wrong_with_a_schedule(policy: Policy) -> None:
    text = policy.source_text.replace(
        'cron = "0 9 1 6 *"\nowner = "lead_director"', 'cron = "0 9 1 6"\nowner = "chief_exec"'
    )
    text = text.replace('title = "Section 75 agreement"\n', 'title = "Section 75 agreement"\ncron = "0 9 1 6 *"\n')
    text = text.replace(
        'title = "Work plan review (needs of CCC)"\n',
        'title = "Work plan review (needs of CCC)"\nfigures = ["cases"]\n',
    )
    _, problems = Policy.check_bytes(text.encode(), "changed.toml")
    assert any("schedules.mou_annual_review.cron" in p and "not a five-field cron" in p for p in problems), problems
    assert any("schedules.mou_annual_review.owner" in p and "'chief_exec' is not a role" in p for p in problems)
    assert any("schedules.section75_review" in p and "either cron" in p for p in problems), problems
    assert any("schedules.work_plan_review_ccc.figures" in p and "only a report" in p for p in problems), problems
    assert date(2015, 6, 1) == policy.partnership.started_on
