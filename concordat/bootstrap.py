"""The composition root: settings → logging → application → activities → Temporal client → workers
and projection runners. The CLI, the tests and (later) the web app build the engine here; nothing
connects or reads configuration at import time.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from eventsourcing.persistence import InfrastructureFactory, PersistenceError
from eventsourcing.utils import Environment

from concordat.settings import Settings
from domain.policy import Policy
from domain.store import store_id

if TYPE_CHECKING:
    from eventsourcing.projection import Projection
    from temporalio.client import Client
    from temporalio.converter import DataConverter
    from temporalio.service import TLSConfig
    from temporalio.worker import Worker

    from domain.application import CaseService
    from projections.case_list import CaseListView
    from projections.decisions import DecisionsView
    from projections.outbox import OutboxView
    from projections.public_health import PublicHealthView
    from projections.quarantine import RetryResult
    from workers.cycles import Figures
    from workers.mailer import Mailer, Smtp
    from workers.projection_runner import GuardedProjectionRunner


# The views the projection runner keeps, by name (each projection's `name`); their classes are
# `PROJECTIONS`, imported when first asked for: they import every aggregate of the domain, which
# opening the store for `concordat show` does not need (tests/e2e/test_cli_imports.py).
VIEW_NAMES = ("case_list", "decisions", "public_health")
OUTBOX_VIEW = "outbox"


def projections() -> tuple[type[Projection[Any]], ...]:
    """The projections the runner runs, one per name in `VIEW_NAMES`."""
    from projections.case_list import CaseListProjection
    from projections.decisions import DecisionsProjection
    from projections.public_health import PublicHealthProjection

    return (CaseListProjection, DecisionsProjection, PublicHealthProjection)


def __getattr__(name: str) -> tuple[type[Projection[Any]], ...]:
    """`bootstrap.PROJECTIONS`, made when first read (PEP 562)."""
    if name == "PROJECTIONS":
        return projections()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


MIGRATION_ATTEMPTS = 5
T = TypeVar("T")


def configure_logging(settings: Settings) -> None:
    from concordat import logs

    logs.configure(settings.log_format, settings.log_level)


def store_env(settings: Settings) -> dict[str, str]:
    """eventsourcing's settings for the event store and every view, built from ours. No process makes
    tables when it opens the store: `concordat migrate` does, once (`concordat.schema`)."""
    return {**_persistence_env(settings), **_cipher_env(settings), "CREATE_TABLE": "no"}


def _cipher_env(settings: Settings) -> dict[str, str]:
    """Encryption at rest of event state (eventsourcing's cipher; compression first, as encrypted
    bytes do not compress). The views are not encrypted: they hold what the CLI lists."""
    key = settings.cipher_key.get_secret_value()
    if not key:
        return {}
    return {
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
        "CIPHER_KEY": key,
        "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
    }


def _persistence_env(settings: Settings) -> dict[str, str]:
    from concordat import private

    if settings.uses_postgres:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(settings.database_url)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": str(info.get("dbname") or "postgres"),
            "POSTGRES_HOST": str(info.get("host") or "127.0.0.1"),
            "POSTGRES_PORT": str(info.get("port") or "5432"),
            "POSTGRES_USER": str(info.get("user") or "postgres"),
            "POSTGRES_PASSWORD": str(info.get("password") or ""),
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_PRE_PING": "y",
        }
        recorder = "Stamped" if settings.pg_recorder == "stamped" else "Locking"
        env["APPLICATION_RECORDER_TOPIC"] = f"projections.pg_recorder:{recorder}PostgresApplicationRecorder"
        return env
    data = settings.data_dir.resolve()
    if read_only(settings):
        return _read_only_env(data)
    private.make_dirs(data / "views")
    # Made 0600 before SQLite opens them: SQLite gives a database's journal and WAL files its mode.
    private.make_file(data / "events.sqlite")
    for name in (*VIEW_NAMES, OUTBOX_VIEW):
        private.make_file(data / "views" / f"{name}.sqlite")
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(data / "events.sqlite"),
        "SQLITE_LOCK_TIMEOUT": "10",
        "APPLICATION_RECORDER_TOPIC": "projections.polling:PollingSQLiteApplicationRecorder",
    }
    # eventsourcing's SQLite views share one `tracking` table per database, so each view keeps
    # its own file: each then has its own position, and rebuilds on its own.
    for name in (*VIEW_NAMES, OUTBOX_VIEW):
        env[f"{name.upper()}_SQLITE_DBNAME"] = str(data / "views" / f"{name}.sqlite")
    return env


def read_only(settings: Settings) -> bool:
    """An SQLite store in a data dir this process cannot write (an auditor's copy on a read-only
    mount, `chmod -w`, `chattr +i`): it is opened read-only, so read commands work and a write is
    refused as such (`read_only_refusal`, exit 77)."""
    if settings.uses_postgres:
        return False
    data = settings.data_dir.resolve()
    return (data / "events.sqlite").is_file() and not os.access(data, os.W_OK)


def _read_only_env(data: Path) -> dict[str, str]:
    """SQLite URIs that open each database read-only. Without its -wal and -shm files (a copy made
    after the engine stopped holds none), SQLite cannot open a WAL database read-only in a directory
    it cannot write unless told the file will not change (`immutable=1`); with them, `mode=ro` reads
    the log too."""

    def uri(path: Path) -> str:
        logged = path.with_name(path.name + "-wal").exists() and path.with_name(path.name + "-shm").exists()
        return f"file:{quote(str(path))}?mode=ro" + ("" if logged else "&immutable=1")

    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": uri(data / "events.sqlite"),
        "SQLITE_LOCK_TIMEOUT": "10",
        "APPLICATION_RECORDER_TOPIC": "projections.polling:PollingSQLiteApplicationRecorder",
    }
    for name in (*VIEW_NAMES, OUTBOX_VIEW):
        env[f"{name.upper()}_SQLITE_DBNAME"] = uri(data / "views" / f"{name}.sqlite")
    return env


READ_ONLY_WORDS = ("attempt to write a readonly database", "readonly database")


def read_only_refusal(settings: Settings) -> str:
    return (
        f"the store is read-only ({describe_store(settings)}: its data directory cannot be written): "
        "read commands (show, list, history, audit) work; this command writes"
    )


def describe_store(settings: Settings) -> str:
    """Which store this is, in words a person recognises, and without its password."""
    if settings.uses_postgres:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(settings.database_url)
        where = f"{info.get('host') or '127.0.0.1'}:{info.get('port') or '5432'}/{info.get('dbname') or 'postgres'}"
        return f"PostgreSQL {where}"
    return f"SQLite {settings.data_dir.resolve() / 'events.sqlite'}"


def load_policy(settings: Settings) -> Policy:
    return Policy.load(settings.policy_file)


class StoreConnectionError(ConnectionError):
    """The store's database cannot be reached as configured (no such database, host or role, a
    refused password or connection): the database's own words, at once, rather than a pool's timeout."""


def check_database(settings: Settings) -> None:
    """One direct connection to the configured PostgreSQL, to name a wrong URL's cause at once: the
    pool eventsourcing keeps would retry for seconds and then say only that it got no connection."""
    if not settings.uses_postgres:
        return
    import psycopg

    try:
        psycopg.connect(settings.database_url, connect_timeout=5).close()
    except psycopg.OperationalError as err:
        cause = _cause(err)
        if not any(word in cause for word in _MISCONFIGURED):
            raise  # down or restarting (refused, no socket, a timeout): "store unavailable, try again"
        raise StoreConnectionError(f"cannot connect to the store ({describe_store(settings)}): {cause}") from None


# What PostgreSQL (or libpq) says when the URL itself is wrong: waiting would not mend it.
_MISCONFIGURED = (
    "does not exist",
    "password authentication failed",
    "no pg_hba.conf entry",
    "failed to resolve host",
    "could not translate host name",
    "invalid connection option",
    "invalid integer value",
)


def _cause(err: BaseException) -> str:
    """The database's own reason, from a libpq message such as 'connection failed: connection to
    server … failed: FATAL:  database "x" does not exist'."""
    text = " ".join(str(err).split())
    for marker in ("FATAL:", "failed:"):
        if marker in text:
            text = text.rsplit(marker, 1)[1].strip()
            break
    return text or type(err).__name__


def open_cases(settings: Settings, policy: Policy | None = None) -> CaseService:
    """The store, once it is known that this process's cipher key is the store's (`store_key`):
    a process with no key, or another, is refused before it can write anything."""
    from concordat import schema, store_key
    from domain.application import CaseService

    if not schema.ensured(settings):
        check_database(settings)  # once a process: a wrong database URL is named at once
    app = CaseService(
        store_env(settings),
        policy=policy or load_policy(settings),
        snapshot_interval=settings.snapshot_interval or None,
    )
    try:
        schema.ensure(settings, app.recorder.datastore)  # type: ignore[attr-defined]
        store_key.check(app, settings.cipher_key.get_secret_value())
    except BaseException:
        app.close()
        raise
    return app


def view_classes(settings: Settings) -> dict[str, type[Any]]:
    """The views, which can always be rebuilt from zero (`concordat audit replay` does). Not the
    outbox: rebuilding it would send every recent reminder again (`outbox_class`)."""
    from projections.case_list import PostgresCaseListView, SQLiteCaseListView
    from projections.decisions import PostgresDecisionsView, SQLiteDecisionsView
    from projections.public_health import PostgresPublicHealthView, SQLitePublicHealthView

    if settings.uses_postgres:
        return {
            "case_list": PostgresCaseListView,
            "decisions": PostgresDecisionsView,
            "public_health": PostgresPublicHealthView,
        }
    return {"case_list": SQLiteCaseListView, "decisions": SQLiteDecisionsView, "public_health": SQLitePublicHealthView}


def outbox_class(settings: Settings) -> type[OutboxView]:
    from projections.outbox import PostgresOutboxView, SQLiteOutboxView

    return PostgresOutboxView if settings.uses_postgres else SQLiteOutboxView


def open_view(settings: Settings, name: str) -> Any:
    """A view for reading, built the way its projection runner builds it."""
    from concordat import schema

    if not schema.ensured(settings):
        open_cases(settings).close()  # the store's tables first (a new store), and its key checked
    env = Environment(name, store_env(settings))
    return _first_run_safe(
        lambda: InfrastructureFactory.construct(env=env).tracking_recorder(
            outbox_class(settings) if name == OUTBOX_VIEW else view_classes(settings)[name]
        )
    )


def _first_run_safe(make: Callable[[], T]) -> T:
    """Build a view, or its runner, once more if another process created its tables at the same moment
    (the first start of a deployment: eventsourcing then fails to record its migration marker twice;
    the second attempt finds the tables and the marker in place)."""
    for attempt in range(MIGRATION_ATTEMPTS):
        try:
            return make()
        except PersistenceError:
            if attempt == MIGRATION_ATTEMPTS - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def open_case_list(settings: Settings) -> CaseListView:
    return open_view(settings, "case_list")


def open_decisions(settings: Settings) -> DecisionsView:
    return open_view(settings, "decisions")


def open_public_health(settings: Settings) -> PublicHealthView:
    return open_view(settings, "public_health")


def open_outbox(settings: Settings) -> OutboxView:
    return open_view(settings, "outbox")


def outbox_runner(settings: Settings, app: CaseService) -> GuardedProjectionRunner:
    """The outbox's own runner (`projections/outbox.py`): not one of `PROJECTIONS`, so that nothing
    rebuilds it from zero and sends everything again."""
    from domain.application import CaseService
    from projections.outbox import outbox_projection
    from workers.projection_runner import GuardedProjectionRunner

    projection = outbox_projection(app.policy, store_id(app), timedelta(days=settings.outbox_max_age_days))
    return _first_run_safe(
        lambda: GuardedProjectionRunner(
            application_class=CaseService,
            projection_class=projection,
            view_class=outbox_class(settings),
            env=store_env(settings),
        )
    )


def smtp(settings: Settings) -> Smtp | None:
    """The SMTP server to send through, or None when CONCORDAT_SMTP_HOST is empty."""
    from workers.mailer import Smtp

    if not settings.smtp_host:
        return None
    return Smtp(
        host=settings.smtp_host,
        port=settings.smtp_port,
        tls=settings.smtp_tls,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value(),
        sender=settings.smtp_sender,
    )


def smtp_problem(settings: Settings) -> str | None:
    """What keeps the SMTP settings from working, in one line, or None."""
    if settings.smtp_host and not settings.smtp_sender:
        return "CONCORDAT_SMTP_HOST is set but CONCORDAT_SMTP_SENDER is empty: set the From address"
    return None


def mailer(settings: Settings, view: OutboxView, app: CaseService) -> Mailer:
    from workers.mailer import Mailer

    return Mailer(
        view=view,
        smtp=smtp(settings),
        store=store_id(app),
        zone=app.rules.calendar.zone,
        digest_at=settings.smtp_digest_at if settings.smtp_digest else None,
        pause_after_send=settings.fault_pause_after_send,
    )


def projection_runners(settings: Settings) -> list[GuardedProjectionRunner]:
    """One runner per view, each following the cases' notification log; an event a view cannot
    project is quarantined in that view (`projections.quarantine`), not a stop."""
    from domain.application import CaseService
    from workers.projection_runner import GuardedProjectionRunner

    open_cases(settings).close()  # the runners' own stores are made by eventsourcing: check the key first
    env = store_env(settings)
    views = view_classes(settings)
    return [
        _first_run_safe(
            lambda projection=projection: GuardedProjectionRunner(
                application_class=CaseService,
                projection_class=projection,
                view_class=views[projection.name],
                env=env,
            )
        )
        for projection in projections()
    ]


def data_converter(settings: Settings) -> DataConverter:
    """How every Temporal client of the engine (CLI, web app, workers, the tests' environments) turns
    values into payloads: pydantic models as JSON, and with a cipher key every payload encrypted
    (`concordat.codec`) and failure messages moved into an encrypted payload, so that Temporal's
    state, history and UI hold no case text. Without a key payloads go as they are, and one
    encrypted by another process is refused in one line."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.converter import DefaultFailureConverterWithEncodedAttributes

    from concordat import codec

    encrypting = bool(settings.cipher_key.get_secret_value())
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec.from_settings(settings),
        failure_converter_class=(
            DefaultFailureConverterWithEncodedAttributes
            if encrypting
            else pydantic_data_converter.failure_converter_class
        ),
    )


def temporal_tls(settings: Settings) -> TLSConfig | bool:
    """How to reach Temporal: plain (the dev server), or TLS with the system's roots or a CA of our
    own, a client certificate for mTLS, and the name to check the server's certificate against."""
    from temporalio.service import TLSConfig

    files = (settings.temporal_tls_ca_file, settings.temporal_tls_cert_file, settings.temporal_tls_key_file)
    if not any(files) and not settings.temporal_tls_server_name:
        return settings.temporal_tls or bool(settings.temporal_api_key.get_secret_value())
    ca, cert, key = (Path(f).read_bytes() if f else None for f in files)
    return TLSConfig(
        server_root_ca_cert=ca,
        domain=settings.temporal_tls_server_name or None,
        client_cert=cert,
        client_private_key=key,
    )


async def connect(settings: Settings) -> Client:
    from temporalio.client import Client

    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        tls=temporal_tls(settings),
        api_key=settings.temporal_api_key.get_secret_value() or None,
    )


@dataclass
class WorkerParts:
    worker: Worker
    executor: ThreadPoolExecutor


def build_worker(
    client: Client,
    app: CaseService,
    task_queue: str,
    *,
    command_key: bytes,
    pause_after_commit: float = 0.0,
    pause_once_file: Path | None = None,
    figures: Figures | None = None,
) -> WorkerParts:
    """A worker for the store's workflows; its activities act only on commands signed with `command_key`.
    `figures` takes a report's figures when a schedule fires (`concordat.cycle_figures`); without it, a
    report attaches the live cases only (the store's; no view is read)."""
    from temporalio.worker import Worker

    from workers.activities import CaseActivities
    from workers.cycles import CycleActivities, case_figures
    from workflows.case import ALL_WORKFLOWS
    from workflows.schedules import ScheduledCaseWorkflow
    from workflows.store_binding import StoreBindingWorkflow

    activities = CaseActivities(
        app, command_key=command_key, pause_after_commit=pause_after_commit, pause_once_file=pause_once_file
    )
    cycles = CycleActivities(app, figures or (lambda _name, at: {"cases": case_figures(app, at)}))
    executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="activity")
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[*ALL_WORKFLOWS, StoreBindingWorkflow, ScheduledCaseWorkflow],
        activities=[*activities.all(), *cycles.all()],
        activity_executor=executor,
    )
    return WorkerParts(worker=worker, executor=executor)


def data_path(settings: Settings, *parts: str) -> Path:
    from concordat import private

    path = settings.data_dir.resolve().joinpath(*parts)
    private.make_dirs(path.parent)
    return path


def quarantined(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Every view's quarantined events, oldest first (`projections.quarantine`)."""
    from domain.application import CaseService

    found: dict[str, list[dict[str, Any]]] = {}
    for projection in projections():
        view = open_view(settings, projection.name)
        try:
            found[projection.name] = view.quarantined(CaseService.name)
        finally:
            view.datastore.close()
    return found


def retry_quarantined(settings: Settings, names: list[str] | None = None) -> list[RetryResult]:
    """Project each view's quarantined events again (`concordat projections retry`)."""
    from projections.quarantine import retry

    cases = open_cases(settings)
    results = []
    try:
        for projection_class in projections():
            if names and projection_class.name not in names:
                continue
            view = open_view(settings, projection_class.name)
            try:
                results.append(retry(projection_class(view=view), cases.recorder, cases.mapper, cases.name))
            finally:
                view.datastore.close()
    finally:
        cases.close()
    return results
