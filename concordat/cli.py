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
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

import click
import psycopg
import structlog
from eventsourcing.persistence import MapperDeserialisationError, OperationalError, PersistenceError
from pydantic import ValidationError
from rich.console import Console
from temporalio.service import RPCError

from concordat import bootstrap, processes, render
from concordat import up as supervisor
from concordat.engine import TemporalUnavailableError, ensure_workflow, is_live, send_update, state_dict
from concordat.money import parse_pounds, parse_signed_pounds
from concordat.replay import replay
from concordat.settings import Settings
from domain.actor import Actor
from domain.audit import Auditor, Head
from domain.directory import Directory
from domain.errors import ConcordatError, InvalidInputError
from domain.proposal import ProposalState
from workflows.contracts import ActInput, ActorRef, DecideInput, WithdrawInput
from workflows.proposal import ProposalWorkflow

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
def up(temporal: str | None, workers: int, no_web: bool) -> None:
    """Start the engine on this machine: a Temporal dev server (state kept in the data dir), the
    worker(s), the projection runner and the web app ($CONCORDAT_HTTP_ADDRESS). Ctrl-C stops them all."""
    raise SystemExit(supervisor.run(_settings(), temporal, workers, web=not no_web))


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
        f"token {issued.token_id} for {issued.user_id}: shown once; revoke with "
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")
def resume(as_json: bool) -> None:
    """Make sure every live case has its workflow running (after Temporal lost its state, or a restore).

    The store is the record: each case that can still change gets its workflow started from the case
    as stored, so its reminders, deadlines and notice periods run again (one already due fires at
    once). A workflow that is running already is left as it is; running this twice changes nothing."""
    settings = _settings()

    async def go() -> tuple[int, int]:
        client = await _client(settings)
        cases = bootstrap.open_cases(settings)
        seen = live = 0
        for reference in cases.references():
            seen += 1
            state = cases.state(reference)
            if is_live(state):
                await ensure_workflow(client, settings, state, cases)
                live += 1
        return seen, live

    seen, live = _run(go())
    _out(
        as_json,
        {"cases": seen, "live": live},
        lambda c: c.print(f"{live} live of {seen} cases: each has its workflow running", highlight=False),
    )


@app.command()
def worker() -> None:
    """Run a Temporal worker for this store until stopped (`up` starts one; deployments run several)."""
    raise SystemExit(processes.run_worker(_settings()))


@app.command()
def projections() -> None:
    """Run the projection runners that keep the views up to date, until stopped (`up` starts them)."""
    raise SystemExit(processes.run_projections(_settings()))


@proposal_app.command("start")
@click.option("--title", required=True, help="What the proposal is, in a line.")
@click.option(
    "--kind",
    required=True,
    help="service_commissioning, pathway_change, minor_redesign, major_redesign or procurement.",
)
@click.option("--value", required=True, help="Annual value in pounds, e.g. 180000 or £180,000.50.")
@click.option("--parties", required=True, help="Parties it concerns, comma-separated: PCC,CCC,CPCCG.")
@click.option("--public-health", is_flag=True, help="Public-health ring-fenced money is involved.")
@_command_opts
def proposal_start(
    title: str,
    kind: str,
    value: str,
    parties: str,
    public_health: bool,
    as_: str | None,
    as_json: bool,
    command_id: str | None,
) -> None:
    """Start a proposal at the JCU stage; prints its reference."""
    settings = _settings()
    actor = _actor(settings, as_)
    pence = parse_pounds(value)
    party_list = _list(parties)
    cid = _command_id(command_id)

    async def go() -> Any:
        client = await _client(settings)  # before writing: a case with no engine to run it helps nobody
        cases = bootstrap.open_cases(settings)
        state = cases.start_proposal(
            actor=actor,
            title=title,
            kind=kind,
            value_pence=pence,
            parties=party_list,
            public_health=public_health,
            command_id=cid,
        )
        await ensure_workflow(client, settings, state, cases)
        return state

    state = _run(go())
    _out(as_json, state_dict(state), lambda c: c.print(state.reference, highlight=False))


@app.command()
@click.argument("reference")
@click.option("--stage", required=True, help="The stage (or escalation forum) deciding, e.g. board.")
@click.option("--outcome", required=True, help="The decision, e.g. approve, refer, recommend, reject, defer.")
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
    """Record a forum's decision on a case (REFERENCE, e.g. PRO-2026-0001) at its current stage."""
    settings = _settings()
    if not reference.startswith("PRO-"):
        if stage_outcome or deadline:
            raise InvalidInputError("--stage-outcome and --deadline are for a proposal's escalation only")
        fields = {"stage": stage.strip(), "outcome": outcome.strip(), "minutes_ref": minutes_ref, "note": note}
        _act(settings, as_, command_id, reference, "decide", fields, as_json)
        return
    actor = _actor(settings, as_)
    new_deadline = _date(deadline, "--deadline") if deadline else None
    decision = DecideInput(
        actor=ActorRef(id=actor.id, role=actor.role),
        stage=stage.strip(),
        outcome=outcome.strip(),
        minutes_ref=minutes_ref,
        note=note,
        stage_outcome=stage_outcome,
        new_deadline=new_deadline,
    )
    cid = _command_id(command_id)

    async def go() -> Any:
        cases = bootstrap.open_cases(settings)
        client = await _client(settings)
        return await send_update(client, settings, cases, reference, ProposalWorkflow.decide, decision, cid)

    state = _run(go())
    _out(as_json, state_dict(state), lambda c: render.after_command(c, state))


@app.command()
@click.argument("reference")
@click.option("--note", default="", help="Why it is withdrawn.")
@_command_opts
def withdraw(reference: str, note: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Withdraw an open proposal, variation or funding change (JCU leads), or your notice."""
    settings = _settings()
    if not reference.startswith("PRO-"):
        _act(settings, as_, command_id, reference, "withdraw", {"note": note}, as_json)
        return
    actor = _actor(settings, as_)
    withdrawal = WithdrawInput(actor=ActorRef(id=actor.id, role=actor.role), note=note)
    cid = _command_id(command_id)

    async def go() -> Any:
        cases = bootstrap.open_cases(settings)
        client = await _client(settings)
        return await send_update(client, settings, cases, reference, ProposalWorkflow.withdraw, withdrawal, cid)

    state = _run(go())
    _out(as_json, state_dict(state), lambda c: render.after_command(c, state))


@app.group("dispute")
def dispute_app() -> None:
    """Disputes between partners: the Lead Director first, then an agreed, appointed mediator."""


@app.group("termination")
def termination_app() -> None:
    """Notices to leave the partnership (six months at least), withdrawal and mutual consent."""


def _start_case(settings: Settings, as_: str | None, command_id: str | None, start: Callable[..., Any]) -> Any:
    """Record a new case in the store, then start its workflow (both safe to repeat by command id)."""
    actor = _actor(settings, as_)
    cid = _command_id(command_id)

    async def go() -> Any:
        client = await _client(settings)  # before writing: a case with no engine to run it helps nobody
        cases = bootstrap.open_cases(settings)
        state = start(cases, actor, cid)
        await ensure_workflow(client, settings, state, cases)
        return state

    return _run(go())


def _act(
    settings: Settings,
    as_: str | None,
    command_id: str | None,
    reference: str,
    action: str,
    fields: dict[str, Any],
    as_json: bool,
) -> None:
    """A command on a dispute or notice, through its workflow's `act` update."""
    actor = _actor(settings, as_)
    act = ActInput(actor=ActorRef(id=actor.id, role=actor.role), action=action, fields=fields)
    cid = _command_id(command_id)

    async def go() -> Any:
        cases = bootstrap.open_cases(settings)
        client = await _client(settings)
        return await send_update(client, settings, cases, reference, None, act, cid)

    state = _run(go())
    _out(as_json, state_dict(state), lambda c: render.after_act(c, state))


@dispute_app.command("raise")
@click.option("--against", required=True, help="The parties the concern is against, comma-separated, e.g. CCC.")
@click.option("--subject", required=True, help="What the dispute is about, in a line.")
@click.option("--description", default="", help="The concern in full.")
@click.option(
    "--case", "linked_case", default=None, metavar="REFERENCE", help="A case it concerns, e.g. PRO-2026-0001."
)
@_command_opts
def dispute_raise(
    against: str,
    subject: str,
    description: str,
    linked_case: str | None,
    as_: str | None,
    as_json: bool,
    command_id: str | None,
) -> None:
    """Raise a dispute for your party (--as party_rep:PARTY:ID); prints its reference."""
    settings = _settings()
    fields = {"against": _list(against), "subject": subject, "description": description, "linked_case": linked_case}
    state = _start_case(
        settings, as_, command_id, lambda app, actor, cid: app.raise_dispute(actor=actor, fields=fields, command_id=cid)
    )
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
    fields = {"findings": findings, "cost_pence": parse_pounds(cost)}
    _act(_settings(), as_, command_id, reference, "findings", fields, as_json)


@termination_app.command("serve")
@click.option("--letter-ref", required=True, help="Reference of the notice letter (notice is given in writing).")
@click.option(
    "--served-on", default=None, metavar="YYYY-MM-DD", help="When it was served (default today; not in the future)."
)
@click.option(
    "--effective", default=None, metavar="YYYY-MM-DD", help="When it takes effect (six months after service at least)."
)
@click.option("--year-end", is_flag=True, help="Take effect on the first 31 March at least six months on.")
@_command_opts
def termination_serve(
    letter_ref: str,
    served_on: str | None,
    effective: str | None,
    year_end: bool,
    as_: str | None,
    as_json: bool,
    command_id: str | None,
) -> None:
    """Serve your party's notice to leave the partnership (--as party_rep:PARTY:ID)."""
    settings = _settings()
    fields = {
        "letter_ref": letter_ref,
        "served_on": _date(served_on, "--served-on") if served_on else None,
        "effective": _date(effective, "--effective") if effective else None,
        "year_end": year_end,
    }
    state = _start_case(
        settings, as_, command_id, lambda app, actor, cid: app.serve_notice(actor=actor, fields=fields, command_id=cid)
    )
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
    fields = {"effective": _date(effective, "--effective")}
    _act(_settings(), as_, command_id, reference, "consent", fields, as_json)


@app.group("variation")
def variation_app() -> None:
    """Contract variations: from the JCU's draft through the board (and CCG) to the provider."""


@variation_app.command("start")
@click.option("--provider", required=True, help="The provider whose contract varies.")
@click.option("--contract-ref", required=True, help="The contract's reference.")
@click.option(
    "--reason",
    required=True,
    help="performance_review, contract_performance_notice, managing_activity_and_referrals or other.",
)
@click.option("--value-change", required=True, help="Change in annual value in pounds; negative for a reduction.")
@click.option("--parties", required=True, help="Parties to the contract, comma-separated: PCC,CCC,CPCCG.")
@click.option("--effective", required=True, metavar="YYYY-MM-DD", help="When it takes effect once agreed.")
@click.option("--public-health", is_flag=True, help="Public-health money is in the contract (sign-off needed).")
@click.option("--title", default="", help="A title (default: provider, contract and reason).")
@_command_opts
def variation_start(
    provider: str,
    contract_ref: str,
    reason: str,
    value_change: str,
    parties: str,
    effective: str,
    public_health: bool,
    title: str,
    as_: str | None,
    as_json: bool,
    command_id: str | None,
) -> None:
    """Start a contract variation at the JCU stage; prints its reference."""
    settings = _settings()
    fields = {
        "provider": provider,
        "contract_ref": contract_ref,
        "reason": reason,
        "value_change_pence": parse_signed_pounds(value_change),
        "parties": _list(parties),
        "effective_on": _date(effective, "--effective"),
        "public_health": public_health,
        "title": title,
    }
    state = _start_case(
        settings,
        as_,
        command_id,
        lambda app, actor, cid: app.start_variation(actor=actor, fields=fields, command_id=cid),
    )
    _out(as_json, state_dict(state), lambda c: c.print(state.reference))


@variation_app.command("inform-ce")
@click.argument("reference")
@click.option("--note", default="", help="How and when the Chief Executive was informed.")
@_command_opts
def variation_inform_ce(reference: str, note: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Record that the Chief Executive was informed before a contractual lever is used (Lead Director)."""
    _act(_settings(), as_, command_id, reference, "inform_chief_executive", {"note": note}, as_json)


@app.group("funding")
def funding_app() -> None:
    """In-year funding changes: the board proposes, the Programme Board (or Health Committee) decides."""


@funding_app.command("start")
@click.option("--fund", required=True, help="The fund's name.")
@click.option(
    "--change",
    "changes",
    multiple=True,
    required=True,
    metavar="PARTY=POUNDS",
    help="A party's change in contribution, e.g. PCC=-20000; repeat for each party.",
)
@click.option(
    "--public-health", is_flag=True, help="Ring-fenced public-health money is involved (consultation needed)."
)
@click.option("--public-health-service", is_flag=True, help="A public-health service: the Health Committee decides.")
@click.option("--title", default="", help="A title (default: the fund and the net change).")
@_command_opts
def funding_start(
    fund: str,
    changes: tuple[str, ...],
    public_health: bool,
    public_health_service: bool,
    title: str,
    as_: str | None,
    as_json: bool,
    command_id: str | None,
) -> None:
    """Start an in-year funding change at the board; prints its reference."""
    settings = _settings()
    parsed: dict[str, int] = {}
    for item in changes:
        party, sep, amount = item.partition("=")
        if not sep or not party.strip():
            raise InvalidInputError(f"--change {item!r} is not PARTY=POUNDS (e.g. PCC=-20000)")
        if party.strip() in parsed:
            raise InvalidInputError(f"--change names {party.strip()} twice")
        parsed[party.strip()] = parse_signed_pounds(amount)
    fields = {
        "fund": fund,
        "changes": parsed,
        "public_health": public_health,
        "public_health_service": public_health_service,
        "title": title,
    }
    state = _start_case(
        settings,
        as_,
        command_id,
        lambda app, actor, cid: app.start_funding_change(actor=actor, fields=fields, command_id=cid),
    )
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
    if isinstance(state, ProposalState):
        _out(as_json, state_dict(state), lambda c: render.case(c, state, cases.policy))
    else:
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
    sys.stderr.write(f"concordat: {message}\n")
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
