"""FOI requests as a case (MOU, FOI; FOIA s.1(3), s.10): recorded by the party first approached,
its clock stopped and restarted, its draft agreed by each other party (or by the Lead Director once a
party's silence is escalated), and sent, on time or late."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.actor import Actor
from domain.application import CaseService
from domain.errors import InvalidInputError, NotAllowedError, WrongStageError
from domain.policy import Policy
from tests.domain.support import DAN, LEAD, cid, fire

PIA = Actor.parse("party_rep:PCC:pia")  # Peterborough, first approached
CY = Actor.parse("party_rep:CCC:cy")
GIL = Actor.parse("party_rep:CPCCG:gil")


def receive(app: CaseService, **fields: object):
    values = {"subject": "Spend on speech and language therapy 2025/26", "requester_ref": "PCC-FOI-881", **fields}
    return app.receive_foi(actor=PIA, fields=values, command_id=cid())


def act(app: CaseService, ref: str, actor: Actor, action: str, at: datetime | None = None, **fields: object):
    return app.act(ref, actor=actor, action=action, fields=fields, command_id=cid(), at=at)


# A Tuesday in January 2027: every request in these tests was received before it.
TODAY = datetime(2027, 1, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def app(policy: Policy) -> CaseService:
    return CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=policy, clock=lambda: TODAY)


def test_the_party_first_approached_records_it_and_its_due_date_counts_every_nations_holidays(
    app: CaseService,
) -> None:
    # Received Fri 27 Nov 2026; St Andrew's Day (Mon 30 Nov) and Christmas stop the count: Wed 30 Dec.
    state = receive(app, received_on=date(2026, 11, 27))
    assert state.reference == "FOI-2027-0001"  # numbered in the year it was recorded
    assert state.details["party"] == "PCC"
    assert state.details["due"] == "2026-12-30"
    assert state.deadline == datetime(2026, 12, 30, 17, 0, tzinfo=UTC)
    assert {a.name for a in state.actions} >= {"draft_response", "seek_clarification", "fees_notice"}


def test_only_a_partys_representative_records_a_request_and_never_one_from_the_future(app: CaseService) -> None:
    with pytest.raises(NotAllowedError, match="party first approached"):
        app.receive_foi(actor=LEAD, fields={"subject": "x", "requester_ref": "r"}, command_id=cid())
    with pytest.raises(InvalidInputError, match="in the future"):
        receive(app, received_on=date(2027, 1, 6))
    assert list(app.references(("FOI",))) == []


def test_clarification_stops_the_clock_and_its_arrival_starts_twenty_days_afresh(app: CaseService) -> None:
    ref = receive(app, received_on=date(2026, 11, 2)).reference
    stopped = act(app, ref, PIA, "seek_clarification", on=date(2026, 11, 4))
    assert stopped.stage == "awaiting_clarification" and stopped.deadline is None
    assert [a.name for a in stopped.actions] == ["clarification_received"]
    with pytest.raises(WrongStageError, match="stopped until the clarification arrives"):
        act(app, ref, PIA, "draft_response", draft_ref="D1")
    # Arrives Mon 23 Nov: 24 Nov – 21 Dec is 20 working days (St Andrew's Day, Mon 30 Nov, skipped).
    running = act(app, ref, PIA, "clarification_received", on=date(2026, 11, 23))
    assert running.details["counted_from"] == "2026-11-23"
    assert running.details["due"] == "2026-12-22"


def test_an_unpaid_fee_stops_the_clock_and_its_days_are_disregarded_once_paid(app: CaseService) -> None:
    ref = receive(app, received_on=date(2026, 11, 2)).reference
    assert app.state(ref).details["due"] == "2026-12-01"  # 3 Nov … 1 Dec, St Andrew's Day skipped
    act(app, ref, PIA, "fees_notice", on=date(2026, 11, 5))
    assert app.state(ref).details["clock"] == "awaiting_fee"
    # Thu 5, Fri 6, 9 … 13 Nov and Mon 16 Nov disregarded (8 working days): Tue 1 Dec + 8 = Fri 11 Dec.
    paid = act(app, ref, PIA, "fee_paid", on=date(2026, 11, 16))
    assert paid.details["due"] == "2026-12-11"
    with pytest.raises(InvalidInputError, match="before the day the fees notice"):
        act(app, ref, PIA, "fees_notice", on=date(2026, 11, 20))
        act(app, ref, PIA, "fee_paid", on=date(2026, 11, 19))


def test_a_public_interest_extension_names_its_reason_and_a_date_within_the_policys_bound(app: CaseService) -> None:
    ref = receive(app, received_on=date(2026, 11, 2)).reference
    with pytest.raises(InvalidInputError, match="at most 20 working days after it"):
        act(app, ref, PIA, "extend_public_interest", to=date(2027, 2, 1), reason="s.43 public interest test")
    state = act(app, ref, PIA, "extend_public_interest", to=date(2026, 12, 15), reason="s.43 public interest test")
    assert state.details["statutory_due"] == "2026-12-01"
    assert state.details["due"] == "2026-12-15"
    assert state.details["extension"] == {"to": "2026-12-15", "reason": "s.43 public interest test"}


def test_the_response_is_sent_only_once_every_other_party_has_agreed_its_draft(app: CaseService) -> None:
    ref = receive(app, received_on=date(2026, 11, 20)).reference
    drafted = act(app, ref, PIA, "draft_response", draft_ref="PCC/FOI/881/d1", exemptions=["s.43(2)", "s.40(2)"])
    assert drafted.stage == "agreement"
    assert drafted.details["awaiting"] == ["CCC", "CPCCG"]
    with pytest.raises(WrongStageError, match="takes no send-response"):
        act(app, ref, PIA, "send_response")
    with pytest.raises(NotAllowedError, match="may not agree"):
        act(app, ref, PIA, "agree")
    act(app, ref, CY, "agree")
    refused = act(app, ref, GIL, "refuse", note="the s.43 reasoning is thin")
    assert refused.stage == "drafting"
    act(app, ref, PIA, "draft_response", draft_ref="PCC/FOI/881/d2", exemptions=["s.43(2)"])
    assert app.state(ref).details["awaiting"] == ["CCC", "CPCCG"]  # a new draft is agreed afresh
    act(app, ref, CY, "agree")
    act(app, ref, GIL, "agree")
    sent = act(app, ref, PIA, "send_response", on=date(2026, 12, 18))
    assert sent.status == "sent"
    assert sent.details["sent_on"] == "2026-12-18" and sent.details["on_time"] is True
    assert sent.details["exemptions"] == ["s.43(2)"]
    assert sent.actions == [] and sent.timers == []


def test_a_party_silent_past_the_agreement_deadline_is_escalated_to_the_lead_director_who_may_agree(
    app: CaseService,
) -> None:
    ref = receive(app, received_on=date(2026, 11, 20)).reference
    act(app, ref, PIA, "draft_response", draft_ref="d1")
    act(app, ref, CY, "agree")
    with pytest.raises(NotAllowedError, match="may not agree"):
        act(app, ref, DAN, "agree")
    escalated = fire(app, ref, "escalate:")
    assert escalated.details["drafts"][-1]["escalated"] == ["CPCCG"]
    agreed = act(app, ref, DAN, "agree")
    assert agreed.details["drafts"][-1]["agreed"]["CPCCG"] == "lead_director:dan"
    assert [a.name for a in agreed.actions if a.name == "send_response"] == ["send_response"]


def test_the_due_date_brings_a_reminder_then_records_the_request_overdue_and_a_late_answer_says_so(
    app: CaseService,
) -> None:
    ref = receive(app, received_on=date(2026, 10, 1)).reference
    late_clock = {t.name for t in app.state(ref).timers}
    assert late_clock == {"remind:2026-10-29", "overdue:2026-10-29"}
    fire(app, ref, "remind:")
    overdue = fire(app, ref, "overdue:")
    assert overdue.timers == []
    history = [e.event for e in app.history(ref, actor=DAN)]
    assert history[-2:] == ["ReminderSent", "Overdue"]
    act(app, ref, PIA, "draft_response", draft_ref="d1")
    act(app, ref, CY, "agree")
    act(app, ref, GIL, "agree")
    sent = act(app, ref, PIA, "send_response")
    assert sent.details["on_time"] is False


def test_a_repeated_command_id_records_once(app: CaseService) -> None:
    ref = receive(app, received_on=date(2026, 11, 20)).reference
    first = app.act(ref, actor=PIA, action="seek_clarification", fields={}, command_id="same")
    again = app.act(ref, actor=PIA, action="seek_clarification", fields={}, command_id="same")
    assert first.version == again.version == 2


def test_the_policy_check_names_an_foi_escalation_to_no_role_and_an_unknown_nation(policy: Policy) -> None:
    text = policy.source_text.replace('escalate_to = "lead_director"', 'escalate_to = "chief_exec"').replace(
        '"SCT", "NIR"]\nmax_extension', '"SCT", "IOM"]\nmax_extension'
    )
    _, problems = Policy.check_bytes(text.encode(), "changed.toml")
    assert any("foi.agreement.escalate_to" in p and "'chief_exec' is not a role" in p for p in problems), problems
    assert any("'IOM' is not ENG, WLS, SCT or NIR" in p for p in problems), problems
