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
from tests.domain.support import (
    AUDREY,
    CAT,
    CCC_SEC,
    DAN,
    GUS,
    LEAD,
    PAT,
    PCC_SEC,
    PHIL,
    SAM,
    T0,
    cid,
    decide,
    deciders,
    escalate,
    outcomes,
    remind,
    start,
)


def events(app: CaseService, ref: str) -> list[str]:
    return [h.event for h in app.history(ref, actor=AUDREY)]


# --- starting -----------------------------------------------------------------------------------


def test_references_are_numbered_per_year(app: CaseService) -> None:
    assert start(app).reference == "PRO-2026-0001"
    assert start(app).reference == "PRO-2026-0002"
    next_year = app.start_proposal(
        actor=LEAD,
        command_id=cid(),
        title="x",
        kind="procurement",
        value_pence=1,
        parties=["PCC"],
        public_health=False,
        at=datetime(2027, 1, 1, 0, 30, tzinfo=UTC),
    )
    assert next_year.reference == "PRO-2027-0001"


def test_a_start_records_the_policy_hash_and_the_jcu_deadline(app: CaseService) -> None:
    s = start(app)
    assert s.policy_hash == app.policy.content_hash
    assert (s.stage, s.status) == ("jcu", "open")
    assert s.deadline == datetime(2026, 12, 8, 17, 0, tzinfo=UTC)  # 10 working days, close of business
    assert s.awaiting[0]["reminder_at"] == datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "bridge"}, "kind 'bridge' is not known; allowed: service_commissioning"),
        ({"parties": ["PCC", "NHS"]}, "parties NHS not known; allowed: PCC,CCC,CPCCG"),
        ({"parties": []}, "parties (none) not known"),
        ({"title": "  "}, "title: has no visible text"),
        ({"value_pence": -1}, "value must be zero or more"),
    ],
)
def test_a_malformed_start_is_refused_and_writes_nothing(app: CaseService, fields: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        start(app, **fields)
    assert app.max_notification_id() == 0


def test_only_a_jcu_lead_may_start_a_proposal(app: CaseService) -> None:
    with pytest.raises(NotAllowedError, match="role lead_director may not start a proposal; allowed: jcu_lead"):
        app.start_proposal(
            actor=DAN,
            command_id=cid(),
            title="t",
            kind="procurement",
            value_pence=1,
            parties=["PCC"],
            public_health=False,
        )
    with pytest.raises(NotAllowedError, match="role 'chief' is not known"):
        app.start_proposal(
            actor=Actor("x", "chief"),
            command_id=cid(),
            title="t",
            kind="procurement",
            value_pence=1,
            parties=["PCC"],
            public_health=False,
        )
    assert app.max_notification_id() == 0


def test_repeating_a_start_with_its_command_id_opens_no_second_case(app: CaseService) -> None:
    first = app.start_proposal(
        actor=LEAD,
        command_id="same",
        title="t",
        kind="procurement",
        value_pence=1,
        parties=["PCC"],
        public_health=False,
    )
    again = app.start_proposal(
        actor=LEAD,
        command_id="same",
        title="t",
        kind="procurement",
        value_pence=1,
        parties=["PCC"],
        public_health=False,
    )
    assert again.reference == first.reference
    assert start(app).reference == "PRO-2026-0002"


# --- routes (governance.md, "Proposal"; MOU Schedule 1) ----------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "jcu_may_approve"),
    [
        (25_000_000, "pathway_change", True),  # at the threshold: within delegated authority
        (25_000_001, "pathway_change", False),
        (1_000, "major_redesign", False),  # a major redesign is never within it
    ],
)
def test_the_jcu_approves_only_within_delegated_authority(
    app: CaseService, value: int, kind: str, jcu_may_approve: bool
) -> None:
    s = start(app, value_pence=value, kind=kind)
    assert ("approve" in outcomes(s, "jcu")) is jcu_may_approve
    if jcu_may_approve:
        done = decide(app, s.reference, DAN, "jcu", "approve")
        assert done.status == "approved"
        assert done.deadline is None
    else:
        with pytest.raises(OutcomeNotAllowedError, match="allowed: refer, reject"):
            decide(app, s.reference, DAN, "jcu", "approve")


def beyond_authority(app: CaseService, **fields: object) -> str:
    """A £900k service commissioning for all three parties, taken to the Programme Board."""
    values = {"kind": "service_commissioning", "value_pence": 90_000_000, **fields}
    ref = start(app, **values).reference
    decide(app, ref, DAN, "jcu", "refer")
    s = decide(app, ref, SAM, "board", "recommend", minutes_ref="CCHJCB-2027-01")
    assert s.stage == "programme_board"
    return ref


def test_beyond_authority_every_partys_own_body_decides_in_parallel_and_all_must_approve(app: CaseService) -> None:
    ref = beyond_authority(app)
    s = decide(app, ref, PAT, "programme_board", "recommend")
    assert s.stage.split(",") == ["pcc_decision", "ccc_decision", "cmet"]  # three branches open at once
    assert {a["stage"]: a["decided_by"] for a in s.awaiting} == {
        "pcc_decision": "secretary:pcc_decision",
        "ccc_decision": "secretary:ccc_decision",
        "cmet": "secretary:cmet",
    }
    s = decide(app, ref, PCC_SEC, "pcc_decision", "approve")
    assert (s.status, s.stage) == ("open", "ccc_decision,cmet")
    s = decide(app, ref, CAT, "cmet", "recommend_approval")
    assert (s.status, s.stage) == ("open", "ccc_decision,governing_body")
    s = decide(app, ref, GUS, "governing_body", "approve")
    assert (s.status, s.stage) == ("open", "ccc_decision")  # two of three: not yet approved
    s = decide(app, ref, CCC_SEC, "ccc_decision", "approve")
    assert (s.status, s.stage, s.deadline) == ("approved", "", None)
    assert [d["forum"] for d in app.state(ref).details["decisions"]] == [
        "jcu",
        "board",
        "programme_board",
        "pcc_decision",
        "cmet",
        "governing_body",
        "ccc_decision",
    ]


def test_the_programme_board_never_approves(app: CaseService) -> None:
    ref = beyond_authority(app)
    assert outcomes(app.state(ref), "programme_board") == ["recommend", "send_back", "decline"]
    with pytest.raises(OutcomeNotAllowedError, match="allowed: recommend, send_back, decline"):
        decide(app, ref, PAT, "programme_board", "approve")
    assert decide(app, ref, PAT, "programme_board", "decline").status == "declined"


def test_one_partys_refusal_ends_the_case_as_not_agreed(app: CaseService) -> None:
    ref = beyond_authority(app)
    decide(app, ref, PAT, "programme_board", "recommend")
    decide(app, ref, PCC_SEC, "pcc_decision", "approve")
    s = decide(app, ref, CCC_SEC, "ccc_decision", "reject", note="Not in our budget")
    assert (s.status, s.stage, s.actions, s.timers) == ("not_agreed", "", [], [])
    with pytest.raises(CaseClosedError, match="is not_agreed.*ccc_decision: reject by secretary:ccc_decision:cal"):
        decide(app, ref, CAT, "cmet", "recommend_approval")


def test_each_body_decides_for_its_own_party_only_and_only_parties_are_asked(app: CaseService) -> None:
    ref = beyond_authority(app, parties=["PCC", "CPCCG"])
    s = decide(app, ref, PAT, "programme_board", "recommend")
    assert s.stage == "pcc_decision,cmet"  # CCC is no party: its body is not asked
    with pytest.raises(WrongStageError, match="awaiting pcc_decision, cmet, not ccc_decision"):
        decide(app, ref, CCC_SEC, "ccc_decision", "approve")
    with pytest.raises(NotYourForumError, match="secretary:pcc_decision decides there"):
        decide(app, ref, CCC_SEC, "pcc_decision", "approve")  # one council's secretary cannot approve for another


def test_a_minor_redesign_within_the_boards_authority_ends_at_the_board(app: CaseService) -> None:
    ref = start(app, kind="minor_redesign", value_pence=20_000_000).reference
    decide(app, ref, DAN, "jcu", "refer")
    assert outcomes(app.state(ref), "board") == ["approve", "recommend", "reject", "defer"]
    assert decide(app, ref, SAM, "board", "approve").status == "approved"


def test_the_board_cannot_approve_what_is_beyond_its_authority(app: CaseService) -> None:
    ref = start(app, kind="pathway_change", value_pence=30_000_000).reference
    decide(app, ref, DAN, "jcu", "refer")
    with pytest.raises(OutcomeNotAllowedError, match="allowed: recommend, reject, defer"):
        decide(app, ref, SAM, "board", "approve")


def test_a_major_redesign_cannot_skip_its_impact_assessment_and_consultation(app: CaseService) -> None:
    ref = start(app, kind="major_redesign").reference
    s = decide(app, ref, DAN, "jcu", "refer")
    assert s.stage == "impact_assessment"
    with pytest.raises(WrongStageError, match="awaiting impact_assessment, not board"):
        decide(app, ref, SAM, "board", "recommend")
    assert decide(app, ref, DAN, "impact_assessment", "completed").stage == "consultation"
    assert decide(app, ref, DAN, "consultation", "completed", note="12 weeks; 214 responses").stage == "board"
    assert decide(app, ref, SAM, "board", "recommend").stage == "programme_board"


def test_public_health_signs_off_before_the_parties_bodies_decide(app: CaseService) -> None:
    ref = beyond_authority(app, public_health=True)
    s = decide(app, ref, PAT, "programme_board", "recommend")
    assert s.stage == "public_health"
    assert deciders(s, "public_health") == ["public_health"]
    s = decide(app, ref, PHIL, "public_health", "sign_off")
    assert s.stage == "pcc_decision,ccc_decision,cmet"


def test_public_health_refusing_sign_off_rejects_the_proposal(app: CaseService) -> None:
    ref = beyond_authority(app, public_health=True)
    decide(app, ref, PAT, "programme_board", "recommend")
    assert decide(app, ref, PHIL, "public_health", "refuse").status == "rejected"


def test_the_board_may_defer_once_to_its_next_meeting(app: CaseService) -> None:
    ref = start(app).reference
    decide(app, ref, DAN, "jcu", "refer")
    s = decide(app, ref, SAM, "board", "defer")
    assert s.deadline == datetime(2027, 3, 9, 17, 0, tzinfo=UTC)
    assert "defer" not in outcomes(s, "board")
    with pytest.raises(OutcomeNotAllowedError, match="allowed: approve, recommend, reject$"):
        decide(app, ref, SAM, "board", "defer")


# --- who may decide -----------------------------------------------------------------------------


def test_a_secretary_records_only_their_own_forums_decision(app: CaseService) -> None:
    ref = start(app).reference
    decide(app, ref, DAN, "jcu", "refer")
    before = app.max_notification_id()
    with pytest.raises(
        NotYourForumError, match="role secretary:cmet may not decide at board .* secretary:board decides there"
    ):
        decide(app, ref, CAT, "board", "recommend")
    assert app.max_notification_id() == before


def test_a_decision_at_the_wrong_stage_names_the_decision_already_recorded(app: CaseService) -> None:
    ref = start(app).reference
    decide(app, ref, DAN, "jcu", "refer")
    with pytest.raises(
        WrongStageError, match="awaiting board, not jcu; decision already recorded: jcu: refer by lead_director:dan"
    ):
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
    with pytest.raises(DeadlineNotReachedError, match="escalate:1 for PRO-2026-0001 is due at 2026-12-08T17:00"):
        escalate(app, s.reference, at=s.deadline - timedelta(seconds=1))
    assert events(app, s.reference) == ["Started"]


def test_a_missed_stage_escalates_to_the_programme_board_which_may_extend(app: CaseService) -> None:
    s = start(app)
    remind(app, s.reference)
    e = escalate(app, s.reference)
    assert (e.stage, e.awaiting[0]["escalated_to"]) == ("jcu", "programme_board")
    assert deciders(e, "jcu") == ["lead_director", "secretary:programme_board"]  # the JCU may still decide late
    assert outcomes(e, "jcu", "secretary:programme_board") == ["extend"]  # nothing to send back to from jcu
    x = decide(app, s.reference, PAT, "jcu", "extend", new_deadline=date(2027, 1, 29), at=s.deadline)
    assert (x.stage, x.awaiting[0]["escalated_to"]) == ("jcu", None)
    assert x.deadline == datetime(2027, 1, 29, 17, 0, tzinfo=UTC)
    assert events(app, s.reference) == ["Started", "ReminderSent", "Escalated", "Decided"]


def test_the_programme_board_may_not_decide_in_a_stages_place(app: CaseService) -> None:
    ref = start(app).reference
    b = decide(app, ref, DAN, "jcu", "refer")
    escalate(app, ref)
    with pytest.raises(OutcomeNotAllowedError, match="allowed: extend, send_back$"):
        decide(app, ref, PAT, "board", "decide", stage_outcome="recommend", at=b.deadline)


def test_the_programme_board_may_send_a_case_back(app: CaseService) -> None:
    ref = start(app).reference
    b = decide(app, ref, DAN, "jcu", "refer")
    escalate(app, ref)
    # Named by the escalation forum, as the CLI once asked, or by the stage: the same.
    back = decide(app, ref, PAT, "programme_board", "send_back", at=b.deadline)
    assert (back.stage, back.awaiting[0]["escalated_to"]) == ("jcu", None)
    assert decide(app, ref, DAN, "jcu", "refer").stage == "board"


def test_a_councils_missed_deadline_is_escalated_but_only_the_council_decides(app: CaseService) -> None:
    ref = beyond_authority(app)
    decide(app, ref, PAT, "programme_board", "recommend")
    decide(app, ref, CAT, "cmet", "recommend_approval")
    e = escalate(app, ref)  # the earliest deadline: the councils' (cmet's successor has its own)
    stage = next(a["stage"] for a in e.awaiting if a["escalated_to"])
    assert stage in ("pcc_decision", "ccc_decision")
    assert outcomes(e, stage, "secretary:programme_board") == ["extend"]  # first of its branch: no way back
    with pytest.raises(OutcomeNotAllowedError, match="allowed: extend$"):
        decide(app, ref, PAT, stage, "approve")
    secretary = PCC_SEC if stage == "pcc_decision" else CCC_SEC
    assert stage not in decide(app, ref, secretary, stage, "approve").stage  # late, but theirs to give


def test_within_a_branch_the_escalation_may_send_back_to_the_stage_before(app: CaseService) -> None:
    ref = beyond_authority(app, parties=["CPCCG"])
    decide(app, ref, PAT, "programme_board", "recommend")
    g = decide(app, ref, CAT, "cmet", "recommend_approval")
    assert g.stage == "governing_body"
    escalate(app, ref)
    back = decide(app, ref, PAT, "governing_body", "send_back")
    assert back.stage == "cmet"


def test_a_missed_escalation_is_recorded_and_the_case_stays_overdue(app: CaseService) -> None:
    s = start(app)
    e = escalate(app, s.reference)
    m = escalate(app, s.reference, at=e.deadline)
    assert m.awaiting[0]["overdue_recorded"] and m.status == "open"
    assert events(app, s.reference)[-1] == "DeadlineMissed"
    assert not [t for t in m.timers if t.name.startswith("escalate:")]


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
