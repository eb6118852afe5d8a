"""Events are forever: a fund opened by the release before funds recorded whether they hold
ring-fenced money (`Fund.Opened` version 1, written by that release's code) and a contract variation
started before contracts named their funding lines (`Variation.Started` version 1) load into today's
engine, verify, and carry on: for the old fund, the `--public-health` flag given with a change still
decides, as it did then; the fund is in no quarterly report of ring-fenced contributions."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.audit import Auditor
from domain.funding import Fund
from tests.audit.test_earlier_release_events import FIXTURE, loaded
from tests.domain.support import approve_through

OLD_FUND = json.loads((Path(__file__).parent / "fixtures" / "fund_opened_v1.json").read_text())
LEAD, AUDREY = Actor.parse("jcu_lead:jo"), Actor.parse("auditor:audrey")


def test_a_fund_opened_before_ring_fencing_was_recorded_loads_and_its_changes_keep_the_flag(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=UUID(e["originator_id"]),
                originator_version=e["originator_version"],
                topic=e["topic"],
                state=e["state"].encode("utf-8"),
            )
            for e in OLD_FUND["events"]
        ]
    )
    assert (
        OLD_FUND["events"][0]["topic"] == "domain.funding:Fund.Opened"
        and '"ring_fenced"' not in (OLD_FUND["events"][0]["state"])
    )
    fund = app.fund_view("Old pooled", actor=AUDREY)
    assert (fund["ring_fenced"], fund["balance_pence"], fund["contributions"]) == (None, 1_000_000, {})
    flagged = app.start_funding_change(
        actor=LEAD,
        fields={"fund": "Old pooled", "changes": {"PCC": -100}, "public_health": True},
        command_id=str(uuid.uuid4()),
    )
    assert flagged.details["public_health"] is True  # the flag decides for an old fund, as it did
    plain = app.start_funding_change(
        actor=LEAD, fields={"fund": "Old pooled", "changes": {"CCC": -100}}, command_id=str(uuid.uuid4())
    )
    assert plain.details["public_health"] is False
    assert approve_through(app, flagged.reference).status == "approved"
    assert app.fund_view("Old pooled", actor=AUDREY)["balance_pence"] == 999_900
    assert app.repository.get(Fund.create_id("Old pooled")).version == 2
    assert Auditor(app).verify_chain(Fund.create_id("Old pooled")) == []  # the old event's hash still holds
    newest = app.max_notification_id()
    for runner in bootstrap.projection_runners(settings):
        with runner:
            runner.wait(newest, timeout=10)
    report = bootstrap.open_public_health(settings).report(2026, ["PCC", "CCC", "CPCCG"])
    # The old fund's opening balance names no contributors: only the ring-fenced change is reported.
    assert report["total"]["year"] == {"contributions_pence": 0, "changes_pence": -100, "balance_pence": -100}


def test_a_variation_started_before_funding_lines_loads_with_none(settings: Settings) -> None:
    app = loaded(settings)
    for name in ("variation", "variation_open"):
        state = app.state(FIXTURE["cases"][name])
        assert state.details["funding_lines"] == []
