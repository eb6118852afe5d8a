"""A rebuild in bulk (`projections.bulk`, used by `concordat audit replay`) makes the same views as the
runner's event-by-event way, row for row, from a store with every kind of case, events of earlier
class versions (upcast) and events no view projects; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from threading import Event
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Notification, StoredEvent

from concordat import bootstrap
from concordat.replay import replay
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from projections.bulk import Fields, catch_up
from projections.quarantine import Guard
from projections.tables import plan
from tests.domain.support import approve_through, escalate, open_agreed_fund, remind
from tests.people import ensure

FIXTURES = Path(__file__).parents[1] / "audit" / "fixtures"
T0 = datetime(2027, 6, 1, 10, 0, tzinfo=UTC)  # after the 2026 fixtures: references of another year
LEAD, DAN, SAM = Actor.parse("jcu_lead:jo"), Actor.parse("lead_director:dan"), Actor.parse("secretary:board:sam")
PAT, CY, GIL = (Actor.parse(r) for r in ("party_rep:PCC:pat", "party_rep:CCC:cy", "party_rep:CPCCG:gil"))


def old_events(app: CaseService) -> None:
    """Cases and a fund recorded by earlier releases, as they were stored (class version 1)."""
    for name in ("release_2026_11_cases.json", "fund_opened_v1.json"):
        events = json.loads((FIXTURES / name).read_text())["events"]
        app.recorder.insert_events(
            [
                StoredEvent(
                    originator_id=UUID(e["originator_id"]),
                    originator_version=e["originator_version"],
                    topic=e["topic"],
                    state=e["state"].encode("utf-8"),
                )
                for e in events
            ]
        )


def every_kind(app: CaseService) -> None:
    """Today's events of every kind of case the views show, through the real application."""
    steps = iter(range(10_000))

    def cid() -> str:
        return f"c{next(steps)}-{uuid.uuid4().hex[:6]}"

    def act(ref: str, actor: Actor, action: str, **fields: Any) -> None:
        app.act(ref, actor=actor, action=action, fields=fields, command_id=cid(), at=T0)

    def proposal(title: str) -> str:
        fields = {"title": title, "kind": "pathway_change", "value_pence": 30_000_000, "parties": ["PCC", "CPCCG"]}
        return app.start_proposal(actor=LEAD, command_id=cid(), public_health=False, at=T0, **fields).reference

    refs = [proposal(t) for t in ("Speech therapy", "Autism pathway", "Continence service", "Wheelchairs")]
    app.decide(refs[0], actor=DAN, stage="jcu", outcome="refer", minutes_ref="JCU-1", command_id=cid(), at=T0)
    app.decide(refs[0], actor=SAM, stage="board", outcome="recommend", minutes_ref="B-1", command_id=cid(), at=T0)
    app.decide(refs[1], actor=DAN, stage="jcu", outcome="reject", note="out of scope", command_id=cid(), at=T0)
    remind(app, refs[2], command_id=cid(), at=None)
    escalate(app, refs[2], command_id=cid())
    app.withdraw(refs[3], actor=LEAD, command_id=cid())

    for who in ("mediator:mo", "mediator:meg"):
        ensure(app, who)
    disputes = []
    for mediator in ("mo", "meg"):
        fields = {"against": ["CCC"], "subject": f"Overspend share ({mediator})"}
        ref = app.raise_dispute(actor=PAT, fields=fields, command_id=cid(), at=T0).reference
        act(ref, DAN, "resolve", outcome="mediation", note="independent view")
        act(ref, DAN, "nominate", mediator=mediator)
        act(ref, PAT, "agree")
        act(ref, CY, "agree")
        act(ref, DAN, "appoint", letter_ref="L1")
        disputes.append(ref)
    act(disputes[0], Actor.parse("mediator:mo"), "withdraw", note="conflict")
    act(disputes[1], Actor.parse("mediator:meg"), "findings", findings="Split", cost_pence=10)

    notice = app.serve_notice(actor=CY, fields={"letter_ref": "CCC/1"}, command_id=cid(), at=T0).reference
    act(notice, CY, "withdraw")
    later = {"leaving": "CCC", "effective": "2028-03-31", "agreement_ref": "A/1"}
    declined = app.propose_agreement(actor=CY, fields=later, command_id=cid(), at=T0).reference
    act(declined, PAT, "refuse", note="not now")
    signing = {"leaving": "CCC", "effective": "2028-03-31", "agreement_ref": "A/2"}
    signed = app.propose_agreement(actor=CY, fields=signing, command_id=cid(), at=T0).reference
    act(signed, PAT, "agree")

    review = app.open_scheduled(
        schedule="work_plan_review_ccc", scheduled_at=T0, figures=dict, command_id="schedule:w:1", at=T0
    )
    act(review.reference, CY, "record_done", document_ref="WP/1")
    foi = {"subject": "Therapy waiting times", "requester_ref": "PCC-FOI-9", "received_on": T0.date().isoformat()}
    app.receive_foi(actor=PAT, fields=foi, command_id=cid(), at=T0)

    variation = {
        "provider": "Hinchingbrooke",
        "contract_ref": "C-1",
        "reason": "contract_performance_notice",
        "value_change_pence": -100,
        "parties": ["PCC"],
        "effective_on": (T0 + timedelta(days=90)).date().isoformat(),
    }
    varied = app.start_variation(actor=LEAD, fields=variation, command_id=cid(), at=T0).reference
    approve_through(app, varied, at=T0, stop_at="board")

    contributions = {"PCC": 300_000, "CCC": 200_000}
    open_agreed_fund(app, "PH pooled", ring_fenced=True, contributions=contributions, at=T0)
    open_agreed_fund(app, "Aligned", contributions={"PCC": 999_999}, at=T0)
    for fund, changes in (("PH pooled", {"PCC": 100_000, "CCC": -50_000}), ("Aligned", {"CCC": 5})):
        change = app.start_funding_change(
            actor=LEAD, fields={"fund": fund, "changes": changes}, command_id=cid(), at=T0
        )
        approve_through(app, change.reference, at=T0)


def rows(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of every view, and each view's position, in a stable order."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    for name in bootstrap.VIEW_NAMES:
        view = bootstrap.open_view(settings, name)
        for table in view.TABLES:
            found[f"{name}.{table}"] = sorted(
                (tuple(sorted(r.items())) for r in view.query(f"SELECT * FROM {{t_{table}}}")),  # noqa: S608 - ours
                key=repr,
            )
        found[f"{name}.quarantine"] = [(r["notification_id"], r["error"]) for r in view.quarantined(CaseService.name)]
        found[f"{name}.position"] = [(view.max_tracking_id(CaseService.name),)]
    return found


def event_by_event(settings: Settings, app: CaseService) -> None:
    """The runner's way with each new event: decode it whole, project it, commit it with its position."""
    for projection_class in bootstrap.PROJECTIONS:
        guard = Guard(projection_class(view=bootstrap.open_view(settings, projection_class.name)), app.mapper, app.name)
        for notification in app.recorder.select_notifications(start=1, limit=100_000):
            guard.project(notification)


def clear_views(settings: Settings) -> None:
    for name in bootstrap.VIEW_NAMES:
        bootstrap.open_view(settings, name).clear()


def test_a_rebuild_in_bulk_makes_every_row_the_event_by_event_way_makes(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    old_events(app)
    every_kind(app)
    newest = app.max_notification_id()
    event_by_event(settings, app)
    slow = rows(settings)
    assert slow["case_list.case_list"] and slow["decisions.decisions"] and slow["public_health.ph_contributions"]
    assert slow["case_list.position"] == [(newest,)]

    summary = replay(settings)

    assert summary.events == newest
    # The bulk path took every section: none was redone event by event (which would make the
    # comparison below one of the slow path with itself), and it took each of its three ways.
    assert summary.event_by_event_sections == 0
    assert summary.skipped and summary.fields and summary.decoded
    fast = rows(settings)
    assert fast.keys() == slow.keys()
    for table, expected in slow.items():
        assert fast[table] == expected, table


def test_a_runner_catching_up_in_sections_makes_the_same_rows(settings: Settings) -> None:
    """`catch_up` in sections of 7 (so a case's events fall in several), then the real runners,
    which catch up from zero themselves and then follow the log event by event."""
    app = bootstrap.open_cases(settings)
    old_events(app)
    every_kind(app)
    event_by_event(settings, app)
    slow = rows(settings)
    clear_views(settings)
    for projection_class in bootstrap.PROJECTIONS:
        guard = Guard(projection_class(view=bootstrap.open_view(settings, projection_class.name)), app.mapper, app.name)
        assert catch_up(guard, app.recorder, Event(), section=7) == app.max_notification_id()
    assert rows(settings) == slow

    clear_views(settings)
    newest = app.max_notification_id()
    for runner in bootstrap.projection_runners(settings):
        with runner:
            runner.wait(newest, timeout=20)
    assert rows(settings) == slow


def test_the_plan_keeps_each_aggregates_statements_in_order_and_groups_the_rest() -> None:
    held = [
        ("a", ("INSERT x", {"n": 1})),
        ("b", ("INSERT x", {"n": 2})),
        ("a", ("UPDATE s", {"n": 3})),
        ("a", ("UPDATE t", {"n": 4})),
        ("b", ("UPDATE t", {"n": 5})),
        ("c", ("UPDATE s", {"n": 6})),
    ]
    assert plan(held) == [
        ("INSERT x", [{"n": 1}, {"n": 2}]),
        ("UPDATE s", [{"n": 6}]),
        ("UPDATE s", [{"n": 3}]),
        ("UPDATE t", [{"n": 5}]),
        ("UPDATE t", [{"n": 4}]),
    ]


def test_fields_read_as_the_mapper_would_decode_them() -> None:
    """Transcoded values at any depth, a class default for a field stored before it was added, and no
    property (not a recorded field: the section then goes the slow way)."""

    class Event:
        note: str = "none"

        @property
        def shown(self) -> str:
            return "computed"

    at = datetime(2027, 6, 1, 10, 0, tzinfo=UTC)
    state = json.loads(
        json.dumps(
            {
                "at": {"_type_": "datetime_iso", "_data_": at.isoformat()},
                "opened": [{"deadline": {"_type_": "datetime_iso", "_data_": at.isoformat()}, "stage": "board"}],
                "title": "t",
            }
        )
    )
    notification = Notification(id=1, originator_id=uuid.uuid4(), originator_version=3, topic="t", state=b"")
    transcoder = JSONTranscoder()
    transcoder.register(DatetimeAsISO())
    fields = Fields(state, notification, transcoder.names, Event)
    assert (fields.at, fields.opened, fields.title, fields.originator_version) == (
        at,
        [{"deadline": at, "stage": "board"}],
        "t",
        3,
    )
    assert fields.note == "none"
    with pytest.raises(AttributeError):
        _ = fields.shown
    with pytest.raises(AttributeError):
        _ = fields.missing
