"""The decisions register: every decision of every forum, newest first (`concordat decisions`)."""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from domain.dispute import Dispute
from domain.fund_opening import FundOpening
from domain.funding import FundingChange
from domain.proposal import Proposal
from domain.staged import StagedCase
from domain.variation import Variation
from projections.case_list import iso
from projections.tables import PostgresViewTables, SQLiteViewTables, ViewTables


class DecisionsView(ViewTables):
    BULK_SAFE = True  # see ViewTables.BULK_SAFE
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


INSERT_DECISION = (
    "INSERT INTO {t_decisions} (reference, version, title, stage, forum, outcome, stage_outcome, actor_id,"
    " actor_role, minutes_ref, note, decided_at, next_stage, status) SELECT reference, :version, title, :stage,"
    " :forum, :outcome, :stage_outcome, :actor_id, :actor_role, :minutes_ref, :note, :decided_at, :next_stage,"
    " :status FROM {t_decision_cases} WHERE case_id = :case_id"
)


class DecisionsProjection(Projection[DecisionsView]):
    name = "decisions"

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write([], tracking)

    @process_event.register
    def _(self, e: Proposal.Started, tracking: Tracking) -> None:
        # Decisions name their case by reference and title; the events after the first carry
        # neither, so the register keeps its own small index of them.
        self._index(e, e.title, tracking)

    @process_event.register
    def _(self, e: Variation.Started, tracking: Tracking) -> None:
        self._index(e, e.title, tracking)

    @process_event.register
    def _(self, e: FundingChange.Started, tracking: Tracking) -> None:
        self._index(e, e.title, tracking)

    @process_event.register
    def _(self, e: FundOpening.Started, tracking: Tracking) -> None:
        self._index(e, e.title, tracking)

    @process_event.register
    def _(self, e: StagedCase.Decided, tracking: Tracking) -> None:
        self._record(
            e,
            tracking,
            stage=e.stage,
            forum=e.forum,
            outcome=e.outcome,
            note=e.note,
            next_stage=",".join(e.awaiting),
            status=e.status,
            stage_outcome=e.stage_outcome,
            minutes_ref=e.minutes_ref,
        )

    @process_event.register
    def _(self, e: Dispute.Raised, tracking: Tracking) -> None:
        self._index(e, e.subject, tracking)

    @process_event.register
    def _(self, e: Dispute.DirectorDecided, tracking: Tracking) -> None:
        self._record(
            e,
            tracking,
            stage="director",
            forum="director",
            outcome=e.outcome,
            note=e.note,
            next_stage=e.next_stage,
            status=e.status,
        )

    @process_event.register
    def _(self, e: Dispute.FindingsRecorded, tracking: Tracking) -> None:
        self._record(
            e,
            tracking,
            stage="mediation",
            forum="mediation",
            outcome="findings",
            note=e.findings,
            next_stage="",
            status="findings_recorded",
        )

    def _index(self, e: Any, title: str, tracking: Tracking) -> None:
        self.view.write(
            [
                (
                    "INSERT INTO {t_decision_cases} (case_id, reference, title) VALUES (:case_id, :reference, :title)",
                    {"case_id": str(e.originator_id), "reference": e.reference, "title": title},
                )
            ],
            tracking,
        )

    def _record(
        self,
        e: Any,
        tracking: Tracking,
        *,
        stage: str,
        forum: str,
        outcome: str,
        note: str,
        next_stage: str,
        status: str,
        stage_outcome: str | None = None,
        minutes_ref: str = "",
    ) -> None:
        params = {
            "case_id": str(e.originator_id),
            "version": e.originator_version,
            "stage": stage,
            "forum": forum,
            "outcome": outcome,
            "stage_outcome": stage_outcome,
            "actor_id": e.actor_id,
            "actor_role": e.actor_role,
            "minutes_ref": minutes_ref,
            "note": note,
            "decided_at": iso(e.at),
            "next_stage": next_stage,
            "status": status,
        }
        self.view.write([(INSERT_DECISION, params)], tracking)

    @process_event.register
    def _(self, e: Proposal.Decided, tracking: Tracking) -> None:
        self._record(
            e,
            tracking,
            stage=e.stage,
            forum=e.forum,
            outcome=e.outcome,
            note=e.note,
            next_stage=e.next_stage,
            status=e.status,
            stage_outcome=e.stage_outcome,
            minutes_ref=e.minutes_ref,
        )


class SQLiteDecisionsView(SQLiteViewTables, DecisionsView):
    pass


class PostgresDecisionsView(PostgresViewTables, DecisionsView):
    pass
