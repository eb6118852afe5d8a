"""The `concordat` command line: thin. Parse → command → one clear line for any refusal.

Exit codes: 0 done; 1 refused by a rule or not found; 2 bad usage; 69 Temporal unreachable or failing;
75 the store unavailable (try again); 70 an internal error (details in the data dir's log).
"""

from __future__ import annotations

import asyncio
import gc
import getpass
import json
import os
import sys
import traceback
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar, get_args, get_origin
from zoneinfo import ZoneInfo

import click
import psycopg
import structlog
from eventsourcing.persistence import MapperDeserialisationError, OperationalError, PersistenceError
from pydantic import ValidationError
from rich.console import Console
from temporalio.service import RPCError

from concordat import bootstrap, private, processes, render
from concordat import up as supervisor
from concordat.commands import Commands
from concordat.engine import Sweep, TemporalUnavailableError, is_live, migrate_workflow, state_dict, sweep
from concordat.fields import DisputeIn, Fields, FundingIn, ProposalIn, TerminationIn, VariationIn
from concordat.money import parse_pounds
from concordat.replay import replay
from concordat.settings import Settings
from domain.actor import Actor
from domain.audit import Auditor, Head
from domain.directory import Directory
from domain.errors import ConcordatError, InvalidInputError
from domain.identity import Identity
from domain.policy import Policy

T = TypeVar("T")
LONDON = ZoneInfo("Europe/London")
log = structlog.get_logger("concordat.cli")


def _as_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--as ROLE:ID` and `--json`, on every command that acts for a person."""
    f = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")(f)
    return click.option(
        "--as",
        "as_",
        metavar="ROLE:ID",
        default=None,
        help="Who is acting, e.g. secretary:board:sam. Default: $CONCORDAT_ACTOR.",
    )(f)


def _command_opts(f: Callable[..., Any]) -> Callable[..., Any]:
    """What `_as_option` adds, and `--command-id` for commands that write."""
    f = click.option(
        "--command-id",
        default=None,
        help="Idempotency key: repeating a command with the same id records it once and answers the same.",
    )(f)
    return _as_option(f)


class Failure(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# --- plumbing ---------------------------------------------------------------------------------


def _settings() -> Settings:
    try:
        settings = Settings()
    except ValidationError as err:
        first = err.errors()[0]
        raise Failure(f"setting CONCORDAT_{str(first['loc'][0]).upper()}: {first['msg']}", 2) from None
    bootstrap.configure_logging(settings)
    return settings


def _actor(settings: Settings, given: str | None) -> Actor:
    text = given or settings.actor
    if not text:
        raise Failure("who is acting? give --as ROLE:ID (e.g. --as lead_director:dan) or set CONCORDAT_ACTOR", 2)
    return Actor.parse(text)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except Exception as err:
        # The traceback's frames hold the Temporal client; if it outlives the interpreter's
        # shutdown its native runtime aborts the process. Drop it here, while all is alive.
        err.__traceback__ = None
        err.__context__ = None
        gc.collect()
        raise err from None


async def _client(settings: Settings) -> Any:
    try:
        return await bootstrap.connect(settings)
    except RuntimeError:
        raise TemporalUnavailableError(
            f"cannot reach Temporal at {settings.temporal_address}; is `concordat up` running "
            "with the same CONCORDAT_ settings?"
        ) from None


def _out(as_json: bool, data: Any, text: Callable[[Console], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        text(render.console())


def _command_id(given: str | None) -> str:
    if given is not None and not given.strip():
        raise InvalidInputError("--command-id is empty")
    return given or str(uuid.uuid4())


def _start_options(model: type[Fields]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A start command's options, made from the fields its kind declares (concordat.fields): one
    `--kebab-name` per field, with the field's description as its help."""

    def add(f: Callable[..., Any]) -> Callable[..., Any]:
        for name, info in reversed(list(model.model_fields.items())):
            flag, kinds = "--" + name.replace("_", "-"), {info.annotation, *get_args(info.annotation)}
            if info.annotation is bool:
                f = click.option(flag, name, is_flag=True, help=info.description)(f)
            elif get_origin(info.annotation) is dict:
                f = click.option(
                    flag,
                    name,
                    multiple=True,
                    required=info.is_required(),
                    metavar="PARTY=POUNDS",
                    help=info.description,
                )(f)
            else:
                f = click.option(
                    flag,
                    name,
                    required=info.is_required(),
                    default=None,
                    metavar="YYYY-MM-DD" if date in kinds else None,
                    help=info.description,
                )(f)
        return f

    return add


def _given(model: type[Fields], options: dict[str, Any]) -> dict[str, Any]:
    """The start command's options as the kind's fields: dates checked, PARTY=POUNDS pairs collected."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        value = options.get(name)
        if value is None or value == ():
            continue
        if get_origin(info.annotation) is dict:
            pairs: dict[str, str] = {}
            for item in value:
                party, sep, amount = item.partition("=")
                if not sep or not party.strip():
                    raise InvalidInputError(f"--{name} {item!r} is not PARTY=POUNDS (e.g. PCC=-20000)")
                if party.strip() in pairs:
                    raise InvalidInputError(f"--{name} names {party.strip()} twice")
                pairs[party.strip()] = amount
            value = pairs
        elif date in get_args(info.annotation) or info.annotation is date:
            value = _date(value, "--" + name.replace("_", "-"))
        fields[name] = value
    return fields


# --- commands ---------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="concordat", prog_name="concordat", message="%(prog)s %(version)s")
def app() -> None:
    """Concordat: an event-sourced workflow engine for partnership governance."""


@app.group("proposal")
def proposal_app() -> None:
    """Proposals: commissioning, pathway changes, redesigns, procurements."""


@app.command()
@click.option(
    "--temporal", metavar="HOST:PORT", default=None, help="Use this existing Temporal server instead of starting one."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 16),
    default=1,
    show_default=True,
    help="How many worker processes share the task queue.",
)
@click.option("--no-web", is_flag=True, help="Do not serve the web pages and API.")
@click.option(
    "--temporal-ui",
    is_flag=True,
    help="Also serve Temporal's web UI on 127.0.0.1 (no sign-in: whoever reaches it can terminate, signal or "
    "reset workflows). Default: $CONCORDAT_TEMPORAL_UI, off.",
)
def up(temporal: str | None, workers: int, no_web: bool, temporal_ui: bool) -> None:
    """Start the engine on this machine: a Temporal dev server (state kept in the data dir), the
    worker(s), the projection runner and the web app ($CONCORDAT_HTTP_ADDRESS). Ctrl-C stops them all."""
    raise SystemExit(supervisor.run(_settings(), temporal, workers, web=not no_web, temporal_ui=temporal_ui))


@app.command()
@click.option(
    "--address",
    metavar="HOST:PORT",
    default=None,
    help="Where to listen (default: $CONCORDAT_HTTP_ADDRESS, 127.0.0.1:8000).",
)
@click.option("--secure-cookies", is_flag=True, help="Mark the session cookie Secure (serve behind HTTPS).")
def serve(address: str | None, secure_cookies: bool) -> None:
    """Serve the web pages and the JSON API alone, against a running Temporal and store."""
    from concordat.web import server as web_server  # the web stack only for the command that serves it

    settings = _settings()
    raise SystemExit(web_server.serve(settings, address or settings.http_address, secure_cookies=secure_cookies))


@app.group("user")
def user_app() -> None:
    """People who may sign in, and their roles (every change is an event in the store)."""


@app.group("token")
def token_app() -> None:
    """API tokens: created for a person, shown once, stored only as a hash."""


def _operator(settings: Settings, given: str | None) -> Actor:
    """Who changes access: --as, $CONCORDAT_ACTOR, or the operating-system user as `operator`."""
    text = given or settings.actor
    return Actor.parse(text) if text else Actor(id=getpass.getuser(), role="operator")


def _directory(settings: Settings) -> Directory:
    return Directory(bootstrap.open_cases(settings))


def _password(from_stdin: bool, *, ask_for: str | None = None) -> str | None:
    """A password from standard input (`--password-stdin`, for scripts), else, when `ask_for` names
    the person, asked for at the terminal twice without echo; else none."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise InvalidInputError("--password-stdin: nothing on standard input")
        return line.rstrip("\r\n")
    if ask_for is None:
        return None
    if not sys.stdin.isatty():
        raise InvalidInputError("no terminal to ask for the password on: pipe it in with --password-stdin")
    first = getpass.getpass(f"New password for {ask_for} (12 characters at least): ")
    if getpass.getpass("The same again: ") != first:
        raise InvalidInputError("the two passwords differ; nothing changed")
    return first


@user_app.command("add")
@click.argument("user_id", metavar="ID")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    metavar="ROLE",
    help="A role they hold, e.g. jcu_lead, secretary:board, party_rep:PCC; repeat for more.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read their password (12 characters at least) from standard input."
)
@_command_opts
def user_add(
    user_id: str, roles: tuple[str, ...], password_stdin: bool, as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """Add a person who may sign in, with their roles."""
    settings = _settings()
    view = _directory(settings).add_user(
        user_id,
        list(roles),
        by=_operator(settings, as_),
        command_id=_command_id(command_id),
        password=_password(password_stdin),
    )
    _out(as_json, view, lambda c: render.user(c, view))


@user_app.command("grant")
@click.argument("user_id", metavar="ID")
@click.option("--role", "roles", multiple=True, required=True, metavar="ROLE", help="A role to grant; repeat for more.")
@_command_opts
def user_grant(user_id: str, roles: tuple[str, ...], as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Grant roles to a person."""
    _each_role("grant", user_id, roles, as_, as_json, command_id)


@user_app.command("revoke")
@click.argument("user_id", metavar="ID")
@click.option(
    "--role", "roles", multiple=True, required=True, metavar="ROLE", help="A role to revoke; repeat for more."
)
@_command_opts
def user_revoke(user_id: str, roles: tuple[str, ...], as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Revoke roles from a person (their sessions and tokens lose them at once)."""
    _each_role("revoke", user_id, roles, as_, as_json, command_id)


def _each_role(
    change: str, user_id: str, roles: tuple[str, ...], as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """Grant or revoke each role in turn, each its own idempotent command (`ID:0`, `ID:1`, …)."""
    settings = _settings()
    people, by, cid = _directory(settings), _operator(settings, as_), _command_id(command_id)
    apply = people.grant if change == "grant" else people.revoke
    view: dict[str, Any] = {}
    for n, role in enumerate(roles):
        view = apply(user_id, role, by=by, command_id=f"{cid}:{n}" if len(roles) > 1 else cid)
    _out(as_json, view, lambda c: render.user(c, view))


@user_app.command("password")
@click.argument("user_id", metavar="ID")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of asking for it.")
@_command_opts
def user_password(user_id: str, password_stdin: bool, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Set a person's password (12 characters at least): asked for at the terminal, without echo."""
    settings = _settings()
    password = _password(password_stdin, ask_for=user_id) or ""
    view = _directory(settings).set_password(
        user_id, password, by=_operator(settings, as_), command_id=_command_id(command_id)
    )
    _out(as_json, view, lambda c: render.user(c, view))


@user_app.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")
def user_list(as_json: bool) -> None:
    """Everyone who may sign in, with their roles."""
    people = _directory(_settings()).list()
    _out(as_json, people, lambda c: render.users(c, people))


@user_app.command("show")
@click.argument("user_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")
def user_show(user_id: str, as_json: bool) -> None:
    """One person: roles, whether they have a password, their tokens (ids only)."""
    view = _directory(_settings()).get(user_id)
    _out(as_json, view, lambda c: render.user(c, view))


@token_app.command("create")
@click.argument("user_id", metavar="ID")
@_command_opts
def token_create(user_id: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Create an API token for a person and print it once (only its hash is kept)."""
    settings = _settings()
    issued = _directory(settings).issue_token(user_id, by=_operator(settings, as_), command_id=_command_id(command_id))
    if as_json:
        _out(True, {"token": issued.token, "id": issued.token_id, "user": issued.user_id}, lambda c: None)
        return
    sys.stdout.write(issued.token + "\n")
    sys.stderr.write(
        f"token {issued.token_id} for {render.inert(issued.user_id)}: shown once; revoke with "
        f"`concordat token revoke {issued.token_id}`\n"
    )


@token_app.command("revoke")
@click.argument("token_id", metavar="TOKEN_ID")
@_command_opts
def token_revoke(token_id: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Revoke an API token by its id (or the whole token); it stops working at once."""
    settings = _settings()
    view = _directory(settings).revoke_token(token_id, by=_operator(settings, as_), command_id=_command_id(command_id))
    _out(as_json, view, lambda c: render.user(c, view))


@app.command()
@click.option(
    "--migrate",
    is_flag=True,
    help="Also move cases whose workflow runs under an old type (ProposalWorkflow, DisputeWorkflow, …) "
    "to CaseWorkflow.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")
def resume(migrate: bool, as_json: bool) -> None:
    """Make sure every live case has its workflow running (after Temporal lost its state, a restore, or a
    workflow terminated or cancelled through Temporal's UI or CLI).

    The store is the record: each case that can still change gets its workflow started from the case
    as stored, so its reminders, deadlines and notice periods run again (one already due fires at
    once). A workflow that ended outside the engine's control (terminated, cancelled, timed out,
    failed, or missing) is first recorded on the case (`WorkflowInterrupted` in `concordat history`).
    A workflow that is running already is left as it is; running this twice changes nothing (the
    workers do the same every $CONCORDAT_WATCH_SECONDS). With --migrate, a case whose running workflow is of an old type is moved to CaseWorkflow: the old
    run is terminated (with the reason recorded in Temporal's history) and CaseWorkflow started from
    the store, so nothing of the case is lost (runbook: "Moving running cases to CaseWorkflow")."""
    settings = _settings()

    async def go() -> tuple[Sweep, int]:
        client = await _client(settings)
        cases = bootstrap.open_cases(settings)
        moved = 0
        if migrate:
            for reference in cases.references():
                state = cases.state(reference)
                if is_live(state) and await migrate_workflow(client, settings, state, cases):
                    moved += 1
        return await sweep(client, settings, cases), moved

    found, moved = _run(go())
    _out(
        as_json,
        {
            "cases": found.cases,
            "live": found.live,
            "migrated": moved,
            "interrupted": found.interrupted,
            "started": found.started,
        },
        lambda c: c.print(
            f"{found.live} live of {found.cases} cases: each has its workflow running; "
            f"{found.interrupted} found ended outside the engine, recorded and restarted"
            + (f"; {found.started - found.interrupted} more started" if found.started > found.interrupted else "")
            + (f"; {moved} moved to CaseWorkflow" if migrate else ""),
            highlight=False,
        ),
    )


@app.group("policy")
def policy_app() -> None:
    """The governance policy: check a changed file, print the routes it declares."""


@policy_app.command("check")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")
def policy_check(path: Path, as_json: bool) -> None:
    """Check a policy file: its shape, and its routes (unknown names, unreachable stages, stages no
    role may act at, joins that can never complete). Each problem names the line and the field."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise Failure(f"cannot read {path}: {exc.strerror}", 2) from None
    policy, problems = Policy.check_bytes(raw, str(path))
    if as_json:
        _out(
            True,
            {
                "valid": not problems,
                "problems": problems,
                "content_hash": policy.content_hash if policy and not problems else None,
            },
            lambda c: None,
        )
    elif problems:
        for line in problems:
            sys.stderr.write(line + "\n")
    else:
        assert policy is not None
        render.console().print(
            f"{path}: valid; routes: {', '.join(sorted(policy.routes))}; hash {policy.content_hash[:12]}",
            highlight=False,
        )
    if problems:
        raise SystemExit(1)


@policy_app.command("show")
@click.option("--kind", default=None, help="One kind's route only: proposal, variation or funding.")
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A policy file (default: the one in force: $CONCORDAT_POLICY_FILE, or the shipped one).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")
def policy_show(kind: str | None, path: Path | None, as_json: bool) -> None:
    """Print each route readably: its stages, who decides, deadlines, outcomes and where each leads."""
    policy = Policy.load(path) if path else bootstrap.load_policy(_settings())
    kinds = [kind] if kind else sorted(policy.routes)
    for k in kinds:
        if k not in policy.routes:
            raise InvalidInputError(
                f"--kind {k!r}: the policy has no such route; routes: {', '.join(sorted(policy.routes))}"
            )
    if as_json:
        _out(True, {k: policy.routes[k].model_dump(mode="json", exclude_defaults=True) for k in kinds}, lambda c: None)
        return
    c = render.console()
    for k in kinds:
        render.policy_route(c, k, policy)


@app.command()
def worker() -> None:
    """Run a Temporal worker for this store until stopped (`up` starts one; deployments run several)."""
    raise SystemExit(processes.run_worker(_settings()))


@app.group(invoke_without_command=True)
@click.pass_context
def projections(ctx: click.Context) -> None:
    """The views' projection runner: alone, run it (as `concordat up` does); or see and retry the events
    a view could not project (quarantined, so that one bad event stops nothing)."""
    if ctx.invoked_subcommand is None:
        raise SystemExit(processes.run_projections(_settings()))


@projections.command("quarantined")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")
def projections_quarantined(as_json: bool) -> None:
    """The events each view holds back, with the error that stopped each."""
    found = bootstrap.quarantined(_settings())
    _out(as_json, found, lambda c: render.quarantined(c, found))


@projections.command("retry")
@click.option(
    "--view",
    "views",
    multiple=True,
    type=click.Choice([p.name for p in bootstrap.PROJECTIONS]),
    help="Only this view; repeat for more (default: every view).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")
def projections_retry(views: tuple[str, ...], as_json: bool) -> None:
    """Project the quarantined events again, oldest first (after the cause is fixed: a new release, a
    setting); exit 1 if any is still held back. Safe while the runner runs, and to repeat."""
    results = bootstrap.retry_quarantined(_settings(), list(views) or None)
    data = [asdict(r) for r in results]
    _out(as_json, data, lambda c: render.retried(c, results))
    if any(r.still for r in results):
        raise SystemExit(1)


@proposal_app.command("start")
@_start_options(ProposalIn)
@_command_opts
def proposal_start(as_: str | None, as_json: bool, command_id: str | None, **options: Any) -> None:
    """Start a proposal at its route's first stage (the JCU); prints its reference."""
    state = _start_case(_settings(), as_, command_id, "proposal", _given(ProposalIn, options))
    _out(as_json, state_dict(state), lambda c: c.print(state.reference, highlight=False))


@app.command()
@click.argument("reference")
@click.option("--stage", required=True, help="The stage deciding, e.g. board (one of those the case awaits).")
@click.option(
    "--outcome",
    required=True,
    help="The decision, e.g. approve, refer, recommend, reject, defer; at an escalation: extend, send_back, decide.",
)
@click.option("--minutes-ref", default="", help="Reference of the minutes recording it.")
@click.option("--note", default="", help="A note for the record.")
@click.option("--stage-outcome", default=None, help="With --outcome decide at an escalation: the stage's own outcome.")
@click.option(
    "--deadline",
    default=None,
    metavar="YYYY-MM-DD",
    help="With --outcome extend: the new deadline (close of business, Europe/London).",
)
@_command_opts
def decide(
    reference: str,
    stage: str,
    outcome: str,
    minutes_ref: str,
    note: str,
    stage_outcome: str | None,
    deadline: str | None,
    as_: str | None,
    as_json: bool,
    command_id: str | None,
) -> None:
    """Record a forum's decision on a case (REFERENCE, e.g. PRO-2026-0001) at a stage it awaits."""
    if deadline:
        _date(deadline, "--deadline")
    fields = {
        "stage": stage,
        "outcome": outcome,
        "minutes_ref": minutes_ref,
        "note": note,
        "stage_outcome": stage_outcome,
        "deadline": deadline,
    }
    _act(_settings(), as_, command_id, reference, "decide", fields, as_json)


@app.command()
@click.argument("reference")
@click.option("--note", default="", help="Why it is withdrawn.")
@_command_opts
def withdraw(reference: str, note: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Withdraw an open proposal, variation or funding change (JCU leads), or your notice."""
    _act(_settings(), as_, command_id, reference, "withdraw", {"note": note}, as_json)


@app.group("dispute")
def dispute_app() -> None:
    """Disputes between partners: the Lead Director first, then an agreed, appointed mediator."""


@app.group("termination")
def termination_app() -> None:
    """Notices to leave the partnership (six months at least), withdrawal and mutual consent."""


def _who(settings: Settings, as_: str | None) -> tuple[Identity, str]:
    """The person the command is for and the role they act in (from --as or $CONCORDAT_ACTOR)."""
    actor = _actor(settings, as_)
    return Identity(user_id=actor.id, roles=(actor.role,)), actor.role


def _start_case(settings: Settings, as_: str | None, command_id: str | None, kind: str, fields: dict[str, Any]) -> Any:
    """Open a case of `kind` and start its workflow, on the one command path (concordat.commands)."""
    who, role = _who(settings, as_)
    cid = _command_id(command_id)
    return _run(Commands.open(settings).start(kind, who, fields, cid, role))


def _act(
    settings: Settings,
    as_: str | None,
    command_id: str | None,
    reference: str,
    action: str,
    fields: dict[str, Any],
    as_json: bool,
) -> None:
    """A command on a case by its CLI name (`decide`, `withdraw`, `nominate`, `inform-ce`, …), through
    the case's workflow, on the one command path (concordat.commands)."""
    who, role = _who(settings, as_)
    cid = _command_id(command_id)
    cmds = Commands.open(settings)
    if action == "decide":
        call = cmds.decide(who, reference, fields, cid, role)
    elif action == "withdraw":
        call = cmds.withdraw(who, reference, fields.get("note", ""), cid, role)
    else:
        call = cmds.act(who, reference, action, fields, cid, role)
    state = _run(call)
    _out(as_json, state_dict(state), lambda c: render.after_act(c, state))


@dispute_app.command("raise")
@_start_options(DisputeIn)
@_command_opts
def dispute_raise(as_: str | None, as_json: bool, command_id: str | None, **options: Any) -> None:
    """Raise a dispute for your party (--as party_rep:PARTY:ID); prints its reference."""
    state = _start_case(_settings(), as_, command_id, "dispute", _given(DisputeIn, options))
    _out(as_json, state_dict(state), lambda c: c.print(state.reference))


@dispute_app.command("resolve")
@click.argument("reference")
@click.option(
    "--outcome",
    required=True,
    type=click.Choice(["resolved", "mediation", "no_mediation"]),
    help="resolved; mediation (is required); no_mediation (is not required).",
)
@click.option("--note", default="", help="The resolution or the reasons, for the record.")
@_command_opts
def dispute_resolve(
    reference: str, outcome: str, note: str, as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """The Lead Director resolves the concern, or decides whether mediation is required."""
    _act(_settings(), as_, command_id, reference, "resolve", {"outcome": outcome, "note": note}, as_json)


@dispute_app.command("nominate")
@click.argument("reference")
@click.option(
    "--mediator", required=True, metavar="ID", help="The independent mediator's id (they act as mediator:ID)."
)
@click.option("--note", default="")
@_command_opts
def dispute_nominate(
    reference: str, mediator: str, note: str, as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """Nominate a mediator; every party to the dispute must then agree."""
    _act(_settings(), as_, command_id, reference, "nominate", {"mediator": mediator, "note": note}, as_json)


@dispute_app.command("agree")
@click.argument("reference")
@_command_opts
def dispute_agree(reference: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Your party agrees to the nominated mediator."""
    _act(_settings(), as_, command_id, reference, "agree", {}, as_json)


@dispute_app.command("refuse")
@click.argument("reference")
@click.option("--note", default="", help="Why, for the record.")
@_command_opts
def dispute_refuse(reference: str, note: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Your party refuses the nominee: a new nomination is needed."""
    _act(_settings(), as_, command_id, reference, "refuse", {"note": note}, as_json)


@dispute_app.command("appoint")
@click.argument("reference")
@click.option("--letter-ref", required=True, help="Reference of the letter of appointment (appointed in writing).")
@_command_opts
def dispute_appoint(reference: str, letter_ref: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Appoint the agreed mediator, in writing."""
    _act(_settings(), as_, command_id, reference, "appoint", {"letter_ref": letter_ref}, as_json)


@dispute_app.command("findings")
@click.argument("reference")
@click.option("--findings", required=True, help="The findings, binding on the parties.")
@click.option("--cost", required=True, help="Total cost of the mediation in pounds, shared equally.")
@_command_opts
def dispute_findings(
    reference: str, findings: str, cost: str, as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """The appointed mediator records binding findings and the cost (--as mediator:ID)."""
    _act(_settings(), as_, command_id, reference, "findings", {"findings": findings, "cost": cost}, as_json)


@dispute_app.command("extend")
@click.argument("reference")
@click.option(
    "--deadline", default=None, metavar="YYYY-MM-DD", help="The new deadline (default: the stage's own time)."
)
@click.option("--note", default="", help="Why, for the record.")
@_command_opts
def dispute_extend(
    reference: str, deadline: str | None, note: str, as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """The escalation forum gives an escalated dispute stage a new deadline (--as secretary:programme_board:ID)."""
    if deadline:
        _date(deadline, "--deadline")
    _act(_settings(), as_, command_id, reference, "extend", {"deadline": deadline, "note": note}, as_json)


@termination_app.command("serve")
@_start_options(TerminationIn)
@_command_opts
def termination_serve(as_: str | None, as_json: bool, command_id: str | None, **options: Any) -> None:
    """Serve your party's notice to leave the partnership (--as party_rep:PARTY:ID)."""
    state = _start_case(_settings(), as_, command_id, "termination", _given(TerminationIn, options))
    _out(as_json, state_dict(state), lambda c: c.print(f"{state.reference} effective {state.details['effective']}"))


@termination_app.command("withdraw")
@click.argument("reference")
@click.option("--note", default="", help="Why, for the record.")
@_command_opts
def termination_withdraw(reference: str, note: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Withdraw your party's notice before it takes effect."""
    _act(_settings(), as_, command_id, reference, "withdraw", {"note": note}, as_json)


@termination_app.command("consent")
@click.argument("reference")
@click.option("--effective", required=True, metavar="YYYY-MM-DD", help="The agreed date (today or later).")
@_command_opts
def termination_consent(reference: str, effective: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Your party consents to mutual termination on a date; all members on one date ends the partnership."""
    _act(_settings(), as_, command_id, reference, "consent", {"effective": _date(effective, "--effective")}, as_json)


@app.group("variation")
def variation_app() -> None:
    """Contract variations: from the JCU's draft through the board (and CCG) to the provider."""


@variation_app.command("start")
@_start_options(VariationIn)
@_command_opts
def variation_start(as_: str | None, as_json: bool, command_id: str | None, **options: Any) -> None:
    """Start a contract variation at its route's first stage (the JCU); prints its reference."""
    state = _start_case(_settings(), as_, command_id, "variation", _given(VariationIn, options))
    _out(as_json, state_dict(state), lambda c: c.print(state.reference))


@variation_app.command("inform-ce")
@click.argument("reference")
@click.option("--note", default="", help="How and when the Chief Executive was informed.")
@_command_opts
def variation_inform_ce(reference: str, note: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Record that the Chief Executive was informed before a contractual lever is used (Lead Director)."""
    _act(_settings(), as_, command_id, reference, "inform-ce", {"note": note}, as_json)


@app.group("funding")
def funding_app() -> None:
    """In-year funding changes: the board proposes, the Programme Board (or Health Committee) decides."""


@funding_app.command("start")
@_start_options(FundingIn)
@_command_opts
def funding_start(as_: str | None, as_json: bool, command_id: str | None, **options: Any) -> None:
    """Start an in-year funding change at the board; prints its reference."""
    state = _start_case(_settings(), as_, command_id, "funding", _given(FundingIn, options))
    _out(as_json, state_dict(state), lambda c: c.print(state.reference))


@app.group("fund")
def fund_app() -> None:
    """Aligned and pooled funds: their balance, contributions and the changes applied to them."""


@fund_app.command("open")
@click.argument("name")
@click.option("--type", "type_", required=True, type=click.Choice(["aligned", "pooled"]), help="aligned or pooled.")
@click.option("--balance", required=True, help="Opening balance in pounds.")
@_command_opts
def fund_open(name: str, type_: str, balance: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Open a fund with its opening balance (JCU leads)."""
    settings = _settings()
    actor = _actor(settings, as_)
    view = bootstrap.open_cases(settings).open_fund(
        actor=actor,
        fields={"name": name, "type": type_, "balance_pence": parse_pounds(balance)},
        command_id=_command_id(command_id),
    )
    _out(as_json, view, lambda c: render.fund(c, view))


@fund_app.command("show")
@click.argument("name")
@_as_option
def fund_show(name: str, as_: str | None, as_json: bool) -> None:
    """A fund's balance, contributions and the changes applied to it."""
    settings = _settings()
    view = bootstrap.open_cases(settings).fund_view(name, actor=_actor(settings, as_))
    _out(as_json, view, lambda c: render.fund(c, view))


@app.group("report")
def report_app() -> None:
    """Reports from the views."""


@report_app.command("public-health")
@click.option(
    "--year",
    required=True,
    type=click.IntRange(2000, 2100),
    help="Financial year by its first calendar year: 2026 is April 2026 to March 2027.",
)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@_as_option
def report_public_health(year: int, as_csv: bool, as_: str | None, as_json: bool) -> None:
    """Ring-fenced public-health contributions per party per financial quarter (Q1 = April-June)."""
    settings = _settings()
    actor = _actor(settings, as_)
    cases = bootstrap.open_cases(settings)
    cases.authorize_read(actor)
    view = bootstrap.open_public_health(settings)
    lag = render.wait_for_view(view, cases)
    table = render.public_health_table(view.report(year), year, cases.policy.partnership.parties)
    if as_csv:
        render.csv_out(table)
    else:
        _out(as_json, table, lambda c: render.public_health(c, table, lag))


@app.group("audit")
def audit_app() -> None:
    """For auditors: verify the hash chains, keep their heads, replay the views, export the history."""


def _auditor(settings: Settings, as_: str | None) -> Auditor:
    cases = bootstrap.open_cases(settings)
    cases.authorize_read(_actor(settings, as_))
    return Auditor(cases)


@audit_app.command("verify")
@click.argument("reference", required=False)
@click.option(
    "--heads",
    "heads_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Heads kept elsewhere (from `concordat audit heads --json`), to catch a truncated tail.",
)
@_as_option
def audit_verify(reference: str | None, heads_file: str | None, as_: str | None, as_json: bool) -> None:
    """Walk the hash chains of every case (or one) and report each break; exit 1 if any."""
    settings = _settings()
    auditor = _auditor(settings, as_)
    heads = _read_heads(heads_file) if heads_file else None
    checked, found = auditor.verify(reference, heads=heads)
    data = {"checked": checked, "breaks": [asdict(b) for b in found], "heads_checked": len(heads or [])}
    _out(as_json, data, lambda c: render.verify(c, checked, found, heads))
    if found:
        raise SystemExit(1)


@audit_app.command("heads")
@_as_option
def audit_heads(as_: str | None, as_json: bool) -> None:
    """Each aggregate's latest version and hash, to keep somewhere the operators cannot change."""
    settings = _settings()
    heads = _auditor(settings, as_).heads()
    _out(as_json, [asdict(h) for h in heads], lambda c: render.heads(c, heads))


@audit_app.command("export")
@click.argument("reference", required=False)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", help="jsonl or csv.")
@click.option("--as", "as_", metavar="ROLE:ID", default=None, help="Who is acting. Default: $CONCORDAT_ACTOR.")
def audit_export(reference: str | None, fmt: str, as_: str | None) -> None:
    """Write the full history (every event, every aggregate, or one case) with its metadata."""
    settings = _settings()
    render.export(_auditor(settings, as_).export_rows(reference), fmt)


@audit_app.command("replay")
@click.option("--as", "as_", metavar="ROLE:ID", default=None, help="Who is acting. Default: $CONCORDAT_ACTOR.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def audit_replay(as_: str | None, as_json: bool) -> None:
    """Rebuild every view from event zero into fresh tables and swap them in when complete."""
    settings = _settings()
    bootstrap.open_cases(settings).authorize_read(_actor(settings, as_))
    summary = replay(settings, console=None if as_json else Console(stderr=True))
    data = {
        "events": summary.events,
        "views": summary.views,
        "seconds": round(summary.seconds, 3),
        "events_per_second": round(summary.rate, 1),
    }
    _out(
        as_json,
        data,
        lambda c: c.print(
            f"replayed {summary.events} events into {', '.join(summary.views)} in {summary.seconds:.1f} s "
            f"({summary.rate:,.0f} events/s); the rebuilt views are in place"
        ),
    )


def _read_heads(path: str) -> list[Head]:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return [Head(**item) for item in raw]
    except (OSError, ValueError, TypeError) as err:
        raise InvalidInputError(
            f"--heads {path}: not a heads file from `concordat audit heads --json` ({err})"
        ) from None


@app.command()
@_as_option
def partnership(as_: str | None, as_json: bool) -> None:
    """The partnership's members and the notices pending, with their effective dates."""
    settings = _settings()
    actor = _actor(settings, as_)
    view = bootstrap.open_cases(settings).partnership_view(actor=actor)
    _out(as_json, view, lambda c: render.partnership(c, view))


def _list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


@app.command()
@click.argument("reference")
@click.option("--version", type=click.IntRange(min=1), default=None, help="Show the case as it stood at this version.")
@click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="WHEN",
    help="Show the case as it stood then, e.g. 2026-06-30T17:00 (Europe/London unless it has an offset).",
)
@_as_option
def show(reference: str, version: int | None, as_of: str | None, as_: str | None, as_json: bool) -> None:
    """A case's state now, or as it stood at a version or an instant: rebuilt from its events."""
    settings = _settings()
    actor = _actor(settings, as_)
    cases = bootstrap.open_cases(settings)
    if as_of and version:
        raise InvalidInputError("give --as-of or --version, not both")
    if as_of:
        cases.authorize_read(actor)
        version = cases.version_at(reference, _instant(as_of, "--as-of"))
    state = cases.get(reference, actor=actor, version=version)
    _out(as_json, state_dict(state), lambda c: render.case_view(c, state, cases.policy))


@app.command()
@click.argument("reference")
@_as_option
def history(reference: str, as_: str | None, as_json: bool) -> None:
    """Every event of a case, in order, with time, actor, role and what changed."""
    settings = _settings()
    actor = _actor(settings, as_)
    entries = bootstrap.open_cases(settings).history(reference, actor=actor)
    _out(as_json, [state_dict(e) for e in entries], lambda c: render.history(c, reference, entries))


@app.command("list")
@click.option("--open", "open_", is_flag=True, help="Only open cases.")
@click.option("--overdue", is_flag=True, help="Only open cases past their deadline.")
@_as_option
def list_cases(open_: bool, overdue: bool, as_: str | None, as_json: bool) -> None:
    """Cases from the case-list view."""
    settings = _settings()
    actor = _actor(settings, as_)
    cases = bootstrap.open_cases(settings)
    cases.authorize_read(actor)
    view = bootstrap.open_case_list(settings)
    lag = render.wait_for_view(view, cases)
    rows = view.list_cases(open_only=open_, overdue_at=datetime.now().astimezone() if overdue else None)
    _out(as_json, rows, lambda c: render.case_list(c, rows, lag))


@app.command()
@click.option("--case", default=None, metavar="REFERENCE", help="Only this case's decisions.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=200, help="At most this many, newest first.")
@_as_option
def decisions(case: str | None, limit: int, as_: str | None, as_json: bool) -> None:
    """The decisions register: every decision of every forum, newest first."""
    settings = _settings()
    actor = _actor(settings, as_)
    cases = bootstrap.open_cases(settings)
    cases.authorize_read(actor)
    view = bootstrap.open_decisions(settings)
    lag = render.wait_for_view(view, cases)
    rows = view.list_decisions(reference=case, limit=limit)
    _out(as_json, rows, lambda c: render.decisions(c, rows, lag))


def _instant(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(f"{option} {text!r} is not a date and time like 2026-06-30T17:00") from None
    return value if value.tzinfo else value.replace(tzinfo=LONDON)


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(f"{option} {text!r} is not a date YYYY-MM-DD") from None


# --- the boundary -----------------------------------------------------------------------------


def _fail(message: str, code: int) -> NoReturn:
    # A refusal may quote what was typed or stored (a reference, an option): shown inert, as all text is.
    sys.stderr.write(f"concordat: {render.inert(message)}\n")
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command, then leave without interpreter teardown.

    Temporal's native client keeps threads that can outlive the event loop; if the interpreter
    finalizes while they hold its thread state, CPython aborts ("PyGILState_Release: thread state
    must be current", temporalio/sdk-python#300) and a command that succeeded would exit 134. All
    our writes are committed before this point, so the process flushes its output and exits now.
    """
    try:
        _main(argv)
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _main(argv: list[str] | None) -> None:
    """The one broad catch of the CLI: every failure becomes one line and an exit code."""
    private.restrict_umask()  # what any command writes in the data dir is its owner's alone
    try:
        code = app.main(args=argv, prog_name="concordat", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as err:
        sys.stdout.write(err.ctx.get_help() + "\n" if err.ctx else "")
        raise SystemExit(0) from None
    except click.UsageError as err:
        where = f" (see `{err.ctx.command_path} --help`)" if err.ctx else ""
        _fail(f"{err.format_message()}{where}", 2)
    except click.exceptions.Exit as err:
        raise SystemExit(err.exit_code) from None
    except click.Abort:
        _fail("aborted", 130)
    except Failure as err:
        _fail(str(err), err.code)
    except ConcordatError as err:
        _fail(str(err), 1)
    except ValidationError as err:
        first = err.errors()[0]
        _fail(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", 2)
    except TemporalUnavailableError as err:
        _fail(str(err), 69)
    except RPCError as err:  # Temporal answered, with an error of its own: a failing dependency
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        _fail(f"Temporal failed ({err.status.name if err.status else 'no status'}): {detail}", 69)
    except MapperDeserialisationError:
        _fail(
            "cannot decode the stored events: is CONCORDAT_CIPHER_KEY the key they were written with? "
            "(`concordat audit verify` names each event it cannot read)",
            1,
        )
    except (OperationalError, PersistenceError, psycopg.OperationalError) as err:
        _fail(f"store unavailable, try again ({str(err).splitlines()[0] if str(err) else type(err).__name__})", 75)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as err:  # noqa: BLE001 - the process boundary: log it whole, show one line
        path = _crash_log(err)
        _fail(f"internal error: {type(err).__name__}: {err} (details in {path})", 70)
    # Without standalone mode, click returns the code of `ctx.exit()` instead of raising it.
    raise SystemExit(code if isinstance(code, int) else 0)


def _crash_log(err: Exception) -> str:
    try:
        settings = Settings()
        path = bootstrap.data_path(settings, "logs", "cli-errors.log")
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"--- {datetime.now().astimezone().isoformat()} {' '.join(sys.argv)}\n")
            fh.write("".join(traceback.format_exception(err)))
        return str(path)
    except (OSError, ValidationError):
        return "stderr of a rerun with CONCORDAT_LOG_LEVEL=debug"


from concordat.health import health_command  # noqa: E402

app.add_command(health_command, "health")
