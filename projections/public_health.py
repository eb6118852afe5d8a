"""Ring-fenced public-health contributions, per party and per UK financial quarter.

Cabinet report 4.5.1: ring-fenced public-health contributions are identified separately so that they
can be reported quarterly. Every approved funding change involving ring-fenced money adds each
party's change to the quarter in which it was approved (the domain names the financial year and
quarter on the event, from the policy's year start, Q1 = April–June). `concordat report
public-health --year 2026` prints the financial year April 2026 – March 2027.
"""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from domain.funding import Fund
from projections.tables import PostgresViewTables, SQLiteViewTables, ViewTables


class PublicHealthView(ViewTables):
    TABLES = ("ph_contributions",)
    DDL: ClassVar = (
        "CREATE TABLE IF NOT EXISTS {t_ph_contributions} ("
        " financial_year INTEGER NOT NULL, quarter INTEGER NOT NULL, party TEXT NOT NULL,"
        " amount_pence BIGINT NOT NULL, changes INTEGER NOT NULL,"
        " PRIMARY KEY (financial_year, quarter, party))",
    )

    def report(self, year: int) -> list[dict[str, Any]]:
        return self.query(
            "SELECT financial_year, quarter, party, amount_pence, changes FROM {t_ph_contributions}"
            " WHERE financial_year = :year ORDER BY party, quarter",
            {"year": year},
        )


class PublicHealthProjection(Projection[PublicHealthView]):
    name = "public_health"

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write([], tracking)

    @process_event.register
    def _(self, e: Fund.ChangeApplied, tracking: Tracking) -> None:
        if not e.public_health:
            self.view.write([], tracking)
            return
        self.view.write(
            [
                (
                    "INSERT INTO {t_ph_contributions} (financial_year, quarter, party, amount_pence, changes)"
                    " VALUES (:year, :quarter, :party, :pence, 1) ON CONFLICT (financial_year, quarter, party)"
                    " DO UPDATE SET amount_pence = {t_ph_contributions}.amount_pence + excluded.amount_pence,"
                    " changes = {t_ph_contributions}.changes + 1",
                    {"year": e.financial_year, "quarter": e.quarter, "party": party, "pence": pence},
                )
                for party, pence in e.changes.items()
            ],
            tracking,
        )


class SQLitePublicHealthView(SQLiteViewTables, PublicHealthView):
    pass


class PostgresPublicHealthView(PostgresViewTables, PublicHealthView):
    pass
