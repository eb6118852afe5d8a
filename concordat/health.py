"""`concordat health ROLE`: is this role able to do its work? One line on stdout, exit 0 (healthy) or 1.

For container health checks and Kubernetes probes, run beside the process with the same CONCORDAT_*
settings:

- worker: Temporal answers at CONCORDAT_TEMPORAL_ADDRESS (namespace included) and the store answers;
  the line says what the last sweep found (`concordat/sweeps.py`): live cases without a workflow
  (given one), workflows without a live case, or why it failed;
- projections: the store answers, every view can be read, and (with --max-lag N) no view trails
  the store by more than N events; events a view quarantined are counted in the line (and, with
  --max-quarantined N, more than N is unhealthy);
- web: GET /healthz on CONCORDAT_HTTP_ADDRESS answers 200;
- outbox: the store answers, the outbox can be read, and (with --max-lag N) it trails the store by no
  more than N events; the line counts the rows by state and says whether an SMTP server is set (with
  none, the outbox fills and nothing is sent: healthy, and said so).

Every check is bounded by --timeout; a check that cannot finish in time is a failure.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from concordat.settings import Settings

ROLES = ("worker", "projections", "web", "outbox")


def store_errors() -> tuple[type[BaseException], ...]:
    """What a store that cannot be reached raises (imported when a check runs, not with the CLI)."""
    import psycopg
    from eventsourcing.persistence import OperationalError, PersistenceError

    return (OperationalError, PersistenceError, psycopg.Error, sqlite3.Error, OSError)


class Unhealthy(Exception):
    pass


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _bounded(what: str, timeout: float, fn: Any, *args: Any) -> Any:
    """Run a blocking check in a thread, and give up on it after `timeout` seconds."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="health")
    try:
        return pool.submit(fn, *args).result(timeout=timeout)
    except FutureTimeout:
        raise Unhealthy(f"{what} did not answer within {timeout:g} s") from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _store(settings: Settings) -> int:
    from concordat import bootstrap

    try:
        cases = bootstrap.open_cases(settings)
        try:
            return cases.max_notification_id()
        finally:
            cases.close()
    except store_errors() as err:
        raise Unhealthy(f"store unreachable ({_first_line(err)})") from None


def _views(settings: Settings, newest: int) -> dict[str, tuple[int, int]]:
    """Each view's lag behind the store and how many events it holds in quarantine."""
    from concordat import bootstrap
    from domain.application import CaseService

    found = {}
    for projection in bootstrap.PROJECTIONS:
        try:
            view = bootstrap.open_view(settings, projection.name)
            try:
                position = view.max_tracking_id(CaseService.name) or 0
                held = view.quarantined_count(CaseService.name)
            finally:
                view.datastore.close()
        except store_errors() as err:
            raise Unhealthy(f"view {projection.name} unreadable ({_first_line(err)})") from None
        found[projection.name] = (max(newest - position, 0), held)
    return found


def _outbox(settings: Settings, newest: int) -> tuple[int, dict[str, int]]:
    """The outbox's lag, and its rows by state (`quarantined`: events it could not project)."""
    from concordat import bootstrap
    from domain.application import CaseService

    try:
        view = bootstrap.open_outbox(settings)
        try:
            counts = {**view.counts(), "quarantined": view.quarantined_count(CaseService.name)}
            return max(newest - (view.max_tracking_id(CaseService.name) or 0), 0), counts
        finally:
            view.datastore.close()
    except store_errors() as err:
        raise Unhealthy(f"outbox unreadable ({_first_line(err)})") from None


def _outbox_line(settings: Settings, lag: int, counts: dict[str, int]) -> str:
    from concordat import bootstrap

    states = ("pending", "sent", "no_address", "refused", "expired")
    text = f"outbox lag {lag}; " + ", ".join(f"{counts.get(s, 0)} {s.replace('_', ' ')}" for s in states)
    if counts.get("quarantined"):
        text += f" ({counts['quarantined']} events quarantined: see the outbox's log)"
    smtp = bootstrap.smtp(settings)
    if smtp is None:
        return f"{text}; no SMTP server (CONCORDAT_SMTP_HOST is empty): nothing is sent"
    digest = f", daily digest at {settings.smtp_digest_at.isoformat('minutes')}" if settings.smtp_digest else ""
    return f"{text}; sending through {smtp.host}:{smtp.port_or_default} ({smtp.tls}){digest}"


def _temporal(settings: Settings, timeout: float) -> None:
    from concordat import bootstrap

    async def attempt() -> None:
        await asyncio.wait_for(bootstrap.connect(settings), timeout)

    try:
        asyncio.run(attempt())
    except TimeoutError:
        raise Unhealthy(f"Temporal at {settings.temporal_address} did not answer within {timeout:g} s") from None
    except RuntimeError as err:
        raise Unhealthy(f"Temporal unreachable at {settings.temporal_address} ({_first_line(err)})") from None


def _local(address: str) -> str:
    """Where to reach a server that listens on `address` from the same host."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):  # noqa: S104 - a wildcard bind, reached through loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _web(settings: Settings, timeout: float) -> str:
    import urllib.error  # here: the CLI's other commands need no HTTP client
    import urllib.request

    url = f"http://{_local(settings.http_address)}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http to our own server
            status = response.status
    except urllib.error.HTTPError as err:
        raise Unhealthy(f"GET {url} answered {err.code}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise Unhealthy(
            f"GET {url} failed ({_first_line(reason) if isinstance(reason, BaseException) else reason})"
        ) from None
    if status != 200:
        raise Unhealthy(f"GET {url} answered {status}")
    return url


def check(
    role: str, settings: Settings, *, timeout: float, max_lag: int | None, max_quarantined: int | None = None
) -> str:
    """What is healthy about `role`, as one line; raises Unhealthy with the reason otherwise."""
    from concordat import bootstrap, sweeps

    if role == "worker":
        _temporal(settings, timeout)
        newest = _bounded("the store", timeout, _store, settings)
        last = sweeps.read(settings)
        return (
            f"temporal {settings.temporal_address} namespace {settings.temporal_namespace} reachable; "
            f"store reachable ({newest} events); " + (last.line() if last else "no sweep yet")
        )
    if role == "projections":
        newest = _bounded("the store", timeout, _store, settings)
        views = _bounded("the views", timeout, _views, settings, newest)
        behind = {name: lag for name, (lag, _) in views.items() if max_lag is not None and lag > max_lag}
        text = ", ".join(
            f"{name} lag {lag}" + (f" ({held} quarantined)" if held else "") for name, (lag, held) in views.items()
        )
        held = sum(h for _, h in views.values())
        if held:
            text += f"; {held} quarantined in all: see `concordat projections quarantined`, then retry"
        if behind:
            raise Unhealthy(f"{text}: more than {max_lag} events behind the store ({newest} events)")
        if max_quarantined is not None and held > max_quarantined:
            raise Unhealthy(f"{text}: more than {max_quarantined} events quarantined")
        return f"store reachable ({newest} events); {text}"
    if role == "outbox":
        problem = bootstrap.smtp_problem(settings)
        if problem:
            raise Unhealthy(problem)
        newest = _bounded("the store", timeout, _store, settings)
        lag, counts = _bounded("the outbox", timeout, _outbox, settings, newest)
        line = _outbox_line(settings, lag, counts)
        if max_lag is not None and lag > max_lag:
            raise Unhealthy(f"{line}: more than {max_lag} events behind the store ({newest} events)")
        return f"store reachable ({newest} events); {line}"
    url = _web(settings, timeout)
    return f"GET {url} answered 200"


@click.command("health")
@click.argument("role", type=click.Choice(ROLES))
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True, help="Seconds each check may take."
)
@click.option(
    "--max-lag",
    type=click.IntRange(min=0),
    default=None,
    help="projections, outbox: unhealthy when a view (or the outbox) trails the store by more than this many events.",
)
@click.option(
    "--max-quarantined",
    type=click.IntRange(min=0),
    default=None,
    help="projections: unhealthy when the views hold more than this many events in quarantine "
    "(by default they are reported, not a failure: a restart would not release them).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")
def health_command(role: str, timeout: float, max_lag: int | None, max_quarantined: int | None, as_json: bool) -> None:
    """Check that ROLE (worker, projections, web or outbox) can do its work; one line, exit 0 or 1."""

    from pydantic import ValidationError

    from concordat import bootstrap
    from concordat.settings import Settings

    def answer(healthy: bool, detail: str) -> None:
        if as_json:
            sys.stdout.write(json.dumps({"role": role, "healthy": healthy, "detail": detail}) + "\n")
        else:
            sys.stdout.write(f"{role} {'ok' if healthy else 'unhealthy'}: {detail}\n")
        if not healthy:
            raise SystemExit(1)

    try:
        settings = Settings()
    except ValidationError as err:
        first = err.errors()[0]
        answer(False, f"setting CONCORDAT_{str(first['loc'][0]).upper()}: {first['msg']}")
        return
    bootstrap.configure_logging(settings)
    try:
        line = check(role, settings, timeout=timeout, max_lag=max_lag, max_quarantined=max_quarantined)
    except Unhealthy as err:
        answer(False, str(err))
        return
    except Exception as err:  # noqa: BLE001 - a health check: any failure is "unhealthy", in one line
        answer(False, f"{type(err).__name__}: {_first_line(err)}")
        return
    answer(True, line)
