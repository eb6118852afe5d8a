"""What the worker's sweep found is kept for `concordat health worker` and the metrics: the last
sweep's counts, or why it failed, and running totals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from concordat import metrics, sweeps
from concordat.settings import Settings

AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def test_each_sweep_is_kept_with_running_totals_and_read_in_one_line(sqlite_settings: Settings) -> None:
    assert sweeps.read(sqlite_settings) is None
    sweeps.record(sqlite_settings, cases=5, live=3, without_workflow=2, orphans=1, at=AT)
    sweeps.record(sqlite_settings, failed="Temporal unreachable", at=AT + timedelta(seconds=60))
    sweeps.record(sqlite_settings, cases=5, live=3, without_workflow=1, orphans=0, at=AT + timedelta(seconds=120))
    last = sweeps.read(sqlite_settings)
    assert last is not None
    assert (last.live, last.without_workflow, last.orphans, last.failed) == (3, 1, 0, "")
    assert (last.sweeps_total, last.repaired_total, last.failed_total) == (3, 3, 1)
    assert last.line(AT + timedelta(seconds=125)) == (
        "last sweep 5 s ago: 3 live cases, 1 without a workflow (given one; 3 in all), 0 workflows without a live case"
    )
    assert (sqlite_settings.data_dir / "sweep.json").stat().st_mode & 0o077 == 0  # the owner's alone


def test_a_failed_sweep_says_why(sqlite_settings: Settings) -> None:
    sweeps.record(sqlite_settings, failed="the store did not answer", at=AT)
    last = sweeps.read(sqlite_settings)
    assert last is not None and last.line(AT) == "last sweep 0 s ago failed (the store did not answer)"


def test_the_metrics_show_the_last_sweep(sqlite_settings: Settings) -> None:
    text = generate_latest(metrics.registry(sqlite_settings)).decode()
    assert "concordat_sweep_" not in text  # before the first sweep: nothing to say
    sweeps.record(sqlite_settings, cases=4, live=2, without_workflow=2, orphans=1, at=AT)
    text = generate_latest(metrics.registry(sqlite_settings)).decode()
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["concordat_sweep_last_timestamp_seconds"] == AT.timestamp()
    assert "concordat_sweep_cases_without_workflow 2.0" in text
    assert "concordat_sweep_workflows_without_case 1.0" in text
    assert "concordat_sweep_repaired_total 2.0" in text
    assert "concordat_sweep_failed_total 0.0" in text
