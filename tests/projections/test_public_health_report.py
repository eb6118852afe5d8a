"""The quarterly report of ring-fenced public-health money (Cabinet report 4.5.1), kept by the
projection runner: each party's contributions, changes and balances per UK financial quarter."""

from __future__ import annotations

import tempfile
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.errors import FundWouldOverspendError
from tests.domain.support import approve_through, open_agreed_fund

LEAD = Actor.parse("jcu_lead:jo")
APRIL = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)
PARTIES = ["PCC", "CCC", "CPCCG"]


def run_views(settings: Settings, app: CaseService) -> None:
    newest = app.max_notification_id()
    for runner in bootstrap.projection_runners(settings):
        with runner:
            runner.wait(newest, timeout=10)


def change(app: CaseService, at: datetime, changes: dict[str, int], fund: str = "PH pooled") -> bool:
    """Take one funding change through its route (no --public-health: the fund decides); True if approved."""
    try:
        f = app.start_funding_change(
            actor=LEAD, fields={"fund": fund, "changes": changes}, command_id=str(uuid.uuid4()), at=at
        )
        return approve_through(app, f.reference, at=at).status == "approved"
    except FundWouldOverspendError:
        return False


def report(settings: Settings, year: int) -> dict:
    return bootstrap.open_public_health(settings).report(year, PARTIES)


def cells(r: dict, party: str) -> list[tuple[int, int, int]]:
    line = next(p for p in r["parties"] if p["party"] == party) if party != "total" else r["total"]
    return [(q["contributions_pence"], q["changes_pence"], q["balance_pence"]) for q in line["quarters"]]


def test_contributions_changes_and_balances_of_ring_fenced_funds_per_party_per_quarter(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    # Opened (agreed by the Programme Board) in Q1 2026-27; the other fund is not ring-fenced.
    open_agreed_fund(app, "PH pooled", ring_fenced=True, contributions={"PCC": 300_000, "CCC": 200_000}, at=APRIL)
    open_agreed_fund(app, "Aligned", contributions={"PCC": 999_999}, at=APRIL)
    change(app, APRIL + timedelta(days=10), {"PCC": 100_000, "CCC": -50_000})  # Q1: nobody ticked public health
    change(app, APRIL + timedelta(days=100), {"PCC": -50_000})  # Q2
    change(app, APRIL + timedelta(days=100), {"CCC": 999_999}, fund="Aligned")  # not ring-fenced: not reported
    change(app, APRIL + timedelta(days=300), {"CPCCG": 70_000})  # Q4 (January 2027)
    run_views(settings, app)
    r = report(settings, 2026)
    assert r["financial_year"] == "2026-27" and r["quarters"]["Q1"] == "April–June 2026"
    assert r["quarters"]["Q4"] == "January–March 2027"
    assert cells(r, "PCC") == [(300_000, 100_000, 400_000), (0, -50_000, 350_000), (0, 0, 350_000), (0, 0, 350_000)]
    assert cells(r, "CCC") == [(200_000, -50_000, 150_000), (0, 0, 150_000), (0, 0, 150_000), (0, 0, 150_000)]
    assert cells(r, "CPCCG") == [(0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 70_000, 70_000)]
    assert r["total"]["year"] == {"contributions_pence": 500_000, "changes_pence": 70_000, "balance_pence": 570_000}
    # The next year opens with each party's balance.
    later = report(settings, 2027)
    assert [(p["party"], p["opening_balance_pence"]) for p in later["parties"]] == [
        ("PCC", 350_000),
        ("CCC", 150_000),
        ("CPCCG", 70_000),
    ]
    assert cells(later, "PCC")[3] == (0, 0, 350_000)
    assert report(settings, 2025)["total"]["year"]["balance_pence"] == 0


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(0, 720),
            st.dictionaries(st.sampled_from(PARTIES), st.integers(-400_000, 400_000), min_size=1),
            st.sampled_from(["PH pooled", "Aligned"]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_each_balance_is_the_contributions_and_approved_ring_fenced_changes_so_far_and_rebuilds_the_same(
    steps: list,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Settings(data_dir=Path(tmp), database_url="", snapshot_interval=0)
        app = bootstrap.open_cases(store)
        open_agreed_fund(app, "PH pooled", ring_fenced=True, contributions={"PCC": 500_000}, at=APRIL)
        open_agreed_fund(app, "Aligned", contributions={"CCC": 500_000}, at=APRIL)
        moved: dict[tuple[int, int, str], int] = defaultdict(int)
        moved[(2026, 1, "PCC")] += 500_000
        for days, changes, fund in sorted(steps, key=lambda s: s[0]):
            if not any(changes.values()):
                continue
            at = APRIL + timedelta(days=days)
            if change(app, at, changes, fund) and fund == "PH pooled":
                year, quarter = (at.year if at.month >= 4 else at.year - 1), (at.month - 4) % 12 // 3 + 1
                for party, pence in changes.items():
                    moved[(year, quarter, party)] += pence
        run_views(store, app)

        def balances() -> dict[tuple[int, int, str], int]:
            return {
                (year, q + 1, party): cells(report(store, year), party)[q][2]
                for year in (2026, 2027, 2028)
                for party in PARTIES
                for q in range(4)
            }

        got = balances()
        for (year, quarter, party), balance in got.items():
            assert balance == sum(v for (y, q, p), v in moved.items() if p == party and (y, q) <= (year, quarter))
        bootstrap.open_public_health(store).clear()
        run_views(store, app)
        assert balances() == got
