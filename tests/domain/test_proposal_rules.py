"""The proposal's rules, through the real application service (governance.md, "Proposal")."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from domain.actor import Actor
from domain.application import CaseService
from domain.errors import (
    CaseClosedError,
    CaseNotFoundError,
    DeadlineNotReachedError,
    InvalidInputError,
    NotAllowedError,
    NotYourForumError,
    OutcomeNotAllowedError,
    WrongStageError,
)
from tests.domain.support import AUDREY, CAT, DAN, GUS, LEAD, PAT, PHIL, SAM, T0, cid, decide, start


def events(app: CaseService, ref: str) -> list[str]:
    return [h.event for h in app.history(ref, actor=AUDREY)]


# --- starting -----------------------------------------------------------------------------------


def test_references_are_numbered_per_year(app: CaseService) -> None:
    assert start(app).reference == "PRO-2026-0001"
    assert start(app).reference == "PRO-2026-0002"
    next_year = app.start_proposal(
        actor=LEAD, command_id=cid(), title="x", kind="procurement", value_pence=1, parties=["PCC"],
        public_health=False, at=datetime(2027, 1, 1, 0, 30, tzinfo=UTC),
    )
    assert next_year.reference == "PRO-2027-0001"


def test_a_start_records_the_policy_hash_and_the_jcu_deadline(app: CaseService) -> None:
    s = start(app)
    assert s.policy_hash == app.policy.content_hash
    assert (s.stage, s.status) == ("jcu", "open")
    assert s.deadline == datetime(2026, 12, 8, 17, 0, tzinfo=UTC)  # 10 working days, close of business
    assert s.reminder_at == datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "bridge"}, "kind 'bridge' is not known; allowed: service_commissioning"),
        ({"parties": ["PCC", "NHS"]}, "parties NHS not known; allowed: PCC,CCC,CPCCG"),
        ({"parties": []}, "parties (none) not known"),
        ({"title": "  "}, "title is empty"),
        ({"value_pence": -1}, "value must be zero or more"),
    ],
)
def test_a_malformed_start_is_refused_and_writes_nothing(app: CaseService, fields: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        start(app, **fields)
    assert app.max_notification_id() == 0


def test_only_a_jcu_lead_may_start_a_proposal(app: CaseService) -> None:
    with pytest.raises(NotAllowedError, match="role lead_director may not start a proposal; allowed: jcu_lead"):
        app.start_proposal(actor=DAN, command_id=cid(), title="t", kind="procurement", value_pence=1,
                           parties=["PCC"], public_health=False)
    with pytest.raises(NotAllowedError, match="role 'chief' is not known"):
        app.start_proposal(actor=Actor("x", "chief"), command_id=cid(), title="t", kind="procurement",
                           value_pence=1, parties=["PCC"], public_health=False)
    assert app.max_notification_id() == 0


def test_repeating_a_start_with_its_command_id_opens_no_second_case(app: CaseService) -> None:
    first = app.start_proposal(actor=LEAD, command_id="same", title="t", kind="procurement", value_pence=1,
                               parties=["PCC"], public_health=False)
    again = app.start_proposal(actor=LEAD, command_id="same", title="t", kind="procurement", value_pence=1,
                               parties=["PCC"], public_health=False)
    assert again.reference == first.reference
    assert start(app).reference == "PRO-2026-0002"


# --- routes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "jcu_may_approve"),
    [
        (25_000_000, "pathway_change", True),  # at the threshold: within delegated authority
        (25_000_001, "pathway_change", False),
        (1_000, "major_redesign", False),  # a major redesign is never within it
    ],
)
def test_the_jcu_approves_only_within_delegated_authority(app: CaseService, value: int, kind: str, jcu_may_approve: bool) -> None:
    s = start(app, value_pence=value, kind=kind)
    assert ("approve" in s.allowed_actions[0].outcomes) is jcu_may_approve
    if jcu_may_approve:
        done = decide(app, s.reference, DAN, "jcu", "approve")
        assert done.status == "approved"
        assert done.deadline is None
    else:
        with pytest.raises(OutcomeNotAllowedError, match="allowed: refer, reject"):
            decide(app, s.reference, DAN, "jcu", "approve")


def test_with_the_ccg_a_party_the_route_runs_board_cmet_governing_body(app: CaseService) -> None:
    ref = start(app).reference
    s = decide(app, ref, DAN, "jcu", "refer")
    assert s.stage == "board"
    assert s.deadline == datetime(2027, 1, 12, 17, 0, tzinfo=UTC)  # the next board meeting
    assert s.allowed_actions[0].outcomes == ["recommend", "reject", "defer"]
    s = decide(app, ref, SAM, "board", "recommend", minutes_ref="CCHJCB-2027-01")
    assert s.stage == "cmet"
    s = decide(app, ref, CAT, "cmet", "recommend_rejection")
    assert s.stage == "governing_body"  # CMET recommends; the Governing Body decides
    s = decide(app, ref, GUS, "governing_body", "approve")
    assert s.status == "approved"
    assert [d["forum"] for d in s.decisions] == ["jcu", "board", "cmet", "governing_body"]


def test_without_the_ccg_the_boards_approval_ends_it(app: CaseService) -> None:
    ref = start(app, parties=["PCC", "CCC"]).reference
    decide(app, ref, DAN, "jcu", "refer")
    s = app.state(ref)
    assert s.allowed_actions[0].outcomes == ["approve", "reject", "defer"]
    assert decide(app, ref, SAM, "board", "approve").status == "approved"


def test_a_major_redesign_goes_through_the_programme_board(app: CaseService) -> None:
    ref = start(app, kind="major_redesign").reference
    decide(app, ref, DAN, "jcu", "refer")
    s = decide(app, ref, SAM, "board", "recommend")
    assert s.stage == "programme_board"
    assert decide(app, ref, PAT, "programme_board", "approve").stage == "cmet"


def test_public_health_money_needs_sign_off_before_approval_is_complete(app: CaseService) -> None:
    ref = start(app, value_pence=1_000, public_health=True).reference
    s = decide(app, ref, DAN, "jcu", "approve")
    assert (s.status, s.stage) == ("open", "public_health")
    assert s.allowed_actions[0].role == "public_health"
    s = decide(app, ref, PHIL, "public_health", "sign_off")
    assert s.status == "approved"
    assert s.public_health_signed_off


def test_public_health_refusing_sign_off_rejects_the_proposal(app: CaseService) -> None:
    ref = start(app, value_pence=1_000, public_health=True).reference
    decide(app, ref, DAN, "jcu", "approve")
    assert decide(app, ref, PHIL, "public_health", "refuse").status == "rejected"


def test_the_board_may_defer_once_to_its_next_meeting(app: CaseService) -> None:
    ref = start(app).reference
    decide(app, ref, DAN, "jcu", "refer")
    s = decide(app, ref, SAM, "board", "defer")
    assert s.deadline == datetime(2027, 3, 9, 17, 0, tzinfo=UTC)
    assert "defer" not in s.allowed_actions[0].outcomes
    with pytest.raises(OutcomeNotAllowedError, match="allowed: recommend, reject$"):
        decide(app, ref, SAM, "board", "defer")


# --- who may decide -----------------------------------------------------------------------------


def test_a_secretary_records_only_their_own_forums_decision(app: CaseService) -> None:
    ref = start(app).reference
    decide(app, ref, DAN, "jcu", "refer")
    before = app.max_notification_id()
    with pytest.raises(NotYourForumError, match="role secretary:cmet may not decide at board .* secretary:board decides there"):
        decide(app, ref, CAT, "board", "recommend")
    assert app.max_notification_id() == before


def test_a_decision_at_the_wrong_stage_names_the_decision_already_recorded(app: CaseService) -> None:
    ref = start(app).reference
    decide(app, ref, DAN, "jcu", "refer")
    with pytest.raises(WrongStageError, match="awaiting board, not jcu; decision already recorded: jcu: refer by lead_director:dan"):
        decide(app, ref, DAN, "jcu", "reject")


def test_a_closed_case_takes_no_more_commands(app: CaseService) -> None:
    ref = start(app).reference
    decide(app, ref, DAN, "jcu", "reject")
    with pytest.raises(CaseClosedError, match="is rejected"):
        decide(app, ref, DAN, "jcu", "refer")
    with pytest.raises(CaseClosedError):
        app.withdraw(ref, actor=LEAD, command_id=cid())


def test_an_unknown_reference_is_not_found(app: CaseService) -> None:
    with pytest.raises(CaseNotFoundError, match="no case has the reference 'PRO-2026-0404'"):
        app.get("PRO-2026-0404", actor=AUDREY)


def test_only_a_jcu_lead_withdraws(app: CaseService) -> None:
    ref = start(app).reference
    with pytest.raises(NotAllowedError, match="may not withdraw"):
        app.withdraw(ref, actor=SAM, command_id=cid())
    assert app.withdraw(ref, actor=LEAD, command_id=cid(), note="superseded").status == "withdrawn"


def test_an_auditor_reads_but_may_not_decide(app: CaseService) -> None:
    ref = start(app).reference
    assert app.get(ref, actor=AUDREY).reference == ref
    with pytest.raises(NotAllowedError):
        decide(app, ref, AUDREY, "jcu", "refer")


# --- idempotency --------------------------------------------------------------------------------


def test_a_command_applied_twice_stores_one_event_and_answers_the_same(app: CaseService) -> None:
    ref = start(app).reference
    first = app.decide(ref, actor=DAN, stage="jcu", outcome="refer", command_id="once")
    decide(app, ref, SAM, "board", "recommend")  # the case moves on in between
    again = app.decide(ref, actor=DAN, stage="jcu", outcome="refer", command_id="once")
    assert again == first
    assert events(app, ref) == ["Started", "Decided", "Decided"]


# --- deadlines ----------------------------------------------------------------------------------


def test_escalation_waits_for_the_deadline(app: CaseService) -> None:
    s = start(app)
    with pytest.raises(DeadlineNotReachedError, match="deadline for PRO-2026-0001 is 2026-12-08T17:00"):
        app.escalate(s.reference, command_id=cid(), at=s.deadline - timedelta(seconds=1))
    assert events(app, s.reference) == ["Started"]


def test_a_missed_stage_escalates_to_the_programme_board_which_may_extend(app: CaseService) -> None:
    s = start(app)
    app.remind(s.reference, command_id=cid(), at=s.reminder_at)
    e = app.escalate(s.reference, command_id=cid(), at=s.deadline)
    assert (e.stage, e.escalated_to) == ("jcu", "programme_board")
    assert e.allowed_actions[0].role == "secretary:programme_board"
    assert e.allowed_actions[0].outcomes == ["extend", "decide"]  # nothing to send back to from jcu
    x = decide(app, s.reference, PAT, "programme_board", "extend", new_deadline=date(2027, 1, 29), at=s.deadline)
    assert (x.stage, x.escalated_to) == ("jcu", None)
    assert x.deadline == datetime(2027, 1, 29, 17, 0, tzinfo=UTC)
    assert events(app, s.reference) == ["Started", "ReminderSent", "Escalated", "Decided"]


def test_the_programme_board_may_decide_in_the_stages_place(app: CaseService) -> None:
    ref = start(app).reference
    b = decide(app, ref, DAN, "jcu", "refer")
    app.escalate(ref, command_id=cid(), at=b.deadline)
    with pytest.raises(OutcomeNotAllowedError, match="one of: recommend, reject"):
        decide(app, ref, PAT, "programme_board", "decide", stage_outcome="defer", at=b.deadline)
    d = decide(app, ref, PAT, "programme_board", "decide", stage_outcome="recommend", at=b.deadline)
    assert d.stage == "cmet"
    assert d.decisions[-1]["forum"] == "programme_board"


def test_the_programme_board_may_send_a_case_back(app: CaseService) -> None:
    ref = start(app).reference
    b = decide(app, ref, DAN, "jcu", "refer")
    app.escalate(ref, command_id=cid(), at=b.deadline)
    back = decide(app, ref, PAT, "programme_board", "send_back", at=b.deadline)
    assert (back.stage, back.escalated_to) == ("jcu", None)


def test_a_missed_escalation_is_recorded_and_the_case_stays_overdue(app: CaseService) -> None:
    s = start(app)
    e = app.escalate(s.reference, command_id=cid(), at=s.deadline)
    m = app.escalate(s.reference, command_id=cid(), at=e.deadline)
    assert m.deadline_missed and m.status == "open"
    assert events(app, s.reference)[-1] == "DeadlineMissed"
    with pytest.raises(DeadlineNotReachedError):
        app.escalate(s.reference, command_id=cid(), at=e.deadline + timedelta(days=1))


def test_history_shows_who_did_what_in_which_role(app: CaseService) -> None:
    ref = start(app).reference
    decide(app, ref, DAN, "jcu", "refer", minutes_ref="JCU-7", note="needs the board")
    h = app.history(ref, actor=AUDREY)
    assert [(e.version, e.event, e.actor_role, e.actor_id) for e in h] == [
        (1, "Started", "jcu_lead", "jo"),
        (2, "Decided", "lead_director", "dan"),
    ]
    assert h[1].changes["minutes_ref"] == "JCU-7"
    assert h[1].changes["note"] == "needs the board"
    assert h[1].at == T0
