"""The case list and the decisions register, kept by eventsourcing's projection runner on SQLite and
PostgreSQL: exactly once across restarts, and rebuildable from zero."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from tests.domain.support import remind
from tests.people import ensure

LEAD, DAN, SAM = Actor.parse("jcu_lead:jo"), Actor.parse("lead_director:dan"), Actor.parse("secretary:board:sam")
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def some_cases(app: CaseService) -> list[str]:
    refs = []
    for title in ("Speech therapy", "Autism pathway", "Continence service"):
        refs.append(
            app.start_proposal(
                actor=LEAD,
                command_id=str(uuid.uuid4()),
                title=title,
                kind="pathway_change",
                value_pence=30_000_000,
                parties=["PCC", "CPCCG"],
                public_health=False,
                at=T0,
            ).reference
        )
    app.decide(refs[0], actor=DAN, stage="jcu", outcome="refer", minutes_ref="JCU-1", command_id="a", at=T0)
    app.decide(
        refs[0],
        actor=SAM,
        stage="board",
        outcome="recommend",
        minutes_ref="B-1",
        command_id="b",
        at=T0 + timedelta(hours=1),
    )
    app.decide(
        refs[1],
        actor=DAN,
        stage="jcu",
        outcome="reject",
        note="out of scope",
        command_id="c",
        at=T0 + timedelta(hours=2),
    )
    remind(app, refs[2], command_id="r", at=None)
    return refs


def run_views(settings: Settings, app: CaseService) -> None:
    """Run the real runners until both views have processed the newest event, then stop them."""
    newest = app.max_notification_id()
    for runner in bootstrap.projection_runners(settings):
        with runner:
            runner.wait(newest, timeout=10)


def snapshot(settings: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return (bootstrap.open_case_list(settings).list_cases(), bootstrap.open_decisions(settings).list_decisions())


def test_the_views_show_every_case_and_every_decision_newest_first(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    refs = some_cases(app)
    run_views(settings, app)
    cases, decisions = snapshot(settings)
    assert [(c["reference"], c["stage"], c["status"]) for c in cases] == [
        (refs[0], "programme_board", "open"),
        (refs[1], "jcu", "rejected"),
        (refs[2], "jcu", "open"),
    ]
    assert [(d["reference"], d["outcome"], d["actor_role"]) for d in decisions] == [
        (refs[1], "reject", "lead_director"),
        (refs[0], "recommend", "secretary:board"),
        (refs[0], "refer", "lead_director"),
    ]
    assert decisions[0]["title"] == "Autism pathway"
    overdue = bootstrap.open_case_list(settings).list_cases(overdue_at=datetime(2027, 6, 1, tzinfo=UTC))
    assert [c["reference"] for c in overdue] == [refs[0], refs[2]]


def test_a_restarted_runner_neither_skips_nor_repeats_an_event(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    refs = some_cases(app)
    run_views(settings, app)
    app.decide(refs[2], actor=DAN, stage="jcu", outcome="refer", command_id="late", at=T0 + timedelta(days=1))
    run_views(settings, app)  # a new runner picks up from its tracking position
    cases, decisions = snapshot(settings)
    assert len(decisions) == 4
    assert len({(d["reference"], d["version"]) for d in decisions}) == 4
    assert next(c for c in cases if c["reference"] == refs[2])["stage"] == "board"


def test_the_views_rebuild_from_zero_to_the_same_rows(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    some_cases(app)
    run_views(settings, app)
    before = snapshot(settings)
    bootstrap.open_case_list(settings).clear()
    bootstrap.open_decisions(settings).clear()
    assert snapshot(settings) == ([], [])
    run_views(settings, app)
    assert snapshot(settings) == before


def test_disputes_and_notices_appear_in_the_list_and_the_register(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    pat, cy = Actor.parse("party_rep:PCC:pat"), Actor.parse("party_rep:CCC:cy")
    d = app.raise_dispute(actor=pat, fields={"against": ["CCC"], "subject": "Overspend share"}, command_id="d", at=T0)
    app.act(
        d.reference,
        actor=DAN,
        action="resolve",
        fields={"outcome": "mediation", "note": "independent view"},
        command_id="r",
        at=T0,
    )
    n = app.serve_notice(actor=cy, fields={"letter_ref": "CCC/1"}, command_id="n", at=T0)
    app.act(n.reference, actor=cy, action="withdraw", fields={}, command_id="w", at=T0)
    run_views(settings, app)
    cases, decisions = snapshot(settings)
    assert [(c["reference"], c["case_kind"], c["stage"], c["status"]) for c in cases] == [
        (d.reference, "dispute", "mediator_selection", "open"),
        (n.reference, "termination", "notice", "withdrawn"),
    ]
    assert [(x["reference"], x["forum"], x["outcome"], x["title"]) for x in decisions] == [
        (d.reference, "director", "mediation", "Overspend share"),
    ]


def test_agreements_appear_in_the_list_as_they_are_signed_declined_and_take_effect(settings: Settings) -> None:
    """On SQLite and PostgreSQL: an agreement's rows, and the partnership it changes saved with it."""
    app = bootstrap.open_cases(settings)
    pat, cy, gil = (Actor.parse(r) for r in ("party_rep:PCC:pat", "party_rep:CCC:cy", "party_rep:CPCCG:gil"))
    later = {"leaving": "CCC", "effective": "2027-03-31", "agreement_ref": "A/1"}
    declined = app.propose_agreement(actor=cy, fields=later, command_id="a1", at=T0).reference
    app.act(declined, actor=pat, action="refuse", fields={"note": "not now"}, command_id="a2", at=T0)
    today = {"leaving": "PCC", "effective": "2026-11-24", "agreement_ref": "A/2"}
    agreed = app.propose_agreement(actor=cy, fields=today, command_id="b1", at=T0).reference
    app.act(agreed, actor=pat, action="agree", fields={}, command_id="b2", at=T0)
    run_views(settings, app)
    assert [(c["reference"], c["case_kind"], c["stage"], c["status"]) for c in snapshot(settings)[0]] == [
        (declined, "agreement", "", "declined"),
        (agreed, "agreement", "signatures", "open"),
    ]
    app.act(agreed, actor=gil, action="agree", fields={}, command_id="b3", at=T0)
    run_views(settings, app)
    assert [(c["status"], c["parties"]) for c in snapshot(settings)[0]][1] == ("took_effect", "PCC,CCC,CPCCG")
    reopened = bootstrap.open_cases(settings)  # what was saved, not what is in memory
    assert reopened.partnership().members == ["CCC", "CPCCG"]
    assert reopened.membership().departure("PCC") is not None


def test_the_list_follows_a_mediator_who_withdraws_and_findings_that_close_the_mediation(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    for who in ("mediator:mo", "mediator:meg"):
        ensure(app, who)
    pat, cy = Actor.parse("party_rep:PCC:pat"), Actor.parse("party_rep:CCC:cy")
    steps = iter(range(1000))

    def act(ref: str, actor: Actor, action: str, **fields: Any) -> None:
        app.act(ref, actor=actor, action=action, fields=fields, command_id=f"s{next(steps)}", at=T0)

    def appointed(mediator: str) -> str:
        fields = {"against": ["CCC"], "subject": "Overspend share"}
        ref = app.raise_dispute(actor=pat, fields=fields, command_id=f"s{next(steps)}", at=T0).reference
        act(ref, DAN, "resolve", outcome="mediation")
        act(ref, DAN, "nominate", mediator=mediator)
        act(ref, pat, "agree")
        act(ref, cy, "agree")
        act(ref, DAN, "appoint", letter_ref="L1")
        return ref

    withdrawn, decided = appointed("mo"), appointed("meg")
    act(withdrawn, Actor.parse("mediator:mo"), "withdraw", note="conflict")
    act(decided, Actor.parse("mediator:meg"), "findings", findings="Split", cost_pence=10)
    run_views(settings, app)
    cases, _ = snapshot(settings)
    assert [(c["reference"], c["stage"], c["status"]) for c in cases] == [
        (withdrawn, "mediator_selection", "open"),
        (decided, "", "findings_recorded"),
    ]


def test_reviews_and_reports_appear_in_the_list_and_leave_it_done(settings: Settings) -> None:
    """On SQLite and PostgreSQL: a schedule's review case in the case list, with its deadline, then done."""
    app = bootstrap.open_cases(settings)
    review = app.open_scheduled(
        schedule="work_plan_review_ccc", scheduled_at=T0, figures=dict, command_id="schedule:w:1", at=T0
    )
    run_views(settings, app)
    (row,) = snapshot(settings)[0]
    assert (row["reference"], row["case_kind"], row["kind"], row["status"]) == (
        review.reference,
        "cycle",
        "review",
        "open",
    )
    assert row["deadline"] is not None
    cy = Actor.parse("party_rep:CCC:cy")
    app.act(review.reference, actor=cy, action="record_done", fields={"document_ref": "WP/1"}, command_id="d1", at=T0)
    run_views(settings, app)
    assert [(c["status"], c["stage"]) for c in snapshot(settings)[0]] == [("done", "")]
