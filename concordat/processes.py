"""The long-running processes `concordat up` starts: the Temporal worker, the projection runner and
the outbox.

Each runs until SIGTERM or SIGINT, then stops cleanly: the worker finishes the activities it holds
(Temporal would retry them elsewhere anyway), the runners finish the event in hand.
"""

from __future__ import annotations

import asyncio
import signal
import smtplib
import sqlite3
import threading
import time
from contextlib import suppress
from typing import Any

import psycopg
import structlog
from eventsourcing.persistence import OperationalError, PersistenceError
from temporalio.client import Client
from temporalio.service import RPCError

from concordat import bootstrap, cycle_figures, engine, keys, metrics, schedules, sweeps
from concordat.leadership import OUTBOX_KEY, ReplayWatch, projection_leadership
from concordat.settings import Settings
from domain.application import CaseService
from domain.audit import Auditor

log = structlog.get_logger("concordat.process")
CONNECT_TIMEOUT_SECONDS = 60.0
SEAL_EVERY_SECONDS = 1.0
PAUSE_POLL_SECONDS = 0.5
PAUSED = -1  # `_run_projection_runners` stepped aside for an audit replay (not an exit code)


def _stop_on_signals(stop: threading.Event | asyncio.Event, loop: asyncio.AbstractEventLoop | None = None) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        if loop is not None:
            loop.add_signal_handler(sig, stop.set)
        else:
            signal.signal(sig, lambda *_: stop.set())


async def _connect_with_patience(settings: Settings) -> object:
    """Temporal may still be starting (under `concordat up` it starts beside us)."""
    deadline = time.monotonic() + CONNECT_TIMEOUT_SECONDS
    while True:
        try:
            return await bootstrap.connect(settings)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)  # waiting for a server to come up, not papering over a race


async def _open_store_with_patience(settings: Settings) -> CaseService:
    """The database may be restarting; activities retry through Temporal, but the store must open."""
    deadline = time.monotonic() + CONNECT_TIMEOUT_SECONDS
    while True:
        try:
            return bootstrap.open_cases(settings)
        except (OperationalError, PersistenceError, psycopg.OperationalError) as err:
            if time.monotonic() > deadline:
                raise
            log.warning("worker.store_unavailable", error=str(err).splitlines()[0] if str(err) else "")
            await asyncio.sleep(1)  # waiting for the database to come back


def run_worker(settings: Settings) -> int:
    if settings.metrics_address:  # Temporal's SDK metrics, before the first client connects
        metrics.enable_temporal_sdk_metrics(settings)

    async def main() -> int:
        stop = asyncio.Event()
        _stop_on_signals(stop, asyncio.get_running_loop())
        try:
            client = await _connect_with_patience(settings)
        except RuntimeError as err:
            log.error("worker.no_temporal", address=settings.temporal_address, error=str(err).splitlines()[0])
            return 69
        try:
            app = await _open_store_with_patience(settings)
        except (OperationalError, PersistenceError, psycopg.OperationalError) as err:
            log.error("worker.no_store", error=str(err).splitlines()[0] if str(err) else type(err).__name__)
            return 75
        try:
            await engine.bind_store(client, settings, app, bootstrap.describe_store(settings))  # type: ignore[arg-type]
        except engine.OtherStoreError as err:
            log.error("worker.other_store", error=str(err))
            return 1
        queue = engine.task_queue(settings, app)
        parts = bootstrap.build_worker(
            client,
            app,
            queue,  # type: ignore[arg-type]
            command_key=keys.command_key(settings),
            pause_after_commit=settings.fault_pause_after_commit,
            pause_once_file=settings.fault_pause_once_file,
            figures=cycle_figures.figures_for(settings, app),  # type: ignore[arg-type]
        )
        try:
            synced = await schedules.sync(client, app.policy, queue)
            log.warning("worker.schedules", created=synced.created, updated=synced.updated, deleted=synced.deleted)
        except RPCError as err:  # another worker updating it at the same moment: theirs is the same policy
            log.warning("worker.schedules_failed", error=str(err).splitlines()[0] if str(err) else type(err).__name__)
        async with parts.worker:
            log.warning("worker.ready", task_queue=queue, temporal=settings.temporal_address)
            watching = asyncio.create_task(_watch(client, settings, app, stop))  # type: ignore[arg-type]
            await stop.wait()
            await watching
        parts.executor.shutdown(wait=True)
        app.close()
        log.warning("worker.stopped")
        return 0

    return asyncio.run(main())


async def _watch(client: Client, settings: Settings, app: CaseService, stop: asyncio.Event) -> None:
    """Every CONCORDAT_WATCH_SECONDS (0: never), `engine.sweep`: a live case whose workflow ended outside
    the engine (terminated or cancelled through Temporal's UI or CLI, timed out, missing) is recorded
    and its workflow started again. A sweep that fails is logged and tried again next time."""
    if not settings.watch_seconds:
        return
    while not stop.is_set():
        try:
            found = await engine.sweep(client, settings, app)
            if found.interrupted or found.started or found.orphans:
                log.warning("worker.sweep", interrupted=found.interrupted, started=found.started, orphans=found.orphans)
            _keep_sweep(
                settings,
                cases=found.cases,
                live=found.live,
                without_workflow=found.without_workflow,
                orphans=found.orphans,
            )
        except Exception as err:  # noqa: BLE001 - Temporal or the store away for a moment: the next sweep tries again
            error = str(err).splitlines()[0] if str(err) else type(err).__name__
            log.warning("worker.sweep_failed", error=error)
            _keep_sweep(settings, failed=error)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.watch_seconds)


def _keep_sweep(settings: Settings, **found: Any) -> None:
    """Record the sweep for `concordat health worker` and the metrics; a full or read-only disk
    must not stop the sweeps themselves."""
    try:
        sweeps.record(settings, **found)
    except OSError as err:
        log.warning("worker.sweep_not_recorded", error=str(err))


# The projection runner's own reconnection to a store that went away: 1 s, doubling to 30 s, back
# to 1 s once it has run a minute.
RECONNECT_FIRST_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 30.0
RECONNECT_STABLE_SECONDS = 60.0
STORE_ERRORS = (OperationalError, PersistenceError, psycopg.OperationalError, sqlite3.OperationalError)


def run_projections(settings: Settings) -> int:
    """Lead the views (or stand by), and step aside while `concordat audit replay` rebuilds them
    (`concordat.leadership`: the replay asks by holding the replay lock; this process stops its views,
    releases its leadership, and takes it back, from the rebuilt positions, once the replay is done
    or dead)."""
    stop = threading.Event()
    _stop_on_signals(stop)
    if settings.metrics_address:  # standing by or leading: the views' lag is the same to read
        metrics.serve(settings)
    watch = ReplayWatch(settings)
    delay = RECONNECT_FIRST_SECONDS
    try:
        while True:
            started = time.monotonic()
            try:
                with projection_leadership(settings, stop, hold_off=watch.requested) as leading:
                    if not leading:
                        log.warning("projections.stopped", leading=False)
                        return 0
                    code = _run_projection_runners(settings, stop, watch)
            except STORE_ERRORS as err:  # the store went away (a restart, a full disk) under the runners or the lock
                log.warning("projections.store_unavailable", error=_first_line(err), retry_in=delay)
                code = None
            if code == PAUSED:  # an audit replay holds the views: wait for it to finish or die
                while watch.requested() and not stop.wait(PAUSE_POLL_SECONDS):
                    pass
                if stop.is_set():
                    log.warning("projections.stopped", paused=True)
                    return 0
                log.warning("projections.resumed")
                delay = RECONNECT_FIRST_SECONDS
                continue
            if code is not None:
                return code
            if time.monotonic() - started >= RECONNECT_STABLE_SECONDS:
                delay = RECONNECT_FIRST_SECONDS
            if stop.wait(delay):
                log.warning("projections.stopped")
                return 0
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)
            log.warning("projections.reconnecting")
    finally:
        watch.close()


class _Sealing:
    """The leading projection runner seals the log (`domain/ledger.py`) about once a second while
    events arrive. A failure to seal is logged and tried again; it never stops the views."""

    def __init__(self, settings: Settings) -> None:
        self.app = bootstrap.open_cases(settings)
        self.sealer = Auditor(self.app).sealer(keys.audit_key(settings))
        self.next = 0.0

    def tick(self) -> None:
        if time.monotonic() < self.next:
            return
        self.next = time.monotonic() + SEAL_EVERY_SECONDS
        try:
            for done in self.sealer.seal_all():
                log.info("ledger.sealed", seal=done.seq, first=done.first, last=done.last, events=done.count)
        except Exception as err:  # noqa: BLE001 - the store may be restarting: seal on the next tick
            log.warning("ledger.seal_failed", error=str(err).splitlines()[0] if str(err) else type(err).__name__)

    def close(self) -> None:
        self.app.close()


def _run_projection_runners(settings: Settings, stop: threading.Event, watch: ReplayWatch) -> int | None:
    """Run the views until `stop` (0), an audit replay's request (PAUSED), or a failure that is not
    the store's (1, to be restarted by a supervisor); None when the store went away under a runner:
    `run_projections` reconnects, leading again first (a lock held on a PostgreSQL connection is gone
    with it)."""
    runners = bootstrap.projection_runners(settings)
    sealing = _Sealing(settings)
    try:
        sealing.tick()  # what is there already, before the views start reading
        for runner in runners:
            runner.__enter__()
        log.warning("projections.ready", views=[r.projection.name for r in runners])
        while not stop.is_set():
            sealing.tick()
            for runner in runners:
                if runner.is_interrupted.is_set() and not stop.is_set():
                    try:
                        runner.run_forever(timeout=0)  # re-raises the error that stopped its thread
                    except STORE_ERRORS as err:
                        log.warning(
                            "projections.store_unavailable", view=runner.projection.name, error=_first_line(err)
                        )
                        return None
                    except Exception:  # the process boundary: log it whole and exit non-zero
                        log.exception("projections.runner_failed", view=runner.projection.name)
                    return 1
            if watch.requested():  # logged before the replay can hold the views, so the log reads in order
                log.warning("projections.paused", reason="an audit replay asks for the views")
                return PAUSED  # the views' threads stop below, after the event in hand, then leadership goes
            stop.wait(PAUSE_POLL_SECONDS)
    finally:
        for runner in runners:
            with suppress(*STORE_ERRORS):  # closing what a lost store left behind
                runner.__exit__(None, None, None)
            with suppress(Exception):  # the view's own connections, which the runner leaves open
                runner.view.datastore.close()
        with suppress(*STORE_ERRORS):
            sealing.close()
    log.warning("projections.stopped")
    return 0


def run_outbox(settings: Settings) -> int:
    """The outbox: its runner writes a row per reminder or escalation and person (`projections/outbox.py`);
    this loop sends them (`workers/mailer.py`) every CONCORDAT_OUTBOX_POLL_SECONDS. One process at a time
    leads (two would send the same row twice); with no CONCORDAT_SMTP_HOST it fills and sends nothing."""
    problem = bootstrap.smtp_problem(settings)
    if problem:
        log.error("outbox.misconfigured", error=problem)
        return 2
    stop = threading.Event()
    _stop_on_signals(stop)
    with projection_leadership(settings, stop, what="outbox", key=OUTBOX_KEY) as leading:
        if not leading:
            log.warning("outbox.stopped", leading=False)
            return 0
        return _run_outbox(settings, stop)


def _run_outbox(settings: Settings, stop: threading.Event) -> int:
    app = bootstrap.open_cases(settings)
    runner = bootstrap.outbox_runner(settings, app)
    view = bootstrap.open_outbox(settings)
    mailer = bootstrap.mailer(settings, view, app)
    try:
        runner.__enter__()
        smtp = bootstrap.smtp(settings)
        log.warning(
            "outbox.ready",
            smtp=f"{smtp.host}:{smtp.port_or_default} ({smtp.tls})" if smtp else "none: nothing is sent",
            digest=settings.smtp_digest_at.isoformat("minutes") if settings.smtp_digest else "off",
        )
        while not stop.is_set():
            if runner.is_interrupted.is_set():
                try:
                    runner.run_forever(timeout=0)  # re-raises the error that stopped its thread
                except Exception:  # the process boundary: log it whole and exit non-zero
                    log.exception("outbox.runner_failed")
                return 1
            try:
                mailer.send_due()
            except (OSError, smtplib.SMTPException) as err:  # the server away, or refusing for now: next pass
                log.warning("outbox.send_failed", error=_first_line(err))
            except (OperationalError, PersistenceError, psycopg.OperationalError, sqlite3.OperationalError) as err:
                log.warning("outbox.store_unavailable", error=_first_line(err))
            except Exception:  # the process boundary: log it whole and exit non-zero
                log.exception("outbox.sender_failed")
                return 1
            stop.wait(settings.outbox_poll_seconds)
    finally:
        runner.__exit__(None, None, None)
        view.datastore.close()
        app.close()
    log.warning("outbox.stopped")
    return 0


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
