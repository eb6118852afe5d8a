"""Tamper evidence: each case's events form a hash chain; tampering with the stored rows directly (in
SQLite and in PostgreSQL) is detected and named; an untouched store verifies clean."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import pytest

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.audit import Auditor, Head
from domain.case import case_id
from tests.domain.support import escalate

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
LEAD, DAN = Actor.parse("jcu_lead:jo"), Actor.parse("lead_director:dan")
SAM, PAT = Actor.parse("secretary:board:sam"), Actor.parse("secretary:programme_board:pat")


def a_case_with_history(app: CaseService) -> str:
    """A proposal with five events: started, referred, escalated, extended, recommended."""
    ref = app.start_proposal(
        actor=LEAD,
        command_id="s",
        title="Community paediatrics pathway",
        kind="pathway_change",
        value_pence=40_000_000,
        parties=["PCC", "CPCCG"],
        public_health=False,
        at=T0,
    ).reference
    b = app.decide(ref, actor=DAN, stage="jcu", outcome="refer", command_id="d1", at=T0)
    escalate(app, ref, command_id="e1", at=b.deadline)
    app.decide(
        ref,
        actor=PAT,
        stage="programme_board",
        outcome="extend",
        minutes_ref="MIN-2026-01",
        command_id="x1",
        at=b.deadline,
    )
    app.decide(
        ref, actor=SAM, stage="board", outcome="recommend", minutes_ref="MIN-2026-01", command_id="r1", at=b.deadline
    )
    return ref


class Rows:
    """Direct access to the stored rows, as someone with database access would have."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pg = settings.uses_postgres

    def run(self, sql: str, *params: object) -> list[tuple]:
        if self.pg:
            with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
                cur = conn.execute(sql.replace("stored_events", "cases_events").replace("?", "%s"), params)
                return cur.fetchall() if cur.description else []
        con = sqlite3.connect(self.settings.data_dir / "events.sqlite")
        try:
            cur = con.execute(sql, params)
            rows = cur.fetchall()
            con.commit()
            return rows
        finally:
            con.close()

    def id_param(self, ref: str) -> object:
        return case_id(ref) if self.pg else case_id(ref).hex


@pytest.fixture
def store(settings: Settings) -> tuple[CaseService, Rows, str]:
    app = bootstrap.open_cases(settings)
    return app, Rows(settings), a_case_with_history(app)


def breaks(app: CaseService, ref: str | None = None) -> list[tuple[int, str]]:
    return [(b.version, b.kind) for b in Auditor(app).verify(ref)[1]]


def test_an_untouched_store_verifies_clean(store: tuple[CaseService, Rows, str]) -> None:
    app, _, ref = store
    checked, found = Auditor(app).verify()
    assert found == [] and checked >= 3  # the case, its reference sequence and its receipt
    assert breaks(app, ref) == []


def test_an_edited_byte_is_detected_and_named(store: tuple[CaseService, Rows, str]) -> None:
    app, rows, ref = store
    state = rows.run(
        "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = 2", rows.id_param(ref)
    )[0][0]
    forged = bytes(state).replace(b"lead_director", b"lead_directos", 1)
    rows.run(
        "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 2",
        forged,
        rows.id_param(ref),
    )
    assert breaks(app, ref) == [(2, "edited")]


def test_an_edit_that_breaks_the_encoding_is_named_too(store: tuple[CaseService, Rows, str]) -> None:
    app, rows, ref = store
    rows.run(
        "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 3",
        b"{\xff",
        rows.id_param(ref),
    )
    assert (3, "edited") in breaks(app, ref)


def test_a_deleted_event_is_detected_and_named(store: tuple[CaseService, Rows, str]) -> None:
    app, rows, ref = store
    rows.run("DELETE FROM stored_events WHERE originator_id = ? AND originator_version = 3", rows.id_param(ref))
    assert breaks(app, ref) == [(3, "deleted")]


def test_two_swapped_versions_are_detected_as_out_of_order(store: tuple[CaseService, Rows, str]) -> None:
    app, rows, ref = store
    oid = rows.id_param(ref)
    rows.run("UPDATE stored_events SET originator_version = 99 WHERE originator_id = ? AND originator_version = 2", oid)
    rows.run("UPDATE stored_events SET originator_version = 2 WHERE originator_id = ? AND originator_version = 3", oid)
    rows.run("UPDATE stored_events SET originator_version = 3 WHERE originator_id = ? AND originator_version = 99", oid)
    assert breaks(app, ref) == [(2, "out_of_order")]


def test_an_event_inserted_between_two_others_is_detected_and_named(store: tuple[CaseService, Rows, str]) -> None:
    app, rows, ref = store
    oid = rows.id_param(ref)
    for v in (5, 4, 3):  # make room after v2, newest first
        rows.run(
            "UPDATE stored_events SET originator_version = ? WHERE originator_id = ? AND originator_version = ?",
            v + 1,
            oid,
            v,
        )
    # A copy of v2's row (it links to v1 correctly) slipped in as v3.
    topic, state = rows.run(
        "SELECT topic, state FROM stored_events WHERE originator_id = ? AND originator_version = 2", oid
    )[0]
    rows.run(
        "INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES (?, 3, ?, ?)",
        oid,
        topic,
        bytes(state),
    )
    assert (3, "inserted") in breaks(app, ref)


def test_truncating_the_newest_events_needs_a_head_kept_elsewhere(store: tuple[CaseService, Rows, str]) -> None:
    app, rows, ref = store
    heads = [h for h in Auditor(app).heads() if h.reference == ref]
    assert [h.version for h in heads] == [5]
    rows.run("DELETE FROM stored_events WHERE originator_id = ? AND originator_version = 5", rows.id_param(ref))
    assert breaks(app, ref) == []  # the chain alone cannot see it ...
    found = Auditor(app).verify(ref, heads=heads)[1]
    assert [(b.version, b.kind) for b in found] == [(5, "truncated")]  # ... the kept head can


def test_a_head_that_no_longer_matches_is_named(store: tuple[CaseService, Rows, str]) -> None:
    app, _, ref = store
    head = next(h for h in Auditor(app).heads() if h.reference == ref)
    forged = Head(head.reference, head.originator_id, head.version, "0" * 64)
    assert [(b.version, b.kind) for b in Auditor(app).verify(ref, heads=[forged])[1]] == [(5, "edited")]


@pytest.mark.parametrize("tamper", ["edit", "delete"])
def test_the_whole_store_verification_finds_the_broken_case(store: tuple[CaseService, Rows, str], tamper: str) -> None:
    app, rows, ref = store
    other = app.start_proposal(
        actor=LEAD,
        command_id="s2",
        title="Other",
        kind="procurement",
        value_pence=1,
        parties=["PCC"],
        public_health=False,
        at=T0,
    ).reference
    do: Callable[[], object] = (
        (
            lambda: rows.run(
                "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = 2", rows.id_param(ref)
            )
        )
        if tamper == "delete"
        else (
            lambda: rows.run(
                "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 2",
                b"x",
                rows.id_param(ref),
            )
        )
    )
    do()
    found = Auditor(app).verify()[1]
    assert {b.reference for b in found} == {ref}
    assert other not in {b.reference for b in found}
