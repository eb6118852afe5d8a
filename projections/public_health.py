"""Ring-fenced public-health money, per party and per UK financial quarter: contributions, changes
and balances.

Cabinet report 4.5.1: "public health ring fenced funding contributions are identified separately so
that they can be reported quarterly". Whether money is ring-fenced is a fact of its fund, recorded
when the fund opened (`Fund.Opened.ring_fenced`). Each party's contribution to a ring-fenced fund
counts in the quarter the fund opened; each approved change to ring-fenced money (`Fund.ChangeApplied`
with `public_health`) in the quarter it was approved. A party's balance at a quarter's end is
everything it contributed and changed up to then. The domain names the financial year and quarter on
each event (the policy's year start; Q1 = April–June).

Changes are kept in `ph_contributions` as before funds knew their contributors (so a deployment's
view needs no rebuild); the contributions made when a ring-fenced fund opens, in `ph_fund_contributions`
(only funds opened since carry them).
"""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from domain.funding import Fund
from projections.tables import PostgresViewTables, SQLiteViewTables, ViewTables


class PublicHealthView(ViewTables):
    BULK_SAFE = True  # see ViewTables.BULK_SAFE
    TABLES = ("ph_contributions", "ph_fund_contributions")
    DDL: ClassVar = (
        "CREATE TABLE IF NOT EXISTS {t_ph_contributions} ("
        " financial_year INTEGER NOT NULL, quarter INTEGER NOT NULL, party TEXT NOT NULL,"
        " amount_pence BIGINT NOT NULL, changes INTEGER NOT NULL,"
        " PRIMARY KEY (financial_year, quarter, party))",
        "CREATE TABLE IF NOT EXISTS {t_ph_fund_contributions} ("
        " financial_year INTEGER NOT NULL, quarter INTEGER NOT NULL, party TEXT NOT NULL,"
        " amount_pence BIGINT NOT NULL, PRIMARY KEY (financial_year, quarter, party))",
    )

    def quarters_to(self, year: int) -> list[dict[str, Any]]:
        """Every party's quarters up to the end of financial year `year` (earlier years make the
        opening balances): contributions, changes and how many changes were approved."""
        changes = self.query(
            "SELECT financial_year, quarter, party, amount_pence, changes FROM {t_ph_contributions}"
            " WHERE financial_year <= :year",
            {"year": year},
        )
        opened = self.query(
            "SELECT financial_year, quarter, party, amount_pence FROM {t_ph_fund_contributions}"
            " WHERE financial_year <= :year",
            {"year": year},
        )
        return [
            *({**r, "contributed_pence": 0, "changed_pence": r["amount_pence"]} for r in changes),
            *({**r, "contributed_pence": r["amount_pence"], "changed_pence": 0, "changes": 0} for r in opened),
        ]

    def report(self, year: int, parties: list[str]) -> dict[str, Any]:
        return quarterly_report(self.quarters_to(year), year, parties)


QUARTER_MONTHS = ("April–June", "July–September", "October–December", "January–March")


def quarterly_report(rows: list[dict[str, Any]], year: int, parties: list[str]) -> dict[str, Any]:
    """The report as plain data, in pence: for each party, its balance at the start of the year and,
    for each quarter, what it contributed, the changes approved and its balance at the quarter's end;
    the same for every party together. Every party of the partnership has a line."""
    names = list(parties) + sorted({r["party"] for r in rows} - set(parties))
    opening = dict.fromkeys(names, 0)
    cells = {(p, q): [0, 0, 0] for p in names for q in range(1, 5)}
    for r in rows:
        amount = r["contributed_pence"] + r["changed_pence"]
        if r["financial_year"] < year:
            opening[r["party"]] += amount
        else:
            cell = cells[(r["party"], r["quarter"])]
            cell[0] += r["contributed_pence"]
            cell[1] += r["changed_pence"]
            cell[2] += r["changes"]

    def line(name: str, members: list[str]) -> dict[str, Any]:
        balance = sum(opening[p] for p in members)
        quarters = []
        for q in range(1, 5):
            contributed = sum(cells[(p, q)][0] for p in members)
            changed = sum(cells[(p, q)][1] for p in members)
            balance += contributed + changed
            quarters.append(
                {
                    "quarter": f"Q{q}",
                    "contributions_pence": contributed,
                    "changes_pence": changed,
                    "changes_approved": sum(cells[(p, q)][2] for p in members),
                    "balance_pence": balance,
                }
            )
        return {
            "party": name,
            "opening_balance_pence": sum(opening[p] for p in members),
            "quarters": quarters,
            "year": {
                "contributions_pence": sum(q["contributions_pence"] for q in quarters),
                "changes_pence": sum(q["changes_pence"] for q in quarters),
                "balance_pence": balance,
            },
        }

    return {
        "financial_year": f"{year}-{(year + 1) % 100:02d}",
        "quarters": {f"Q{q}": f"{m} {year if q < 4 else year + 1}" for q, m in enumerate(QUARTER_MONTHS, 1)},
        "unit": "pence",
        "parties": [line(p, [p]) for p in names],
        "total": line("total", names),
    }


class PublicHealthProjection(Projection[PublicHealthView]):
    name = "public_health"

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write([], tracking)

    @process_event.register
    def _(self, e: Fund.Opened, tracking: Tracking) -> None:
        if not e.ring_fenced:  # not ring-fenced, or opened before funds recorded it (None)
            self.view.write([], tracking)
            return
        self.view.write(
            [
                (
                    "INSERT INTO {t_ph_fund_contributions} (financial_year, quarter, party, amount_pence)"
                    " VALUES (:year, :quarter, :party, :pence) ON CONFLICT (financial_year, quarter, party)"
                    " DO UPDATE SET amount_pence = {t_ph_fund_contributions}.amount_pence + excluded.amount_pence",
                    {"year": e.financial_year, "quarter": e.quarter, "party": party, "pence": pence},
                )
                for party, pence in e.contributions.items()
            ],
            tracking,
        )

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
