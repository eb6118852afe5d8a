"""Metrics: the cases by stage and kind, overdue and escalated cases, decisions recorded and the views'
lag, read from the real views on SQLite and PostgreSQL; served over HTTP and as an ASGI app; and
Temporal's own SDK metrics from its exporter."""

from __future__ import annotations

import socket
import urllib.request
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from concordat import bootstrap, metrics
from concordat.settings import Settings
from tests.deploy.cases import DAN, PB, T0, cid, make_partnership, run_views
from workflows.case import CaseWorkflow

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(settings: Settings, at: datetime) -> Samples:
    body, content_type = metrics.exposition(metrics.registry(settings, clock=lambda: at))
    assert content_type.startswith("text/plain")
    return samples(body.decode())


def by(found: Samples, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    return {tuple(dict(labels)[k] for k in keys): value for (n, labels), value in found.items() if n == name}


def test_the_metrics_count_the_cases_the_decisions_and_the_lag(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    p = make_partnership(app)
    run_views(settings, app)
    just_late = app.state(p.waiting).deadline + timedelta(minutes=1)  # the first deadline of all to pass
    found = scrape(settings, just_late)

    assert by(found, "concordat_cases_open", "case_kind", "kind", "stage") == {
        ("proposal", "pathway_change", "board"): 1,
        ("proposal", "pathway_change", "jcu"): 2,
        ("dispute", "dispute", "mediator_selection"): 1,
    }
    assert by(found, "concordat_cases_overdue", "case_kind", "stage") == {
        ("proposal", "board"): 0,
        ("proposal", "jcu"): 1,
        ("dispute", "mediator_selection"): 0,
    }
    assert sum(by(scrape(settings, datetime(2031, 1, 1, tzinfo=UTC)), "concordat_cases_overdue", "stage").values()) == 4
    assert by(found, "concordat_cases_escalated", "case_kind", "forum") == {("proposal", "programme_board"): 1}
    assert by(found, "concordat_cases", "case_kind", "status") == {
        ("proposal", "open"): 3,
        ("proposal", "rejected"): 1,
        ("dispute", "open"): 1,
        ("termination", "withdrawn"): 1,
        ("funding", "approved"): 1,
        ("fund", "opened"): 1,
    }
    assert by(found, "concordat_decisions_recorded_total", "forum", "outcome") == {
        ("jcu", "refer"): 1,
        ("jcu", "reject"): 1,
        ("director", "mediation"): 1,
        ("board", "propose"): 2,  # the fund's opening and the change to it
        ("public_health", "support"): 2,
        ("programme_board", "agree"): 2,
        ("pcc_decision", "approve"): 1,
    }
    newest = app.max_notification_id()
    assert found[("concordat_store_notifications", frozenset())] == newest
    assert by(found, "concordat_projection_lag_events", "view") == {
        ("case_list",): 0,
        ("decisions",): 0,
        ("public_health",): 0,
    }
    assert found[("concordat_metrics_store_up", frozenset())] == 1

    # Two more decisions that no runner has processed yet: the lag shows them, the counts do not.
    app.decide(p.waiting, actor=DAN, stage="jcu", outcome="refer", command_id=cid(), at=T0 + timedelta(days=1))
    app.decide(
        p.escalated,
        actor=PB,
        stage="jcu",
        outcome="extend",
        minutes_ref="MIN-2026-01",
        command_id=cid(),
        at=T0 + timedelta(days=1),
    )
    behind = scrape(settings, just_late)
    lag = app.max_notification_id() - newest
    assert lag >= 2
    assert by(behind, "concordat_projection_lag_events", "view") == {
        ("case_list",): lag,
        ("decisions",): lag,
        ("public_health",): lag,
    }
    assert by(behind, "concordat_decisions_recorded_total", "forum", "outcome")[("jcu", "refer")] == 1

    run_views(settings, app)
    caught_up = scrape(settings, just_late)
    assert set(by(caught_up, "concordat_projection_lag_events", "view").values()) == {0}
    recorded = by(caught_up, "concordat_decisions_recorded_total", "forum", "outcome")
    assert (recorded[("jcu", "refer")], recorded[("programme_board", "extend")]) == (2, 1)
    assert by(caught_up, "concordat_cases_escalated", "case_kind", "forum") == {}
    assert (
        by(caught_up, "concordat_cases_open", "case_kind", "kind", "stage")[("proposal", "pathway_change", "board")]
        == 2
    )


def test_a_store_that_does_not_answer_is_a_metric_not_a_failed_scrape(tmp_path) -> None:  # noqa: ANN001
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # a port that is bound but never listens: connections are refused
        port = s.getsockname()[1]
        gone = Settings(data_dir=tmp_path, database_url=f"postgresql://concordat@127.0.0.1:{port}/concordat")
        found = scrape(gone, T0)
    assert found[("concordat_metrics_store_up", frozenset())] == 0
    assert not by(found, "concordat_cases_open", "stage")


def test_the_projection_runners_address_serves_the_metrics_over_http(sqlite_settings: Settings) -> None:
    app = bootstrap.open_cases(sqlite_settings)
    make_partnership(app)
    server = metrics.serve(sqlite_settings, address="127.0.0.1:0")
    try:
        host, port = server.server_address[:2]
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as answer:  # noqa: S310
            found = samples(answer.read().decode())
    finally:
        server.shutdown()
        server.server_close()
    # No runner ran: every view trails the store by every event.
    assert set(by(found, "concordat_projection_lag_events", "view").values()) == {app.max_notification_id()}


async def test_the_web_app_can_mount_the_metrics_as_an_asgi_app(sqlite_settings: Settings) -> None:
    app = bootstrap.open_cases(sqlite_settings)
    make_partnership(app)
    run_views(sqlite_settings, app)
    transport = httpx.ASGITransport(app=metrics.asgi_app(sqlite_settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://concordat.test") as client:
        answer = await client.get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    found = samples(answer.text)
    assert sum(by(found, "concordat_cases_open", "stage").values()) == 4


async def test_temporals_sdk_metrics_are_served_on_the_workers_address(time_skipping_env: WorkflowEnvironment) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runtime = metrics.temporal_runtime(f"127.0.0.1:{port}")  # binds now: a taken port fails here, not later
    target = time_skipping_env.client.service_client.config.target_host
    client = await Client.connect(target, runtime=runtime, namespace=time_skipping_env.client.namespace)
    worker = Worker(client, task_queue="metrics-test", workflows=[CaseWorkflow])
    async with worker:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:  # noqa: S310
            text = answer.read().decode()
    found = samples(text)
    assert by(found, "temporal_request_total", "service")  # the client's calls to the server
    started = by(found, "temporal_worker_start_total", "task_queue", "service")  # the worker itself
    assert started == {("metrics-test", "concordat-worker"): 1}
