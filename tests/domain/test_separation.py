"""Separation of duties (issue 19): one person does not decide at two stages of a case, nor decide
what they started; the policy's `[separation]` table sets the rules and their per-forum exceptions.
Through the real application service on eventsourcing's in-memory store."""

from __future__ import annotations

import pytest

from domain.actor import Actor
from domain.application import CaseService
from domain.case import Rules, case_id
from domain.policy import Policy
from domain.separation import OneStagePerPerson, Separation, SeparationOfDutiesError
from domain.staged import Decide
from tests.domain.support import DAN, PAT, SAM, T0, cid, decide, escalate, start
from tests.people import ensure
from tests.policies import WITHOUT_COUNCIL_PROCEDURE, without_council_procedure_text

SHIPPED = without_council_procedure_text()  # the shipped text, the councils' procedure off (tests/policies.py)
SHIPPED_TABLE = SHIPPED[SHIPPED.index("[separation]") : SHIPPED.index("# Board meetings")]


def policy_from(text: str) -> Policy:
    policy, problems = Policy.check_bytes(text.encode(), "test.toml")
    assert policy is not None and problems == [], problems
    return policy


def with_separation(table: str) -> Policy:
    """The shipped policy with its `[separation]` table replaced by `table` ("" drops it)."""
    return policy_from(SHIPPED.replace(SHIPPED_TABLE, table + "\n"))


def service(policy: Policy) -> CaseService:
    return CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=policy, clock=lambda: T0)


def at_programme_board(app: CaseService) -> str:
    """A pathway change beyond delegated authority, through the JCU and the board (by two people)."""
    ref = start(app, value_pence=30_000_000).reference
    decide(app, ref, DAN, "jcu", "refer")
    decide(app, ref, SAM, "board", "recommend")
    return ref


def refused_and_nothing_written(app: CaseService, ref: str, call, *needles: str) -> None:
    before, stored = app.state(ref), app.max_notification_id()
    with pytest.raises(SeparationOfDutiesError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    assert app.max_notification_id() == stored, "a refused command stored an event"
    assert app.state(ref) == before


# --- one stage per person ---------------------------------------------------------------------------


def test_one_person_deciding_at_two_stages_is_refused_and_nothing_is_written(app: CaseService) -> None:
    ref = at_programme_board(app)
    sam_for_the_programme_board = Actor(id="sam", role="secretary:programme_board")
    refused_and_nothing_written(
        app,
        ref,
        lambda: decide(app, ref, sam_for_the_programme_board, "programme_board", "recommend"),
        "one_stage_per_person",
        "sam already decided PRO-2026-0001 at board",
        "(as secretary:board, 2026-11-24)",
        "at programme_board",
    )
    # Another person records it.
    assert decide(app, ref, PAT, "programme_board", "recommend").stage == "pcc_decision,ccc_decision,cmet"


def test_the_rule_holds_across_parallel_branches(app: CaseService) -> None:
    ref = at_programme_board(app)
    decide(app, ref, PAT, "programme_board", "recommend")
    decide(app, ref, Actor.parse("secretary:cmet:cat"), "cmet", "recommend_approval")
    both = Actor.parse("secretary:governing_body:cat")
    refused_and_nothing_written(
        app, ref, lambda: decide(app, ref, both, "governing_body", "approve"), "cat already decided", "at cmet"
    )


def test_the_same_stage_again_is_no_second_stage(app: CaseService) -> None:
    """The board defers, and at its next meeting the same secretary records its recommendation."""
    ref = start(app, value_pence=30_000_000).reference
    decide(app, ref, DAN, "jcu", "refer")
    decide(app, ref, SAM, "board", "defer")
    assert decide(app, ref, SAM, "board", "recommend").stage == "programme_board"


def test_a_forum_in_allow_for_lets_one_person_decide_at_its_stages(app: CaseService) -> None:
    """The shipped policy: the Lead Director decides at each of the JCU's stages (a major redesign's
    referral, impact assessment and consultation) — but not for the board as well."""
    ref = start(app, kind="major_redesign", value_pence=30_000_000).reference
    decide(app, ref, DAN, "jcu", "refer")
    decide(app, ref, DAN, "impact_assessment", "completed")
    assert decide(app, ref, DAN, "consultation", "completed").stage == "board"
    dan_for_the_board = Actor(id="dan", role="secretary:board")
    refused_and_nothing_written(
        app, ref, lambda: decide(app, ref, dan_for_the_board, "board", "recommend"), "dan already decided"
    )


def test_a_group_in_allow_for_lets_one_secretary_record_for_two_bodies() -> None:
    app = service(
        with_separation('[separation]\none_stage_per_person = { allow_for = ["jcu", ["board", "programme_board"]] }')
    )
    ref = at_programme_board(app)
    sam_for_the_programme_board = Actor(id="sam", role="secretary:programme_board")
    assert decide(app, ref, sam_for_the_programme_board, "programme_board", "recommend").status == "open"
    # The group allows those two bodies together, not a third.
    sam_for_pcc = Actor(id="sam", role="secretary:pcc_decision")
    refused_and_nothing_written(app, ref, lambda: decide(app, ref, sam_for_pcc, "pcc_decision", "approve"), "sam")


def test_the_rule_turned_off_lets_one_person_decide_everywhere() -> None:
    app = service(with_separation("[separation]\none_stage_per_person = false"))
    ref = at_programme_board(app)
    assert decide(app, ref, Actor(id="sam", role="secretary:programme_board"), "programme_board", "recommend")


ESCALATION = """[routes.proposal.escalation]
forum = "programme_board"
deadline = { working_days = 20 }
may = ["extend", "send_back"]
decides_in_place = []"""


def deciding_in_place() -> CaseService:
    """The shipped policy, but the Programme Board may decide in the board's place."""
    assert ESCALATION in SHIPPED
    text = SHIPPED.replace(
        ESCALATION, ESCALATION.replace('"send_back"]', '"send_back", "decide"]').replace("[]", '["board"]')
    )
    return service(policy_from(text))


def test_deciding_in_a_stages_place_is_a_decision_at_that_stage() -> None:
    app = deciding_in_place()
    ref = start(app, value_pence=30_000_000).reference
    decide(app, ref, DAN, "jcu", "refer")
    escalate(app, ref)
    decide(app, ref, PAT, "board", "decide", stage_outcome="recommend")
    refused_and_nothing_written(
        app,
        ref,
        lambda: decide(app, ref, PAT, "programme_board", "recommend"),
        "pat already decided PRO-2026-0001 at board",
        "(as secretary:programme_board",
    )


def test_an_escalations_extend_is_no_decision_at_the_stage() -> None:
    app = deciding_in_place()
    ref = start(app, value_pence=30_000_000).reference
    decide(app, ref, DAN, "jcu", "refer")
    escalate(app, ref)
    decide(app, ref, PAT, "board", "extend")
    decide(app, ref, SAM, "board", "recommend")
    assert decide(app, ref, PAT, "programme_board", "recommend").stage == "pcc_decision,ccc_decision,cmet"


# --- no self-approval -------------------------------------------------------------------------------


def test_the_person_who_started_a_case_may_not_approve_it(app: CaseService) -> None:
    ref = start(app).reference  # by jcu_lead:jo
    jo_as_lead_director = Actor(id="jo", role="lead_director")
    refused_and_nothing_written(
        app,
        ref,
        lambda: decide(app, ref, jo_as_lead_director, "jcu", "approve"),
        "no_self_approval",
        "jo started PRO-2026-0001 (as jcu_lead)",
        "at jcu",
    )
    assert decide(app, ref, DAN, "jcu", "approve").status == "approved"


def test_no_self_approval_allows_the_forums_it_names() -> None:
    app = service(with_separation('[separation]\nno_self_approval = { allow_for = ["jcu"] }'))
    ref = start(app).reference
    assert decide(app, ref, Actor(id="jo", role="lead_director"), "jcu", "approve").status == "approved"
    # …and only those.
    ref = start(app, value_pence=30_000_000).reference
    decide(app, ref, DAN, "jcu", "refer")
    jo_for_the_board = Actor(id="jo", role="secretary:board")
    refused_and_nothing_written(
        app, ref, lambda: decide(app, ref, jo_for_the_board, "board", "recommend"), "jo started"
    )


def test_a_withdrawal_is_no_decision(app: CaseService) -> None:
    ref = start(app, value_pence=30_000_000).reference
    decide(app, ref, DAN, "jcu", "refer")
    dan_as_jcu_lead = Actor(id="dan", role="jcu_lead")
    assert app.withdraw(ref, actor=dan_as_jcu_lead, command_id=cid()).status == "withdrawn"


# --- the policy ---------------------------------------------------------------------------------


def test_a_policy_without_the_table_gets_both_rules_with_no_exceptions() -> None:
    policy = with_separation("")
    assert "[separation]" not in policy.source_text
    assert policy.separation == Separation()
    assert policy.separation.one_stage_per_person.applies and policy.separation.no_self_approval.applies
    assert policy.separation.one_stage_per_person.allow_for == []
    app = service(policy)
    ref = start(app).reference
    refused_and_nothing_written(
        app, ref, lambda: decide(app, ref, Actor(id="jo", role="lead_director"), "jcu", "approve"), "jo started"
    )
    # No exception for the JCU either: the Lead Director's second JCU stage needs another person.
    ref = start(app, kind="major_redesign", value_pence=30_000_000).reference
    decide(app, ref, DAN, "jcu", "refer")
    refused_and_nothing_written(
        app, ref, lambda: decide(app, ref, DAN, "impact_assessment", "completed"), "dan already decided"
    )


def test_the_shipped_policy_sets_the_rules_it_says() -> None:
    sep = Policy.load().separation
    assert sep.one_stage_per_person == OneStagePerPerson(allow_for=["jcu"])
    assert sep.no_self_approval.applies and sep.no_self_approval.allow_for == ["provider"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            '[separation]\none_stage_per_person = { allow_for = ["jcu", ["board", "nowhere"]] }',
            "separation.one_stage_per_person.allow_for: 'nowhere' is not a forum",
        ),
        (
            '[separation]\nno_self_approval = { allow_for = ["boardroom"] }',
            "separation.no_self_approval.allow_for: 'boardroom' is not a forum",
        ),
        (
            '[separation]\none_stage_per_person = "yes"',
            "separation.one_stage_per_person: Value error, give true, false",
        ),
        ("[separation]\nno_self_approval = { applies = true, except = [] }", "separation.no_self_approval.except"),
        ("[separation]\nseparate = true", "separation.separate: Extra inputs are not permitted"),
    ],
)
def test_policy_check_names_the_line_of_a_bad_separation_table(table: str, message: str) -> None:
    text = SHIPPED.replace(SHIPPED_TABLE, table + "\n")
    policy, problems = Policy.check_bytes(text.encode(), "my-policy.toml")
    line = text.splitlines().index(table.splitlines()[-1]) + 1
    assert any(p.startswith(f"my-policy.toml:{line}: {message}") for p in problems), problems


# --- replay, and what a case offers ----------------------------------------------------------------


def test_a_case_recorded_before_the_rule_replays_unchanged_and_the_rule_holds_for_new_commands() -> None:
    """Decided by one person at two stages under a policy without the rule: the events load as they
    were recorded, under the rule too; only a new command is checked."""
    off = service(with_separation("[separation]\none_stage_per_person = false\nno_self_approval = false"))
    ref = start(off, value_pence=30_000_000).reference
    jo = {"jcu": Actor(id="jo", role="lead_director"), "board": Actor(id="jo", role="secretary:board")}
    decide(off, ref, jo["jcu"], "jcu", "refer")
    recorded = decide(off, ref, jo["board"], "board", "recommend")
    on = Rules.from_policy(WITHOUT_COUNCIL_PROCEDURE)
    case = off.repository.get(case_id(ref))  # replayed from the stored events
    assert [d["by"] for d in off.state(ref).details["decisions"]] == ["lead_director:jo", "secretary:board:jo"]
    assert [d["actor_role"] for d in case.first_deciders] == ["lead_director", "secretary:board"]
    assert case.view(on).version == recorded.version and case.view(on).stage == recorded.stage
    with pytest.raises(SeparationOfDutiesError, match="jo started"):
        case.decide(
            on,
            actor=Actor(id="jo", role="secretary:programme_board"),
            command=Decide(stage="programme_board", outcome="recommend"),
            command_id=cid(),
            at=T0,
        )
    assert case.collect_events() == []


def test_the_case_names_the_people_the_rule_would_refuse(app: CaseService) -> None:
    ref = at_programme_board(app)
    action = next(a for a in app.state(ref).actions if a.name == "decide")
    assert action.stage == "programme_board" and action.roles == ["secretary:programme_board"]
    assert sorted(action.barred) == ["dan", "jo", "sam"]


# --- disputes and terminations ------------------------------------------------------------------

PAM = Actor.parse("party_rep:PCC:pam")
CY = Actor.parse("party_rep:CCC:cy")
GIL = Actor.parse("party_rep:CPCCG:gil")


def act(app: CaseService, ref: str, actor: Actor, action: str, **fields: object):
    return app.act(ref, actor=actor, action=action, fields=fields, command_id=cid())


def dispute(app: CaseService, against: tuple[str, ...] = ("CCC",)) -> str:
    for mediator in ("mediator:mo", "mediator:meg"):  # people of the directory who may be nominated
        ensure(app, mediator)
    fields = {"against": list(against), "subject": "Share of the speech therapy overspend"}
    return app.raise_dispute(actor=PAM, fields=fields, command_id=cid()).reference


def test_the_person_who_raised_a_dispute_does_not_resolve_it(app: CaseService) -> None:
    ref = dispute(app)
    pam_as_lead_director = Actor(id="pam", role="lead_director")
    refused_and_nothing_written(
        app, ref, lambda: act(app, ref, pam_as_lead_director, "resolve", outcome="resolved"), "pam raised DSP-2026-0001"
    )
    act(app, ref, DAN, "resolve", outcome="mediation")
    refused_and_nothing_written(
        app, ref, lambda: act(app, ref, pam_as_lead_director, "nominate", mediator="mo"), "nominate its mediator"
    )


@pytest.mark.parametrize(
    ("nominee", "part"),
    [("pam", "pam raised it (as party_rep:PCC)"), ("dan", "dan decided it at the director stage")],
)
def test_nobody_who_acted_in_a_dispute_may_be_its_mediator(app: CaseService, nominee: str, part: str) -> None:
    ref = dispute(app)
    act(app, ref, DAN, "resolve", outcome="mediation")
    refused_and_nothing_written(
        app, ref, lambda: act(app, ref, DAN, "nominate", mediator=nominee), part, "may not be its mediator"
    )
    assert act(app, ref, DAN, "nominate", mediator="mo").details["nominee"] == "mo"


def test_the_nominee_does_not_answer_for_a_party_and_one_person_answers_for_one_party(app: CaseService) -> None:
    ref = dispute(app, against=("CCC", "CPCCG"))
    act(app, ref, DAN, "resolve", outcome="mediation")
    act(app, ref, DAN, "nominate", mediator="mo")
    mo_for_ccc = Actor(id="mo", role="party_rep:CCC")
    refused_and_nothing_written(app, ref, lambda: act(app, ref, mo_for_ccc, "agree"), "mo answers for CCC")
    act(app, ref, CY, "agree")
    cy_for_the_ccg = Actor(id="cy", role="party_rep:CPCCG")
    refused_and_nothing_written(
        app, ref, lambda: act(app, ref, cy_for_the_ccg, "agree"), "cy already acted for CCC", "for CPCCG"
    )
    pam_for_the_ccg = Actor(id="pam", role="party_rep:CPCCG")  # raised it for PCC
    refused_and_nothing_written(app, ref, lambda: act(app, ref, pam_for_the_ccg, "refuse"), "pam already acted for PCC")
    act(app, ref, PAM, "agree")
    assert [a.name for a in act(app, ref, GIL, "agree").actions] == ["appoint", "object"]


def test_the_appointer_does_not_appoint_themselves(app: CaseService) -> None:
    ref = dispute(app)
    act(app, ref, DAN, "resolve", outcome="mediation")
    act(app, ref, DAN, "nominate", mediator="meg")
    act(app, ref, PAM, "agree")
    act(app, ref, CY, "agree")
    meg_as_lead_director = Actor(id="meg", role="lead_director")
    refused_and_nothing_written(
        app, ref, lambda: act(app, ref, meg_as_lead_director, "appoint", letter_ref="L1"), "meg appoints the mediator"
    )
    assert act(app, ref, DAN, "appoint", letter_ref="L1").details["mediator"] == "meg"


def agreement(app: CaseService, actor: Actor, **fields: object) -> str:
    values = {"effective": "2026-11-24", "agreement_ref": "MOU/AGREE/1", **fields}
    return app.propose_agreement(actor=actor, fields=values, command_id=cid()).reference


def test_one_person_signs_a_termination_agreement_for_one_party_only(app: CaseService) -> None:
    ref = agreement(app, CY)  # cy signs for CCC as they propose it
    cy_for_pcc = Actor(id="cy", role="party_rep:PCC")
    refused_and_nothing_written(app, ref, lambda: act(app, ref, cy_for_pcc, "agree"), "cy already acted for CCC")
    act(app, ref, PAM, "agree")
    pam_for_the_ccg = Actor(id="pam", role="party_rep:CPCCG")
    refused_and_nothing_written(app, ref, lambda: act(app, ref, pam_for_the_ccg, "agree"), "pam already acted for PCC")
    assert act(app, ref, GIL, "agree").status == "took_effect"


def test_disputes_and_notices_follow_the_rules_switches() -> None:
    app = service(with_separation("[separation]\none_stage_per_person = false\nno_self_approval = false"))
    ref = dispute(app)
    act(app, ref, Actor(id="pam", role="lead_director"), "resolve", outcome="mediation")
    ensure(app, "mediator:pam")  # no party's role: the mediator's independence of the parties is no switch
    assert act(app, ref, DAN, "nominate", mediator="pam").details["nominee"] == "pam"
    ref = agreement(app, CY)
    assert act(app, ref, Actor(id="cy", role="party_rep:PCC"), "agree").status == "open"
