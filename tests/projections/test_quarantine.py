"""No event can stop a projection: an event a view cannot project, written straight into the store, is
quarantined in that view with its error; the runner keeps projecting the events after it; health, the
metrics and the auditor's page report it; `concordat projections retry` projects it again once its
cause is removed. On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import register_topic
from prometheus_client.parser import text_string_to_metric_families

from concordat import bootstrap, health, metrics
from concordat.cli import app as cli
from concordat.replay import replay
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.funding import Fund
from domain.proposal import Proposal
from tests.domain.support import open_agreed_fund
from tests.people import token_for

LEAD, DAN = Actor.parse("jcu_lead:jo"), Actor.parse("lead_director:dan")
TOO_MANY_PENCE = 10**23  # beyond 64 bits: SQLite raises OverflowError, PostgreSQL "bigint out of range"


def a_proposal(app: CaseService, title: str) -> str:
    return app.start_proposal(
        actor=LEAD,
        command_id=str(uuid.uuid4()),
        title=title,
        kind="procurement",
        value_pence=1_000,
        parties=["PCC"],
        public_health=False,
    ).reference


def stored_started(app: CaseService, reference: str) -> Proposal.Started:
    for notification in app.recorder.select_notifications(start=1, limit=1000):
        if notification.topic.endswith("Proposal.Started"):
            event = app.mapper.to_domain_event(notification)
            if event.reference == reference:
                return event
    raise LookupError(reference)


def store_straight(app: CaseService, *events: Any) -> None:
    """Write events into the store as they are, past every rule of the domain and the commands."""
    app.recorder.insert_events([app.mapper.to_stored_event(e) for e in events])


def poison_proposal(app: CaseService, template: str, reference: str, title: str) -> uuid.UUID:
    """A Started event of a new aggregate, copied from a real one with a title of our choosing."""
    started = dataclasses.replace(
        stored_started(app, template), originator_id=uuid.uuid4(), reference=reference, title=title
    )
    store_straight(app, started)
    return started.originator_id


def poison_public_health(app: CaseService) -> None:
    """A ring-fenced change to a fund of more pence than any view's integer holds."""
    open_agreed_fund(app, "Better Care", balance=1)
    fund = app.repository.get(Fund.create_id("Better Care"))
    fund.trigger_event(
        Fund.ChangeApplied,
        reference="FUN-2026-0999",
        changes={"PCC": TOO_MANY_PENCE},
        total_pence=TOO_MANY_PENCE,
        balance_after=TOO_MANY_PENCE,
        public_health=True,
        financial_year=2026,
        quarter=1,
        command_id=str(uuid.uuid4()),
        at=datetime.now(UTC),
    )
    app.save(fund)


def run_views(settings: Settings, app: CaseService) -> None:
    """The real runners, until every view has passed the newest event; none may have stopped."""
    newest = app.max_notification_id()
    for runner in bootstrap.projection_runners(settings):
        with runner:
            runner.wait(newest, timeout=15)  # re-raises whatever stopped the runner's thread
            assert not runner.is_interrupted.is_set(), runner.projection.name


def titles(settings: Settings) -> dict[str, str]:
    return {row["reference"]: row["title"] for row in bootstrap.open_case_list(settings).list_cases()}


def test_a_poison_event_is_quarantined_and_the_runner_keeps_projecting_later_events(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    first = a_proposal(app, "Speech therapy")
    poison_public_health(app)
    nul = poison_proposal(app, first, "PRO-2026-0900", "Budget \x00 review")
    app.decide(first, actor=DAN, stage="jcu", outcome="refer", command_id="after-the-poison")
    later = a_proposal(app, "Continence service")

    run_views(settings, app)

    shown = titles(settings)
    assert shown[first] == "Speech therapy" and shown[later] == "Continence service"
    rows = bootstrap.open_case_list(settings).list_cases()
    assert next(r for r in rows if r["reference"] == first)["stage"] == "board"  # the decision after the poison
    held = bootstrap.quarantined(settings)
    assert [r["topic"].rpartition(".")[2] for r in held["public_health"]] == ["ChangeApplied"]
    assert held["public_health"][0]["error"].split(":")[0] in {"OverflowError", "DataError"}
    if settings.uses_postgres:  # PostgreSQL text cannot hold NUL; SQLite's can, and shows it
        assert [r["originator_id"] for r in held["case_list"]] == [str(nul)]
        assert "NUL" in held["case_list"][0]["error"] and "\x00" not in held["case_list"][0]["error"]
        assert "PRO-2026-0900" not in shown
    else:
        assert held["case_list"] == [] and shown["PRO-2026-0900"] == "Budget \x00 review"
    count = len(held["public_health"]) + len(held["case_list"]) + len(held["decisions"])

    line = health.check("projections", settings, timeout=10, max_lag=0)
    assert f"{count} quarantined in all" in line and "public_health lag 0 (1 quarantined)" in line
    with pytest.raises(health.Unhealthy, match="more than 0 events quarantined"):
        health.check("projections", settings, timeout=10, max_lag=0, max_quarantined=0)

    found = {
        (s.name, s.labels.get("view")): s.value
        for family in text_string_to_metric_families(metrics.exposition(metrics.registry(settings))[0].decode())
        for s in family.samples
        if s.name == "concordat_projection_quarantined_events"
    }
    assert found[("concordat_projection_quarantined_events", "public_health")] == 1

    # A rebuild from zero quarantines the same events, and keeps every other row.
    before = (bootstrap.open_case_list(settings).list_cases(), bootstrap.quarantined(settings))
    replay(settings)
    after = (bootstrap.open_case_list(settings).list_cases(), bootstrap.quarantined(settings))
    assert after[0] == before[0]
    assert {k: [(r["notification_id"], r["error"]) for r in v] for k, v in after[1].items()} == {
        k: [(r["notification_id"], r["error"]) for r in v] for k, v in before[1].items()
    }


def test_retry_projects_a_quarantined_event_and_those_held_behind_it_once_the_cause_is_removed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cause here: an event of a kind this release does not know (written by a newer one). The
    aggregate's next event waits behind it, untried. After the upgrade (here: the topic registered) a
    retry projects both, in order."""
    app = bootstrap.open_cases(settings)
    first = a_proposal(app, "Speech therapy")
    app.decide(first, actor=DAN, stage="jcu", outcome="refer", command_id="d1")
    started, decided = (
        app.mapper.to_domain_event(n)
        for n in app.recorder.select_notifications(start=1, limit=1000)
        if n.originator_id == stored_started(app, first).originator_id
    )
    case_id, newer = uuid.uuid4(), f"tests.projections.a_newer_release_{uuid.uuid4().hex}:Proposal.Started"
    unknown = app.mapper.to_stored_event(
        dataclasses.replace(started, originator_id=case_id, reference="PRO-2026-0901", title="From a newer release")
    )
    app.recorder.insert_events(
        [StoredEvent(originator_id=case_id, originator_version=1, topic=newer, state=unknown.state)]
    )
    store_straight(app, dataclasses.replace(decided, originator_id=case_id))
    a_proposal(app, "Continence service")
    run_views(settings, app)

    held = bootstrap.quarantined(settings)["case_list"]
    assert [(r["originator_version"], r["error"].split(":")[0], r["held_behind"]) for r in held] == [
        (1, "TopicError", None),
        (2, f"held behind event {held[0]['notification_id']} of the same aggregate", held[0]["notification_id"]),
    ]
    assert "PRO-2026-0901" not in titles(settings) and len(titles(settings)) == 2
    monkeypatch.setenv("CONCORDAT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CONCORDAT_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CONCORDAT_TOKEN", token_for(app, "admin:root"))  # an administrator's command

    still = CliRunner().invoke(cli, ["projections", "retry", "--view", "case_list"])
    assert still.exit_code == 1, still.output
    assert "case_list: reprojected 0 events; 2 still quarantined" in still.output
    assert [r["attempts"] for r in bootstrap.quarantined(settings)["case_list"]] == [2, 1]

    register_topic(newer, Proposal.Started)  # the upgrade
    done = CliRunner().invoke(cli, ["projections", "retry", "--json"])
    assert done.exit_code == 0, done.output
    assert {r["view"]: (len(r["reprojected"]), r["still"]) for r in json.loads(done.stdout)} == {
        "case_list": (2, []),
        "decisions": (2, []),
        "public_health": (2, []),
    }
    row = next(r for r in bootstrap.open_case_list(settings).list_cases() if r["reference"] == "PRO-2026-0901")
    assert (row["title"], row["stage"], row["version"]) == ("From a newer release", "board", 2)
    assert [d["reference"] for d in bootstrap.open_decisions(settings).list_decisions()].count("PRO-2026-0901") == 1
    assert bootstrap.quarantined(settings) == {"case_list": [], "decisions": [], "public_health": []}
    again = CliRunner().invoke(cli, ["projections", "retry"])
    assert again.exit_code == 0 and "reprojected 0 events; 0 still quarantined" in again.output
