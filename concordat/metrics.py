"""Prometheus metrics: what the partnership's cases look like now, how far the views trail the store,
and (in the worker) Temporal's own SDK metrics.

The case metrics are read from the views and the store at scrape time (`CasesCollector`), so every
process that serves them shows the same numbers: the projection runner on CONCORDAT_METRICS_ADDRESS
(`serve`), the web app at `/metrics` (`asgi_app`, or `exposition` for a handler of its own). The
worker serves Temporal's SDK metrics (polls, task latencies, activity failures, sticky cache…) on
CONCORDAT_METRICS_ADDRESS through Temporal's own exporter (`temporal_runtime`).

| metric | type | labels |
|---|---|---|
| concordat_cases_open | gauge | case_kind, kind, stage |
| concordat_cases_overdue | gauge | case_kind, kind, stage |
| concordat_cases_escalated | gauge | case_kind, forum |
| concordat_cases | gauge | case_kind, status |
| concordat_decisions_recorded_total | counter | forum, outcome |
| concordat_store_notifications | gauge | — |
| concordat_projection_position | gauge | view |
| concordat_projection_lag_events | gauge | view |
| concordat_projection_quarantined_events | gauge | view |
| concordat_metrics_store_up | gauge | — |
| concordat_sweep_last_timestamp_seconds | gauge | — |
| concordat_sweep_cases_without_workflow | gauge | — |
| concordat_sweep_workflows_without_case | gauge | — |
| concordat_sweep_repaired | counter | — |
| concordat_sweep_failed | counter | — |

`concordat_cases_overdue` is "open and past its deadline" at scrape time, as `concordat list
--overdue` asks it. `concordat_cases_escalated` counts open cases escalated now (to the forum named);
a case's escalation ends when its forum decides. The `concordat_sweep_*` metrics are what the
worker's last sweep (`concordat/sweeps.py`) found, read from the data dir: shown by the processes
beside a worker (under `concordat up`, the web app), absent before the first sweep.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import psycopg
import structlog
from eventsourcing.persistence import OperationalError, PersistenceError
from prometheus_client import CollectorRegistry, generate_latest, make_asgi_app, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from concordat import bootstrap, sweeps
from concordat.settings import Settings
from projections.case_list import iso

log = structlog.get_logger("concordat.metrics")
STORE_ERRORS = (OperationalError, PersistenceError, psycopg.Error, sqlite3.Error, OSError)


def split_address(address: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 in brackets) as a host to bind and a port."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address {address!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - an empty host means every interface


class CasesCollector(Collector):
    """Reads the views and the store's newest notification id on every scrape."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now().astimezone())
        self._lock = threading.Lock()
        self._opened: tuple[Any, dict[str, Any]] | None = None

    def _open(self) -> tuple[Any, dict[str, Any]]:
        if self._opened is None:
            cases = bootstrap.open_cases(self.settings)
            views = {p.name: bootstrap.open_view(self.settings, p.name) for p in bootstrap.PROJECTIONS}
            self._opened = (cases, views)
        return self._opened

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        opened, self._opened = self._opened, None
        if opened is None:
            return
        cases, views = opened
        try:
            for view in views.values():
                view.datastore.close()
            cases.close()
        except STORE_ERRORS as err:  # closing what a failed store left behind: nothing more to do
            log.info("metrics.close_failed", error=str(err).splitlines()[0] if str(err) else "")

    def describe(self) -> Iterable[Metric]:
        return []  # read at scrape time only: registering must not touch the store

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "concordat_metrics_store_up", "1 if the last scrape read the store and the views, 0 if it could not."
        )
        with self._lock:
            try:
                families = list(self._read())
            except STORE_ERRORS as err:
                log.warning("metrics.store_unavailable", error=str(err).splitlines()[0] if str(err) else "")
                self._close()  # reopen on the next scrape
                up.add_metric([], 0)
                yield up
                yield from _sweep_metrics(self.settings)
                return
        yield from families
        up.add_metric([], 1)
        yield up
        yield from _sweep_metrics(self.settings)

    def _read(self) -> Iterator[Metric]:
        cases, views = self._open()
        case_list, decisions = views["case_list"], views["decisions"]

        open_cases = GaugeMetricFamily(
            "concordat_cases_open",
            "Open cases by kind and the stage they are at.",
            labels=["case_kind", "kind", "stage"],
        )
        overdue = GaugeMetricFamily(
            "concordat_cases_overdue",
            "Open cases past their deadline, by kind and stage.",
            labels=["case_kind", "kind", "stage"],
        )
        for row in case_list.query(
            "SELECT case_kind, kind, stage, count(*) AS n,"
            " sum(CASE WHEN deadline IS NOT NULL AND deadline < :now THEN 1 ELSE 0 END) AS late"
            " FROM {t_case_list} WHERE status = 'open' GROUP BY case_kind, kind, stage"
            " ORDER BY case_kind, kind, stage",
            {"now": iso(self.clock())},
        ):
            labels = [row["case_kind"], row["kind"], row["stage"]]
            open_cases.add_metric(labels, row["n"])
            overdue.add_metric(labels, row["late"] or 0)
        yield open_cases
        yield overdue

        escalated = GaugeMetricFamily(
            "concordat_cases_escalated",
            "Open cases escalated now, by kind and the forum they were escalated to.",
            labels=["case_kind", "forum"],
        )
        for row in case_list.query(
            "SELECT case_kind, escalated_to, count(*) AS n FROM {t_case_list}"
            " WHERE status = 'open' AND escalated_to IS NOT NULL GROUP BY case_kind, escalated_to"
            " ORDER BY case_kind, escalated_to"
        ):
            escalated.add_metric([row["case_kind"], row["escalated_to"]], row["n"])
        yield escalated

        by_status = GaugeMetricFamily(
            "concordat_cases", "Every case by kind and status.", labels=["case_kind", "status"]
        )
        for row in case_list.query(
            "SELECT case_kind, status, count(*) AS n FROM {t_case_list} GROUP BY case_kind, status"
            " ORDER BY case_kind, status"
        ):
            by_status.add_metric([row["case_kind"], row["status"]], row["n"])
        yield by_status

        recorded = CounterMetricFamily(
            "concordat_decisions_recorded",
            "Decisions recorded, by forum and outcome (the decisions register).",
            labels=["forum", "outcome"],
        )
        for row in decisions.query(
            "SELECT forum, outcome, count(*) AS n FROM {t_decisions} GROUP BY forum, outcome ORDER BY forum, outcome"
        ):
            recorded.add_metric([row["forum"], row["outcome"]], row["n"])
        yield recorded

        newest = cases.max_notification_id()
        store = GaugeMetricFamily(
            "concordat_store_notifications", "The id of the newest event in the store's notification log."
        )
        store.add_metric([], newest)
        yield store
        position = GaugeMetricFamily(
            "concordat_projection_position", "The id of the newest event each view has processed.", labels=["view"]
        )
        lag = GaugeMetricFamily(
            "concordat_projection_lag_events", "How many events each view trails the store by.", labels=["view"]
        )
        quarantined = GaugeMetricFamily(
            "concordat_projection_quarantined_events",
            "Events each view could not project and holds in quarantine (`concordat projections retry`).",
            labels=["view"],
        )
        for name, view in views.items():
            at = view.max_tracking_id(cases.name) or 0
            position.add_metric([name], at)
            lag.add_metric([name], max(newest - at, 0))
            quarantined.add_metric([name], view.quarantined_count(cases.name))
        yield position
        yield lag
        yield quarantined


def _sweep_metrics(settings: Settings) -> Iterator[Metric]:
    """What the worker's last sweep found (`sweeps.read`); nothing before the first."""
    last = sweeps.read(settings)
    if last is None:
        return
    at = GaugeMetricFamily("concordat_sweep_last_timestamp_seconds", "When the worker's last sweep ran (Unix time).")
    at.add_metric([], last.at.timestamp())
    yield at
    missing = GaugeMetricFamily(
        "concordat_sweep_cases_without_workflow",
        "Live cases the last sweep found with no running workflow (it started one for each).",
    )
    missing.add_metric([], last.without_workflow)
    yield missing
    if last.orphans is not None:
        orphans = GaugeMetricFamily(
            "concordat_sweep_workflows_without_case", "Running workflows the last sweep found with no live case."
        )
        orphans.add_metric([], last.orphans)
        yield orphans
    repaired = CounterMetricFamily(
        "concordat_sweep_repaired", "Workflows the sweeps started for live cases that had none, in all."
    )
    repaired.add_metric([], last.repaired_total)
    yield repaired
    failed = CounterMetricFamily("concordat_sweep_failed", "Sweeps that failed (Temporal or the store away), in all.")
    failed.add_metric([], last.failed_total)
    yield failed


def registry(settings: Settings, *, clock: Callable[[], datetime] | None = None) -> CollectorRegistry:
    """A registry of the case metrics alone (no process or platform metrics), for one store."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(CasesCollector(settings, clock=clock))
    return reg


def exposition(reg: CollectorRegistry) -> tuple[bytes, str]:
    """The text exposition and its content type, for a web handler of one's own."""
    return generate_latest(reg), CONTENT_TYPE_LATEST


def asgi_app(settings: Settings) -> Callable[..., Any]:
    """An ASGI app serving the case metrics, for the web app to mount at `/metrics`."""
    return make_asgi_app(registry(settings))


def serve(settings: Settings, *, address: str | None = None) -> Any:
    """Serve the case metrics over HTTP on CONCORDAT_METRICS_ADDRESS (or `address`), in a daemon
    thread; returns the server (`server.server_address` is where it listens; `shutdown()` stops it)."""
    host, port = split_address(address or settings.metrics_address)
    server, _thread = start_http_server(port, addr=host, registry=registry(settings))
    log.warning("metrics.serving", address=f"{server.server_address[0]}:{server.server_address[1]}")
    return server


def temporal_runtime(address: str) -> Runtime:
    """A Temporal runtime whose SDK metrics Temporal's own Prometheus exporter serves on `address`."""
    host, port = split_address(address)
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=bind, counters_total_suffix=True, durations_as_seconds=True),
            global_tags={"service": "concordat-worker"},
        )
    )


def enable_temporal_sdk_metrics(settings: Settings) -> None:
    """Make every Temporal client this process connects from now on report on CONCORDAT_METRICS_ADDRESS.
    A process-wide default: call it once, first thing in the worker process."""
    Runtime.set_default(temporal_runtime(settings.metrics_address), error_if_already_set=True)
    log.warning("metrics.temporal_sdk", address=settings.metrics_address)
