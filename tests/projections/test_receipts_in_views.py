"""A command's receipt (`CaseCommandReceipt`, saved with every command on a case) is no case and no
step of a case's history: the views never show it, and pass it over without decoding it (it is as many
rows as the cases' own events), in the running projections and in a rebuild from zero. On SQLite and
PostgreSQL."""

from __future__ import annotations

import uuid

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from concordat import bootstrap
from concordat.replay import replay
from concordat.settings import Settings
from domain.actor import Actor
from domain.references import CaseCommandReceipt
from projections.quarantine import PASSED_OVER
from tests.projections.test_quarantine import a_proposal, run_views

DAN = Actor.parse("lead_director:dan")
RECEIPT = get_topic(CaseCommandReceipt.Received)


def test_the_topic_passed_over_is_the_receipts_own() -> None:
    assert PASSED_OVER == {RECEIPT}  # a renamed class would make the views decode receipts again


def test_receipts_show_as_no_case_and_are_passed_over_undecoded(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    ref = a_proposal(app, "Speech therapy")
    app.decide(ref, actor=DAN, stage="jcu", outcome="refer", minutes_ref="JCU-1", command_id="refer-1")
    stored = app.recorder.select_notifications(start=1, limit=1000)
    assert sum(n.topic == RECEIPT for n in stored) == 1  # the decision's receipt (a start has its own kind)
    # A receipt no decoder could read: a view that decoded receipts would quarantine it.
    app.recorder.insert_events(
        [StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic=RECEIPT, state=b"\xff not json")]
    )

    for _ in range(2):  # the running views, then a rebuild of every view from zero
        run_views(settings, app)
        assert {k: v for k, v in bootstrap.quarantined(settings).items() if v} == {}
        rows = bootstrap.open_case_list(settings).list_cases()
        assert [(r["reference"], r["stage"]) for r in rows] == [(ref, "board")]
        decisions = bootstrap.open_decisions(settings).list_decisions(reference=ref)
        assert [(d["stage"], d["outcome"]) for d in decisions] == [("jcu", "refer")]
        assert [e.event for e in app.history(ref, actor=DAN)] == ["Started", "Decided"]
        replay(settings)
