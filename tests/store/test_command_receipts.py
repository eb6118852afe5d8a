"""Every command on a case keeps its idempotency in a receipt of its own (`CaseCommandReceipt`,
saved with the case's events), not in the case's aggregate, on SQLite and PostgreSQL: a repeat is
answered as the first time and stores nothing, duplicates at the same moment store once, and a case
recorded before receipts (its commands in the aggregate's own ledger, a snapshot of that shape)
still loads and still answers its old command ids once."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.audit import Auditor
from domain.case import CaseView, case_id
from domain.errors import IdempotencyKeyReusedError
from domain.idempotency import scoped_command_id
from domain.references import CaseCommandReceipt

JO = Actor.parse("jcu_lead:jo")
DAN = Actor.parse("lead_director:dan")
PB = Actor.parse("secretary:programme_board:pat")
AUDREY = Actor.parse("auditor:audrey")
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
OLD = json.loads((Path(__file__).parent / "fixtures" / "case_before_receipts.json").read_text())


def start(app: CaseService) -> str:
    return app.start_proposal(
        actor=JO,
        command_id="start-1",
        title="Short breaks for disabled children",
        kind="procurement",
        value_pence=100_000,
        parties=["PCC"],
        public_health=False,
        at=T0,
    ).reference


def case_events(app: CaseService, reference: str) -> list[Any]:
    return list(app.recorder.select_events(case_id(reference)))


def test_a_command_is_kept_by_its_receipt_and_not_in_the_case(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    ref = start(app)
    first = app.decide(ref, actor=DAN, stage="jcu", outcome="approve", minutes_ref="J/1", command_id="d-1", at=T0)
    written = app.max_notification_id()

    receipt: CaseCommandReceipt = app.repository.get(CaseCommandReceipt.create_id(ref, "d-1"))
    assert (receipt.reference, receipt.command_id, receipt.version) == (ref, "d-1", first.version)
    assert app.repository.get(case_id(ref)).command_versions == {"start-1": 1}  # the start's alone

    again = bootstrap.open_cases(settings)  # another process: nothing cached
    assert again.decide(ref, actor=DAN, stage="jcu", outcome="approve", command_id="d-1", at=T0) == first
    assert app.result_of(ref, "d-1") == first
    assert app.replay(ref, "d-1", user_id="dan") == (first.version, "lead_director")
    assert app.max_notification_id() == written  # nothing stored by the repeat


def test_the_same_command_id_on_another_case_is_another_command(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    one, two = (
        start(app),
        app.start_proposal(
            actor=JO,
            command_id="start-2",
            title="Another",
            kind="procurement",
            value_pence=100_000,
            parties=["PCC"],
            public_health=False,
            at=T0,
        ).reference,
    )
    app.decide(one, actor=DAN, stage="jcu", outcome="approve", command_id="same", at=T0)
    done = app.decide(two, actor=DAN, stage="jcu", outcome="approve", command_id="same", at=T0)
    assert done.status == "approved" and len(case_events(app, two)) == 2


def test_a_scoped_key_reused_with_other_fields_on_a_case_is_refused_from_its_receipt(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    ref = start(app)
    cid = scoped_command_id("dan", f"{ref}:decide", "k", {"stage": "jcu", "outcome": "approve"})
    app.decide(ref, actor=DAN, stage="jcu", outcome="approve", command_id=cid, at=T0)
    written = app.max_notification_id()
    other = scoped_command_id("dan", f"{ref}:decide", "k", {"stage": "jcu", "outcome": "reject"})
    with pytest.raises(IdempotencyKeyReusedError):
        app.decide(ref, actor=DAN, stage="jcu", outcome="reject", command_id=other, at=T0)
    with pytest.raises(IdempotencyKeyReusedError):
        app.replay(ref, other, user_id="dan")
    assert app.max_notification_id() == written


def test_duplicates_at_the_same_moment_store_one_decision_and_answer_alike(settings: Settings) -> None:
    ref = start(bootstrap.open_cases(settings))
    writers = [bootstrap.open_cases(settings) for _ in range(4)]
    together = threading.Barrier(len(writers))

    def decide(app: CaseService) -> CaseView:
        together.wait()
        return app.decide(ref, actor=DAN, stage="jcu", outcome="approve", command_id="twice", at=T0)

    with ThreadPoolExecutor(len(writers)) as pool:
        answers = list(pool.map(decide, writers))
    app = bootstrap.open_cases(settings)
    assert [e.topic.rsplit(".", 1)[-1] for e in case_events(app, ref)] == ["Started", "Decided"]
    assert all(a == answers[0] for a in answers) and answers[0].version == 2


def load_old_case(app: CaseService) -> str:
    """The fixture's events and snapshot, stored as the release before receipts stored them."""

    def stored(rows: list[dict[str, Any]]) -> list[StoredEvent]:
        return [
            StoredEvent(
                originator_id=UUID(r["originator_id"]),
                originator_version=r["originator_version"],
                topic=r["topic"],
                state=r["state"].encode("utf-8"),
            )
            for r in rows
        ]

    app.recorder.insert_events(stored(OLD["events"]))
    assert app.snapshots is not None
    app.snapshots.recorder.insert_events(stored(OLD["snapshots"]))
    return str(OLD["reference"])


def test_a_case_stored_before_receipts_loads_from_its_old_snapshot_and_answers_its_old_commands_once(
    settings: Settings,
) -> None:
    app = bootstrap.open_cases(settings)
    ref = load_old_case(app)
    snapshot = json.loads(OLD["snapshots"][0]["state"])["state"]
    assert "escalate-old" in snapshot["command_versions"]  # the old shape: the ledger in the snapshot
    case = app.repository.get(case_id(ref))
    assert case.version == 4 and set(case.command_versions) == {
        "start-old",
        "escalate-old",
        OLD["scoped_command_id"],
        "escalate-old-2",
    }
    written = app.max_notification_id()

    # Repeats of commands recorded before receipts: the same answer, nothing stored.
    at_three = app.state(ref, version=3, history=False)  # a command's answer carries no decision history
    pb = dict(actor=PB, stage="jcu", outcome="extend", minutes_ref="CYPMPB/7", at=T0)
    assert app.decide(ref, **pb, command_id=OLD["scoped_command_id"]) == at_three  # type: ignore[arg-type]
    assert app.fire_timer(ref, timer="escalate:3", command_id="escalate-old-2", at=T0) == app.state(ref, history=False)
    assert app.replay(ref, OLD["scoped_command_id"], user_id="pat") == (3, "secretary:programme_board")
    assert app.result_of(ref, "escalate-old") == app.state(ref, version=2, history=False)
    reused = scoped_command_id("pat", f"{ref}:decide", "extend-1", {"stage": "jcu", "outcome": "decide"})
    with pytest.raises(IdempotencyKeyReusedError):
        app.decide(ref, **pb, command_id=reused)  # type: ignore[arg-type]
    assert app.max_notification_id() == written

    # A new command on the old case: kept by its receipt, the old ledger does not grow.
    deadline = app.state(ref).deadline
    assert deadline is not None
    extended = app.decide(
        ref,
        **{**pb, "at": deadline + timedelta(minutes=1)},  # type: ignore[arg-type]
        command_id="extend-new",
        new_deadline=(deadline + timedelta(days=14)).date(),
    )
    again = bootstrap.open_cases(settings)
    assert set(again.repository.get(case_id(ref)).command_versions) == set(case.command_versions)
    assert again.decide(ref, **pb, command_id="extend-new") == extended  # type: ignore[arg-type]
    assert Auditor(again).verify(ref)[1] == []
