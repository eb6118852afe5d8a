"""The case list: one row per case with its stage, deadline and status.

Read by `concordat list`. Overdue is not stored: it is "open and its deadline has passed", asked at
read time, so the view never goes stale while no event happens.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from domain.agreement import TerminationAgreement
from domain.cycles import CycleCase
from domain.dispute import Dispute
from domain.foi import FoiRequest
from domain.fund_opening import FundOpening
from domain.funding import FundingChange
from domain.proposal import Proposal
from domain.staged import StagedCase
from domain.termination import TerminationNotice
from domain.variation import Variation
from projections.tables import PostgresViewTables, SQLiteViewTables, ViewTables


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def iso(instant: datetime | None) -> str | None:
    """One text form for instants, so that they compare as text on every store."""
    if not instant:
        return None
    utc = instant.astimezone(UTC)
    if utc.year < 1000:  # strftime's %Y does not pad; keep its text for such years
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return utc.isoformat(timespec="seconds")[:19] + "Z"  # the same text as strftime, in a tenth of the time


class CaseListView(ViewTables):
    BULK_SAFE = True  # see ViewTables.BULK_SAFE
    TABLES = ("case_list",)
    DDL: ClassVar = (
        "CREATE TABLE IF NOT EXISTS {t_case_list} ("
        " reference TEXT PRIMARY KEY, case_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, title TEXT NOT NULL,"
        " case_kind TEXT NOT NULL, stage TEXT NOT NULL, escalated_to TEXT, deadline TEXT,"
        " status TEXT NOT NULL, parties TEXT NOT NULL, started_at TEXT NOT NULL,"
        " updated_at TEXT NOT NULL, version INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS case_list_open_deadline ON {t_case_list} (status, deadline)",
    )

    def list_cases(
        self,
        *,
        open_only: bool = False,
        overdue_at: datetime | None = None,
        kind: str | None = None,
        stage: str | None = None,
        party: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Cases in reference order. `kind` is a case kind (proposal, dispute, …) or a proposal's
        kind; `party` one of the parties a case concerns; `limit`/`offset` page the result."""
        clause, params = self._where(open_only, overdue_at, kind, stage, party)
        page = ""
        if limit is not None:
            page = " LIMIT :limit OFFSET :offset"
            params.update(limit=limit, offset=offset)
        return self.query(
            "SELECT reference, case_kind, kind, title, stage, escalated_to, deadline, status, parties,"
            f" started_at, updated_at, version FROM {{t_case_list}}{clause} ORDER BY reference{page}",
            params,
        )

    def count_cases(
        self,
        *,
        open_only: bool = False,
        overdue_at: datetime | None = None,
        kind: str | None = None,
        stage: str | None = None,
        party: str | None = None,
    ) -> int:
        clause, params = self._where(open_only, overdue_at, kind, stage, party)
        return int(self.query(f"SELECT COUNT(*) AS n FROM {{t_case_list}}{clause}", params)[0]["n"])

    @staticmethod
    def _where(
        open_only: bool, overdue_at: datetime | None, kind: str | None, stage: str | None, party: str | None
    ) -> tuple[str, dict[str, Any]]:
        where: list[str] = []
        params: dict[str, Any] = {}
        if open_only or overdue_at:
            where.append("status = 'open'")
        if overdue_at:
            where.append("deadline < :now")
            params["now"] = iso(overdue_at)
        if kind:
            where.append("(case_kind = :kind OR kind = :kind)")
            params["kind"] = kind
        if stage:
            # `stage` lists every stage a case awaits (parallel branches), comma-separated.
            where.append("((',' || stage || ',') LIKE :stage_in OR escalated_to = :stage)")
            params.update(stage=stage, stage_in=f"%,{stage},%")
        if party:
            where.append("(',' || parties || ',') LIKE :party")
            params["party"] = f"%,{party},%"
        return (f" WHERE {' AND '.join(where)}" if where else ""), params


INSERT_CASE = (
    "INSERT INTO {t_case_list} (reference, case_id, kind, title, case_kind, stage, escalated_to, deadline,"
    " status, parties, started_at, updated_at, version) VALUES (:reference, :case_id, :kind, :title,"
    " :case_kind, :stage, NULL, :deadline, :status, :parties, :started_at, :updated_at, :version)"
)


class CaseListProjection(Projection[CaseListView]):
    """Keeps `CaseListView` from the cases' events. Every event moves the tracking position, even
    one that changes no row (a reminder), so waiting for a position always ends."""

    name = "case_list"

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write([], tracking)

    @process_event.register
    def _(self, e: Proposal.Started, tracking: Tracking) -> None:
        self._insert(
            e,
            tracking,
            kind=e.kind,
            case_kind="proposal",
            title=e.title,
            stage=e.stage,
            deadline=e.deadline,
            status="open",
            parties=e.parties,
        )

    @process_event.register
    def _(self, e: Dispute.Raised, tracking: Tracking) -> None:
        self._insert(
            e,
            tracking,
            kind="dispute",
            case_kind="dispute",
            title=e.subject,
            stage="director",
            deadline=e.deadline,
            status="open",
            parties=e.parties,
        )

    @process_event.register
    def _(self, e: TerminationNotice.Served, tracking: Tracking) -> None:
        self._insert(
            e,
            tracking,
            kind="termination",
            case_kind="termination",
            title=f"{e.party} gives notice to leave the partnership",
            stage="notice",
            deadline=e.takes_effect_at,
            status="pending",
            parties=[e.party],
        )

    @process_event.register
    def _(self, e: Dispute.DirectorDecided, tracking: Tracking) -> None:
        # A dispute the director closes awaits no stage any more (`next_stage` is then empty).
        self._update(e, tracking, stage=e.next_stage, status=e.status, deadline=iso(e.deadline), escalated_to=None)

    @process_event.register
    def _(self, e: Dispute.MediatorAppointed, tracking: Tracking) -> None:
        self._update(e, tracking, stage="mediation", deadline=iso(e.deadline), escalated_to=None)

    @process_event.register
    def _(self, e: Dispute.FindingsRecorded, tracking: Tracking) -> None:
        self._update(e, tracking, stage="", status="findings_recorded", deadline=None, escalated_to=None)

    @process_event.register
    def _(self, e: Dispute.MediatorWithdrew, tracking: Tracking) -> None:
        self._update(e, tracking, stage="mediator_selection", deadline=iso(e.deadline), escalated_to=None)

    @process_event.register
    def _(self, e: Dispute.DeadlineExtended, tracking: Tracking) -> None:
        self._update(e, tracking, deadline=iso(e.deadline), escalated_to=None)

    @process_event.register
    def _(self, e: Dispute.Escalated, tracking: Tracking) -> None:
        self._update(e, tracking, escalated_to=e.to_forum)

    @process_event.register
    def _(self, e: TerminationNotice.Withdrawn, tracking: Tracking) -> None:
        self._update(e, tracking, status="withdrawn", deadline=None)

    @process_event.register
    def _(self, e: TerminationNotice.Matured, tracking: Tracking) -> None:
        self._update(e, tracking, status="matured", deadline=None)

    @process_event.register
    def _(self, e: TerminationNotice.MutuallyTerminated, tracking: Tracking) -> None:
        self._update(e, tracking, status="ended_by_consent", deadline=None)

    @process_event.register
    def _(self, e: TerminationAgreement.Proposed, tracking: Tracking) -> None:
        self._insert(
            e,
            tracking,
            kind="agreement",
            case_kind="agreement",
            title=f"{e.leaving} leaves the partnership by agreement"
            if e.leaving
            else "The partnership ends by agreement",
            stage="signatures",
            deadline=e.takes_effect_at,
            status="open",
            parties=e.parties,
        )

    @process_event.register
    def _(self, e: TerminationAgreement.Signed, tracking: Tracking) -> None:
        if e.in_force:
            self._update(e, tracking, status="in_force", stage="agreed")
        else:
            self._update(e, tracking, stage="signatures")

    @process_event.register
    def _(self, e: TerminationAgreement.Declined, tracking: Tracking) -> None:
        self._update(e, tracking, status="declined", stage="", deadline=None)

    @process_event.register
    def _(self, e: TerminationAgreement.Lapsed, tracking: Tracking) -> None:
        self._update(e, tracking, status="lapsed", stage="", deadline=None)

    @process_event.register
    def _(self, e: TerminationAgreement.TookEffect, tracking: Tracking) -> None:
        self._update(e, tracking, status="took_effect", stage="", deadline=None)

    @process_event.register
    def _(self, e: FoiRequest.Received, tracking: Tracking) -> None:
        # The due date moves with the clock's stops (domain/foi_clock.py): the case's own view has it.
        self._insert(
            e,
            tracking,
            kind="foi",
            case_kind="foi",
            title=f"FOI: {e.subject}",
            stage="open",
            deadline=None,
            status="open",
            parties=e.parties,
        )

    @process_event.register
    def _(self, e: CycleCase.Opened, tracking: Tracking) -> None:
        self._insert(
            e,
            tracking,
            kind=e.duty,
            case_kind="cycle",
            title=f"{e.duty.capitalize()}: {e.title}",
            stage=e.duty,
            deadline=e.deadline,
            status="open",
            parties=[],
        )

    @process_event.register
    def _(self, e: CycleCase.RecordedDone, tracking: Tracking) -> None:
        self._update(e, tracking, status="done", stage="", deadline=None)

    @process_event.register
    def _(self, e: FoiRequest.ResponseSent, tracking: Tracking) -> None:
        self._update(e, tracking, status="sent", stage="", deadline=None)

    @process_event.register
    def _(self, e: Variation.Started, tracking: Tracking) -> None:
        self._insert(
            e,
            tracking,
            kind="variation",
            case_kind="variation",
            title=e.title,
            stage=e.stage,
            deadline=e.deadline,
            status="open",
            parties=e.parties,
        )

    @process_event.register
    def _(self, e: FundingChange.Started, tracking: Tracking) -> None:
        self._insert(
            e,
            tracking,
            kind="funding",
            case_kind="funding",
            title=e.title,
            stage=e.stage,
            deadline=e.deadline,
            status="open",
            parties=list(e.changes),
        )

    @process_event.register
    def _(self, e: FundOpening.Started, tracking: Tracking) -> None:
        self._insert(
            e,
            tracking,
            kind="fund",
            case_kind="fund",
            title=e.title,
            stage=e.stage,
            deadline=e.deadline,
            status="open",
            parties=list(e.contributions),
        )

    @process_event.register
    def _(self, e: StagedCase.Decided, tracking: Tracking) -> None:
        self._update(
            e,
            tracking,
            stage=",".join(e.awaiting) or e.stage,
            status=e.status,
            deadline=iso(_instant(e.next_deadline)),
            escalated_to=None,
        )

    @process_event.register
    def _(self, e: StagedCase.DecisionTookEffect, tracking: Tracking) -> None:
        # A decision held for its call-in period takes effect (domain/staged.py).
        self._update(e, tracking, stage=",".join(e.awaiting), status=e.status, escalated_to=None)

    @process_event.register
    def _(self, e: StagedCase.ReferredBack, tracking: Tracking) -> None:
        self._update(e, tracking, deadline=iso(_instant(e.deadline)), escalated_to=None)

    @process_event.register
    def _(self, e: StagedCase.Withdrawn, tracking: Tracking) -> None:
        self._update(e, tracking, status="withdrawn", deadline=None, escalated_to=None)

    @process_event.register
    def _(self, e: StagedCase.Escalated, tracking: Tracking) -> None:
        if e.next_deadline:
            self._update(e, tracking, escalated_to=e.to_forum, deadline=iso(_instant(e.next_deadline)))
        else:
            self._update(e, tracking, escalated_to=e.to_forum)

    @process_event.register
    def _(self, e: Variation.TookEffect, tracking: Tracking) -> None:
        self._update(e, tracking, status="effective")

    @process_event.register
    def _(self, e: Proposal.Decided, tracking: Tracking) -> None:
        self._update(
            e, tracking, stage=e.next_stage or e.stage, status=e.status, deadline=iso(e.deadline), escalated_to=None
        )

    @process_event.register
    def _(self, e: Proposal.Escalated, tracking: Tracking) -> None:
        self._update(e, tracking, deadline=iso(e.deadline), escalated_to=e.to_forum)

    @process_event.register
    def _(self, e: Proposal.Withdrawn, tracking: Tracking) -> None:
        self._update(e, tracking, status="withdrawn", deadline=None, escalated_to=None)

    def _insert(
        self,
        e: Any,
        tracking: Tracking,
        *,
        kind: str,
        case_kind: str,
        title: str,
        stage: str,
        deadline: datetime | None,
        status: str,
        parties: list[str],
    ) -> None:
        row = {
            "reference": e.reference,
            "case_id": str(e.originator_id),
            "kind": kind,
            "title": title,
            "case_kind": case_kind,
            "stage": stage,
            "deadline": iso(deadline),
            "status": status,
            "parties": ",".join(parties),
            "started_at": iso(e.at),
            "updated_at": iso(e.at),
            "version": e.originator_version,
        }
        self.view.write([(INSERT_CASE, row)], tracking)

    def _update(self, e: Any, tracking: Tracking, **changes: Any) -> None:
        sets = ", ".join(f"{k} = :{k}" for k in changes)
        params = {**changes, "updated_at": iso(e.at), "version": e.originator_version, "id": str(e.originator_id)}
        self.view.write(
            [
                (
                    f"UPDATE {{t_case_list}} SET {sets}, updated_at = :updated_at, version = :version"
                    " WHERE case_id = :id",
                    params,
                )
            ],
            tracking,
        )


class SQLiteCaseListView(SQLiteViewTables, CaseListView):
    pass


class PostgresCaseListView(PostgresViewTables, CaseListView):
    pass
