"""The decisions register: every decision of every forum, newest first (`concordat decisions`)."""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from domain.proposal import Proposal
from projections.case_list import iso
from projections.tables import PostgresViewTables, SQLiteViewTables, ViewTables


class DecisionsView(ViewTables):
    TABLES = ("decisions", "decision_cases")
    DDL: ClassVar = (
        "CREATE TABLE IF NOT EXISTS {t_decision_cases} ("
        " case_id TEXT PRIMARY KEY, reference TEXT NOT NULL, title TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {t_decisions} ("
        " reference TEXT NOT NULL, version INTEGER NOT NULL, title TEXT NOT NULL,"
        " stage TEXT NOT NULL, forum TEXT NOT NULL, outcome TEXT NOT NULL, stage_outcome TEXT,"
        " actor_id TEXT NOT NULL, actor_role TEXT NOT NULL, minutes_ref TEXT NOT NULL,"
        " note TEXT NOT NULL, decided_at TEXT NOT NULL, next_stage TEXT NOT NULL,"
        " status TEXT NOT NULL, PRIMARY KEY (reference, version))",
        "CREATE INDEX IF NOT EXISTS decisions_newest ON {t_decisions} (decided_at)",
    )

    def list_decisions(self, *, reference: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        clause = " WHERE reference = :reference" if reference else ""
        return self.query(
            "SELECT reference, version, title, stage, forum, outcome, stage_outcome, actor_id,"
            " actor_role, minutes_ref, note, decided_at, next_stage, status FROM {t_decisions}"
            f"{clause} ORDER BY decided_at DESC, reference DESC, version DESC LIMIT :limit",
            {"reference": reference, "limit": limit},
        )


class DecisionsProjection(Projection[DecisionsView]):
    name = "decisions"

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write([], tracking)

    @process_event.register
    def _(self, e: Proposal.Started, tracking: Tracking) -> None:
        # Decisions name their case by reference and title; the events after Started carry
        # neither, so the register keeps its own small index of them.
        self.view.write(
            [(
                "INSERT INTO {t_decision_cases} (case_id, reference, title)"
                " VALUES (:case_id, :reference, :title)",
                {"case_id": str(e.originator_id), "reference": e.reference, "title": e.title},
            )],
            tracking,
        )

    @process_event.register
    def _(self, e: Proposal.Decided, tracking: Tracking) -> None:
        params = {
            "case_id": str(e.originator_id),
            "version": e.originator_version,
            "stage": e.stage,
            "forum": e.forum,
            "outcome": e.outcome,
            "stage_outcome": e.stage_outcome,
            "actor_id": e.actor_id,
            "actor_role": e.actor_role,
            "minutes_ref": e.minutes_ref,
            "note": e.note,
            "decided_at": iso(e.at),
            "next_stage": e.next_stage,
            "status": e.status,
        }
        self.view.write(
            [(
                "INSERT INTO {t_decisions} (reference, version, title, stage, forum, outcome,"
                " stage_outcome, actor_id, actor_role, minutes_ref, note, decided_at, next_stage,"
                " status) SELECT reference, :version, title, :stage, :forum, :outcome,"
                " :stage_outcome, :actor_id, :actor_role, :minutes_ref, :note, :decided_at,"
                " :next_stage, :status FROM {t_decision_cases} WHERE case_id = :case_id",
                params,
            )],
            tracking,
        )


class SQLiteDecisionsView(SQLiteViewTables, DecisionsView):
    pass


class PostgresDecisionsView(PostgresViewTables, DecisionsView):
    pass
