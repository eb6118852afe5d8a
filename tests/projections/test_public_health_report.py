"""The quarterly report of ring-fenced public-health contributions, kept by the projection runner."""

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
from tests.domain.support import approve_through

LEAD, SAM = Actor.parse("jcu_lead:jo"), Actor.parse("secretary:board:sam")
PHIL, HAL = Actor.parse("public_health:phil"), Actor.parse("secretary:health_committee:hal")
PAT = Actor.parse("secretary:programme_board:pat")
APRIL = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)


def run_views(settings: Settings, app: CaseService) -> None:
    newest = app.max_notification_id()
    for runner in bootstrap.projection_runners(settings):
        with runner:
            runner.wait(newest, timeout=10)


def change(app: CaseService, at: datetime, changes: dict[str, int], public_health: bool) -> bool:
    """Take one funding change through its route; True if approved."""
    f = app.start_funding_change(
        actor=LEAD,
        fields={"fund": "PH pooled", "changes": changes, "public_health": public_health},
        command_id=str(uuid.uuid4()),
        at=at,
    )
    try:
        return approve_through(app, f.reference, at=at).status == "approved"
    except FundWouldOverspendError:
        return False


def report(settings: Settings, year: int) -> list[dict]:
    return bootstrap.open_public_health(settings).report(year)


def test_ring_fenced_changes_are_reported_per_party_per_quarter(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    app.open_fund(
        actor=LEAD,
        fields={"name": "PH pooled", "type": "pooled", "balance_pence": 50_000_000},
        command_id="f",
        at=APRIL,
    )
    change(app, APRIL + timedelta(days=10), {"PCC": 100_000, "CCC": 200_000}, public_health=True)  # Q1
    change(app, APRIL + timedelta(days=100), {"PCC": -50_000}, public_health=True)  # Q2
    change(app, APRIL + timedelta(days=100), {"CCC": 999_999}, public_health=False)  # not ring-fenced
    change(app, APRIL + timedelta(days=300), {"CPCCG": 70_000}, public_health=True)  # Q4 (Jan 2027)
    run_views(settings, app)
    rows = [(r["quarter"], r["party"], r["amount_pence"]) for r in report(settings, 2026)]
    assert rows == [(1, "CCC", 200_000), (4, "CPCCG", 70_000), (1, "PCC", 100_000), (2, "PCC", -50_000)]
    assert report(settings, 2027) == []


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(0, 720),
            st.dictionaries(st.sampled_from(["PCC", "CCC", "CPCCG"]), st.integers(-400_000, 400_000), min_size=1),
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_the_report_equals_the_approved_ring_fenced_changes_and_rebuilds_the_same(steps: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Settings(data_dir=Path(tmp), database_url="", snapshot_interval=0)
        app = bootstrap.open_cases(store)
        app.open_fund(
            actor=LEAD,
            fields={"name": "PH pooled", "type": "pooled", "balance_pence": 500_000},
            command_id="f",
            at=APRIL,
        )
        expected: dict[tuple[int, int, str], int] = defaultdict(int)
        for days, changes, ring_fenced in steps:
            if not any(changes.values()):
                continue
            at = APRIL + timedelta(days=days)
            if change(app, at, changes, ring_fenced) and ring_fenced:
                year, quarter = (at.year if at.month >= 4 else at.year - 1), (at.month - 4) % 12 // 3 + 1
                for party, pence in changes.items():
                    expected[(year, quarter, party)] += pence
        run_views(store, app)
        got = {
            (r["financial_year"], r["quarter"], r["party"]): r["amount_pence"]
            for year in (2026, 2027, 2028)
            for r in report(store, year)
        }
        assert got == {k: v for k, v in expected.items()}
        bootstrap.open_public_health(store).clear()
        run_views(store, app)
        again = {
            (r["financial_year"], r["quarter"], r["party"]): r["amount_pence"]
            for year in (2026, 2027, 2028)
            for r in report(store, year)
        }
        assert again == got
