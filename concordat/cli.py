"""The `concordat` command line: thin. Parse → command → one clear line for any refusal.

Exit codes: 0 done; 1 refused by a rule or not found; 2 bad usage; 69 Temporal unreachable or failing;
75 the store unavailable (try again); 70 an internal error (details in the data dir's log).
"""

from __future__ import annotations

import gc
import getpass
import json
import os
import sys
import traceback
import uuid
from collections.abc import Callable, Coroutine
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast, get_args, get_origin
from zoneinfo import ZoneInfo

import click

from concordat.fields import (
    AgreementIn,
    DisputeIn,
    Fields,
    FoiIn,
    FundIn,
    FundingIn,
    ProposalIn,
    TerminationIn,
    VariationIn,
)
from domain.errors import CaseNotFoundError, ConcordatError, InvalidInputError, NotAllowedError

if TYPE_CHECKING:
    from pydantic import ValidationError
    from rich.console import Console
    from temporalio.service import RPCError

    from concordat.commands import Commands
    from concordat.engine import CommandRefusedError, Sweep
    from concordat.settings import Settings
    from domain.actor import Actor
    from domain.application import CaseService
    from domain.audit import Auditor, Head
    from domain.directory import Directory
    from domain.identity import Identity
    from domain.policy import Policy

T = TypeVar("T")
LONDON = ZoneInfo("Europe/London")


def _as_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--as ROLE:ID` and `--json`, on every command that acts for a person."""
    f = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")(f)
    return click.option(
        "--as",
        "as_",
        metavar="ROLE",
        default=None,
        help="The role to act in, one the signed-in person holds (ROLE, or ROLE:ID with your own id, "
        "e.g. secretary:board or secretary:board:sam). Default: $CONCORDAT_ACTOR, else the one that fits.",
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
    from pydantic import ValidationError

    from concordat import bootstrap
    from concordat.settings import Settings

    try:
        settings = Settings()
    except ValidationError as err:
        first = err.errors()[0]
        raise Failure(f"setting CONCORDAT_{str(first['loc'][0]).upper()}: {first['msg']}", 2) from None
    bootstrap.configure_logging(settings)
    return settings


@dataclass
class Session:
    """The person at the command line, proven by their token, and the role they asked to act in."""

    settings: Settings
    cases: CaseService
    identity: Identity
    role: str | None

    def reader(self) -> Actor:
        """For reading: the chosen role, or the person's first (every role may read)."""
        return self.identity.any_role(self.role)

    def admin(self) -> Actor:
        """For operator commands: the person as an administrator."""
        return self.identity.admin()

    def for_person(self, user_id: str | None) -> tuple[str, Actor]:
        """The person a command is about (default: oneself) and who acts: oneself, or an administrator
        for anyone else."""
        who = (user_id or self.identity.user_id).strip()
        return who, self.reader() if who == self.identity.user_id else self.admin()

    def commands(self) -> Commands:
        from concordat.commands import Commands
        from domain.directory import Directory

        return Commands(settings=self.settings, cases=self.cases, directory=Directory(self.cases), door="cli")


# What the boundary needs to record a refusal: the store, and who (proven or claimed) tried what.
_attempt: dict[str, Any] = {}


def _open(settings: Settings) -> CaseService:
    from concordat import bootstrap

    cases = bootstrap.open_cases(settings)
    _attempt["cases"] = cases
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        _attempt["command"] = ctx.command_path.removeprefix("concordat").strip()
    return cases


def _session(settings: Settings, as_: str | None, cases: CaseService | None = None) -> Session:
    """The signed-in person (CONCORDAT_TOKEN, or `concordat login`'s credentials for this store), or a
    refusal, recorded: nobody acts at the command line on a claim."""
    from concordat import signin
    from domain.directory import Directory
    from domain.identity import AuthenticationError, NotSignedInError
    from domain.store import store_id

    cases = cases or _open(settings)
    wanted = (as_ or settings.actor or "").strip() or None
    _attempt["claimed"] = wanted or ""
    found = signin.token_for(settings, store_id(cases))
    if found is None:
        raise NotSignedInError(
            "you are not signed in: run `concordat login` (or set CONCORDAT_TOKEN to an API token); "
            "no one acts at the command line by naming themselves"
        )
    token, source = found
    try:
        identity = Directory(cases).identity_of_token(token)
    except AuthenticationError:
        raise AuthenticationError(
            f"the token from {source} is not valid (revoked, expired with its user's roles, or for another "
            "store): sign in again with `concordat login`"
        ) from None
    _attempt["identity"] = identity
    return Session(settings, cases, identity, _chosen_role(identity, wanted, cases.policy))


def _chosen_role(identity: Identity, wanted: str | None, policy: Policy) -> str | None:
    """The role `--as` names: ROLE, or ROLE:ID where ID must be the signed-in person's own."""
    if not wanted:
        return None
    if wanted in identity.roles:
        return wanted
    if policy.is_known_role(wanted):
        identity.actor(wanted)  # a role they do not hold: refused, naming the ones they do
    role, sep, ident = wanted.rpartition(":")
    if sep and role and ident == identity.user_id:
        identity.actor(role)  # refuses a role they do not hold, naming the ones they do
        return role
    if sep and role and ident and ident != identity.user_id:
        raise NotAllowedError(
            f"you are signed in as {identity.user_id}, not {ident}: a command acts only for the person signed in "
            f"(`concordat login` as {ident} to act as them)"
        )
    identity.actor(wanted)
    return wanted


def _run(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio  # here: only the commands that talk to Temporal need it

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
    from concordat import bootstrap
    from concordat.engine import TemporalUnavailableError

    try:
        return await bootstrap.connect(settings)
    except RuntimeError:
        raise TemporalUnavailableError(
            f"cannot reach Temporal at {settings.temporal_address}; is `concordat up` running "
            "with the same CONCORDAT_ settings?"
        ) from None


def _out(as_json: bool, data: Any, text: Callable[[Console], None]) -> None:
    from concordat import render

    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        text(render.console())


def _command_id(given: str | None) -> str:
    if given is not None and not given.strip():
        raise InvalidInputError("--command-id is empty")
    _refuse_if_read_only()
    cid = given or str(uuid.uuid4())
    _attempt["command_id"] = cid  # printed if the outcome is not known (`_unknown_outcome`)
    return cid


def _refuse_if_read_only() -> None:
    """A command that writes, on a store opened read-only (an auditor's copy): said at once, before
    Temporal or the store is asked to do anything."""
    from pydantic import ValidationError

    from concordat import bootstrap
    from concordat.settings import Settings

    try:
        settings = Settings()
    except ValidationError:
        return  # said by the command's own settings check
    if bootstrap.read_only(settings):
        raise Failure(bootstrap.read_only_refusal(settings), 77)


class _ViewChoice(click.Choice):
    """The projected views' names (`bootstrap.VIEW_NAMES`), read when a command needs them (its help,
    or `--view` given) rather than when the command tree is built: building it imports no store."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        from concordat import bootstrap

        return bootstrap.VIEW_NAMES

    @choices.setter
    def choices(self, value: object) -> None:
        pass  # the names come from bootstrap, always


def _start_options(model: type[Fields]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A start command's options, made from the fields its kind declares (concordat.fields): one
    `--kebab-name` per field, with the field's description as its help."""

    def add(f: Callable[..., Any]) -> Callable[..., Any]:
        for name, info in reversed(list(model.model_fields.items())):
            flag, kinds = "--" + name.replace("_", "-"), {info.annotation, *get_args(info.annotation)}
            if info.annotation is bool:
                f = click.option(flag, name, is_flag=True, help=info.description)(f)
            elif bool in kinds:  # an optional assertion: given, True; left out, None
                f = click.option(flag, name, is_flag=True, flag_value=True, default=None, help=info.description)(f)
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
    from concordat import up as supervisor

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


@app.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def migrate(as_json: bool) -> None:
    """Make or bring up to date the store's tables, once, under a lock (run before the processes start:
    `up` and the deployment do; a new store is also made by the first process that opens it)."""
    from concordat import schema

    done = schema.migrate(_settings())
    data = {"store": done.store, "schema_version": done.version, "was": done.found, "changed": done.changed}
    what = f"from version {done.found}" if done.changed and done.found else "made" if done.changed else "up to date"
    _out(as_json, data, lambda c: c.print(f"{done.store}: schema version {done.version} ({what})"))


@app.group("user")
def user_app() -> None:
    """People who may sign in, and their roles (every change is an event in the store)."""


@app.group("token")
def token_app() -> None:
    """API tokens: created for a person, shown once, stored only as a hash."""


def _admin(settings: Settings, as_: str | None) -> tuple[Directory, Actor]:
    """The directory, and the signed-in administrator changing it."""
    from domain.directory import Directory

    session = _session(settings, as_)
    return Directory(session.cases), session.admin()


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
    help="A role they hold, e.g. jcu_lead, secretary:board, party_rep:PCC, admin; repeat for more.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read their password (12 characters at least) from standard input."
)
@click.option("--email", default=None, metavar="ADDRESS", help="Where their reminders and escalations are sent.")
@_command_opts
def user_add(
    user_id: str,
    roles: tuple[str, ...],
    password_stdin: bool,
    email: str | None,
    as_: str | None,
    as_json: bool,
    command_id: str | None,
) -> None:
    """Add a person who may sign in, with their roles (an administrator's command).

    While the store has nobody yet, the first person is added here at the shell, without signing in,
    and must be an administrator (--role admin): they sign in and add everyone else."""
    from concordat import render
    from domain.actor import Actor
    from domain.directory import Directory

    settings = _settings()
    cases = _open(settings)
    people = Directory(cases)
    if people.has_users():
        by = _session(settings, as_, cases).admin()
    else:
        by = Actor(id=_shell_user(), role="shell")
    view = people.add_user(
        user_id,
        list(roles),
        by=by,
        command_id=_command_id(command_id),
        password=_password(password_stdin),
        email=email,
    )
    _out(as_json, view, lambda c: render.user(c, view))


@user_app.command("email")
@click.argument("address", metavar="ADDRESS")
@click.argument("user_id", metavar="ID", required=False)
@_command_opts
def user_email(address: str, user_id: str | None, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Set where your reminders and escalations are sent (or, an administrator, another person's);
    "" removes it."""
    from concordat import render
    from domain.directory import Directory

    settings = _settings()
    session = _session(settings, as_)
    who, by = session.for_person(user_id)
    view = Directory(session.cases).set_email(who, address, by=by, command_id=_command_id(command_id))
    _out(as_json, view, lambda c: render.user(c, view))


def _shell_user() -> str:
    """Who ran the very first `user add`, as the operating system knows them (recorded on it)."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError):
        name = ""
    return name.strip() or "unknown"


@user_app.command("grant")
@click.argument("user_id", metavar="ID")
@click.option("--role", "roles", multiple=True, required=True, metavar="ROLE", help="A role to grant; repeat for more.")
@_command_opts
def user_grant(user_id: str, roles: tuple[str, ...], as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Grant roles to a person (an administrator's command; never to oneself)."""
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
    from concordat import render

    settings = _settings()
    cid = _command_id(command_id)
    people, by = _admin(settings, as_)
    apply = people.grant if change == "grant" else people.revoke
    view: dict[str, Any] = {}
    for n, role in enumerate(roles):
        view = apply(user_id, role, by=by, command_id=f"{cid}:{n}" if len(roles) > 1 else cid)
    _out(as_json, view, lambda c: render.user(c, view))


@user_app.command("password")
@click.argument("user_id", metavar="ID", required=False)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of asking for it.")
@_command_opts
def user_password(
    user_id: str | None, password_stdin: bool, as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """Set your own password, or (an administrator) another person's: 12 characters at least, asked
    for at the terminal without echo."""
    from concordat import render
    from domain.directory import Directory

    settings = _settings()
    session = _session(settings, as_)
    who, by = session.for_person(user_id)
    password = _password(password_stdin, ask_for=who) or ""
    view = Directory(session.cases).set_password(who, password, by=by, command_id=_command_id(command_id))
    _out(as_json, view, lambda c: render.user(c, view))


@user_app.command("list")
@_as_option
def user_list(as_: str | None, as_json: bool) -> None:
    """Everyone who may sign in, with their roles (for a signed-in person)."""
    from concordat import render
    from domain.directory import Directory

    session = _session(_settings(), as_)
    session.reader()
    people = Directory(session.cases).list()
    _out(as_json, people, lambda c: render.users(c, people))


@user_app.command("show")
@click.argument("user_id", metavar="ID", required=False)
@_as_option
def user_show(user_id: str | None, as_: str | None, as_json: bool) -> None:
    """One person (default: you): roles, whether they have a password, their tokens (ids only)."""
    from concordat import render
    from domain.directory import Directory

    session = _session(_settings(), as_)
    session.reader()
    view = Directory(session.cases).get(user_id or session.identity.user_id)
    _out(as_json, view, lambda c: render.user(c, view))


@token_app.command("create")
@click.argument("user_id", metavar="ID", required=False)
@_command_opts
def token_create(user_id: str | None, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Create an API token for yourself, or (an administrator) for another person, and print it once
    (only its hash is kept)."""
    from concordat import render
    from domain.directory import Directory

    settings = _settings()
    session = _session(settings, as_)
    who, by = session.for_person(user_id)
    issued = Directory(session.cases).issue_token(who, by=by, command_id=_command_id(command_id))
    if as_json:
        _out(True, {"token": issued.token, "id": issued.token_id, "user": issued.user_id}, lambda c: None)
        return
    sys.stdout.write(issued.token + "\n")
    sys.stdout.flush()  # the token first, then the note, whether the two streams go to one place or not
    sys.stderr.write(
        f"token {issued.token_id} for {render.inert(issued.user_id)}: shown once; revoke with "
        f"`concordat token revoke {issued.token_id}`\n"
    )


@token_app.command("revoke")
@click.argument("token_id", metavar="TOKEN_ID")
@_command_opts
def token_revoke(token_id: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Revoke an API token by its id (or the whole token); it stops working at once. Your own, or
    (an administrator) anyone's."""
    from concordat import render
    from domain.directory import Directory
    from domain.policy import ADMIN_ROLE

    settings = _settings()
    session = _session(settings, as_)
    by = session.admin() if ADMIN_ROLE in session.identity.roles else session.reader()
    view = Directory(session.cases).revoke_token(token_id, by=by, command_id=_command_id(command_id))
    _out(as_json, view, lambda c: render.user(c, view))


@app.command()
@click.argument("user_id", metavar="ID", required=False)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")
def login(user_id: str | None, password_stdin: bool, as_json: bool) -> None:
    """Sign in: your id and password make a token for this store, kept in your credentials file
    (readable only by you) until `concordat logout`. Every command then acts as you."""
    from concordat import bootstrap, render, signin
    from domain.directory import Directory
    from domain.store import store_id

    settings = _settings()
    cases = _open(settings)
    if not user_id:
        if password_stdin or not sys.stdin.isatty():
            raise InvalidInputError("give your user id: concordat login ID")
        user_id = input("User id: ")
    _attempt["claimed"] = user_id
    if password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise InvalidInputError("--password-stdin: nothing on standard input")
        password = line.rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass(f"Password for {user_id}: ")
    else:
        raise InvalidInputError("no terminal to ask for the password on: pipe it in with --password-stdin")
    people = Directory(cases)
    identity = people.sign_in(user_id, password)
    _attempt["identity"] = identity
    issued = people.issue_token(
        identity.user_id, by=identity.any_role(), command_id=f"login:{identity.user_id}:{uuid.uuid4()}"
    )
    store = store_id(cases)
    previous = signin.saved(settings, store)
    path = signin.save(
        settings,
        store,
        user=identity.user_id,
        token=issued.token,
        token_id=issued.token_id,
        where=bootstrap.describe_store(settings),
    )
    if previous and previous.get("token_id"):
        with suppress(ConcordatError):  # the replaced sign-in's token stops working (if it still does)
            old = people.identity_of_token(previous["token"])
            people.revoke_token(previous["token_id"], by=old.any_role(), command_id=f"logout:{previous['token_id']}")
    data = {
        "user": identity.user_id,
        "roles": list(identity.roles),
        "token_id": issued.token_id,
        "credentials": str(path),
    }
    _out(
        as_json,
        data,
        lambda c: c.print(
            f"signed in as {render.inert(identity.user_id)} ({', '.join(identity.roles)}); "
            f"token {issued.token_id} kept in {path}",
            highlight=False,
            markup=False,
        ),
    )


@app.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")
def logout(as_json: bool) -> None:
    """Sign out: revoke the token `concordat login` made and forget it."""
    from concordat import render, signin
    from domain.directory import Directory
    from domain.store import store_id

    settings = _settings()
    cases = _open(settings)
    entry = signin.forget(settings, store_id(cases))
    revoked = False
    if entry:
        people = Directory(cases)
        with suppress(ConcordatError):  # already revoked, or its person gone: forgetting it is enough
            who = people.identity_of_token(entry["token"])
            people.revoke_token(entry["token_id"], by=who.any_role(), command_id=f"logout:{entry['token_id']}")
            revoked = True
    data = {"signed_out": bool(entry), "user": (entry or {}).get("user"), "token_revoked": revoked}
    _out(
        as_json,
        data,
        lambda c: c.print(
            f"signed out {render.inert(entry['user'])}; token {entry['token_id']} revoked"
            if entry
            else "nobody was signed in to this store here",
            highlight=False,
            markup=False,
        ),
    )


@app.command()
@_as_option
def whoami(as_: str | None, as_json: bool) -> None:
    """Who the command line acts as: the signed-in person, their roles, and where the proof comes from."""
    from concordat import render, signin
    from domain.store import store_id

    settings = _settings()
    session = _session(settings, as_)
    found = signin.token_for(settings, store_id(session.cases))
    data = {
        "user": session.identity.user_id,
        "roles": list(session.identity.roles),
        "acting_as": session.role,
        "from": found[1] if found else "",
    }
    _out(
        as_json,
        data,
        lambda c: c.print(
            f"{render.inert(session.identity.user_id)} ({', '.join(session.identity.roles)}), signed in by {data['from']}",
            highlight=False,
            markup=False,
        ),
    )


@app.command()
@click.option(
    "--migrate",
    is_flag=True,
    help="Also move cases whose workflow runs under an old type (ProposalWorkflow, DisputeWorkflow, …) "
    "to CaseWorkflow.",
)
@_as_option
def resume(migrate: bool, as_: str | None, as_json: bool) -> None:
    """Make sure every live case has its workflow running (after Temporal lost its state, a restore, or a
    workflow terminated or cancelled through Temporal's UI or CLI).

    The store is the record: each case that can still change gets its workflow started from the case
    as stored, so its reminders, deadlines and notice periods run again (one already due fires at
    once). A workflow that ended outside the engine's control (terminated, cancelled, timed out,
    failed, or missing) is first recorded on the case (`WorkflowInterrupted` in `concordat history`).
    A workflow that is running already is left as it is; running this twice changes nothing (the
    workers do the same every $CONCORDAT_WATCH_SECONDS). With --migrate, a case whose running workflow is of an old type is moved to CaseWorkflow: the old
    run is terminated (with the reason recorded in Temporal's history) and CaseWorkflow started from
    the store, so nothing of the case is lost (runbook: "Moving running cases to CaseWorkflow").
    An administrator's command."""
    from concordat.engine import is_live, migrate_workflow, sweep

    settings = _settings()
    session = _session(settings, as_)
    session.admin()
    cases = session.cases

    async def go() -> tuple[Sweep, int]:
        client = await _client(settings)
        moved = 0
        if migrate:
            for reference in cases.references():
                state = cases.state(reference, history=False)
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
            "workflows_without_case": found.orphans,
        },
        lambda c: c.print(
            f"{found.live} live of {found.cases} cases: each has its workflow running; "
            f"{found.interrupted} found ended outside the engine, recorded and restarted"
            + (f"; {found.started - found.interrupted} more started" if found.started > found.interrupted else "")
            + (f"; {moved} moved to CaseWorkflow" if migrate else "")
            + (
                f"; {found.orphans} {'workflow runs' if found.orphans == 1 else 'workflows run'} with no live case"
                " (see the worker's log)"
                if found.orphans
                else ""
            ),
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
    from concordat import render
    from domain.policy import Policy

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
@click.option("--kind", default=None, help="One kind's route only: proposal, variation, funding or fund.")
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
    from concordat import bootstrap, render
    from domain.policy import Policy

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
    from concordat import processes

    raise SystemExit(processes.run_worker(_settings()))


@app.group(invoke_without_command=True)
@click.pass_context
def projections(ctx: click.Context) -> None:
    """The views' projection runner: alone, run it (as `concordat up` does); or see and retry the events
    a view could not project (quarantined, so that one bad event stops nothing)."""
    from concordat import processes

    if ctx.invoked_subcommand is None:
        raise SystemExit(processes.run_projections(_settings()))


@app.group(invoke_without_command=True)
@click.pass_context
def outbox(ctx: click.Context) -> None:
    """Reminders and escalations by email: alone, run the outbox (as `concordat up` does): it writes a
    row per reminder and person from the event log and sends each through CONCORDAT_SMTP_HOST."""
    from concordat import processes

    if ctx.invoked_subcommand is None:
        raise SystemExit(processes.run_outbox(_settings()))


@outbox.command("list")
@click.option("--all", "all_", is_flag=True, help="Everyone's (an administrator's or auditor's view).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@_as_option
def outbox_list(all_: bool, limit: int, as_: str | None, as_json: bool) -> None:
    """Your reminders and escalations, newest first, and whether each was sent (--all: everyone's)."""
    from concordat import bootstrap, render
    from domain.policy import ADMIN_ROLE

    settings = _settings()
    session = _session(settings, as_)
    session.reader()
    if all_ and not {ADMIN_ROLE, "auditor"} & set(session.identity.roles):
        raise NotAllowedError("only an administrator or an auditor sees everyone's reminders (--all)")
    view = bootstrap.open_outbox(settings)
    try:
        rows = view.rows(recipient=None if all_ else session.identity.user_id, limit=limit)
    finally:
        view.datastore.close()
    _out(as_json, rows, lambda c: render.outbox(c, rows))


@projections.command("quarantined")
@_as_option
def projections_quarantined(as_: str | None, as_json: bool) -> None:
    """The events each view holds back, with the error that stopped each (an administrator's command)."""
    from concordat import bootstrap, render

    settings = _settings()
    _session(settings, as_).admin()
    found = bootstrap.quarantined(settings)
    _out(as_json, found, lambda c: render.quarantined(c, found))


@projections.command("retry")
@click.option(
    "--view",
    "views",
    multiple=True,
    type=_ViewChoice(),
    help="Only this view; repeat for more (default: every view).",
)
@_as_option
def projections_retry(views: tuple[str, ...], as_: str | None, as_json: bool) -> None:
    """Project the quarantined events again, oldest first (after the cause is fixed: a new release, a
    setting); exit 1 if any is still held back. Safe while the runner runs, and to repeat."""
    from concordat import bootstrap, render

    settings = _settings()
    _session(settings, as_).admin()
    results = bootstrap.retry_quarantined(settings, list(views) or None)
    data = [asdict(r) for r in results]
    _out(as_json, data, lambda c: render.retried(c, results))
    if any(r.still for r in results):
        raise SystemExit(1)


@proposal_app.command("start")
@_start_options(ProposalIn)
@_command_opts
def proposal_start(as_: str | None, as_json: bool, command_id: str | None, **options: Any) -> None:
    """Start a proposal at its route's first stage (the JCU); prints its reference."""
    from concordat.as_json import state_dict

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
@click.option("--meeting", default="", help="The meeting it was taken at (MTG-…), for a forum that meets.")
@click.option(
    "--taking-part",
    default="",
    help="With --meeting: the members who took part, comma-separated (default: all present).",
)
@click.option("--written-procedure", is_flag=True, help="Taken by written procedure, without a meeting.")
@_command_opts
def decide(
    reference: str,
    stage: str,
    outcome: str,
    minutes_ref: str,
    note: str,
    stage_outcome: str | None,
    deadline: str | None,
    meeting: str,
    taking_part: str,
    written_procedure: bool,
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
        "meeting": meeting,
        "taking_part": taking_part,
        "written_procedure": written_procedure,
    }
    _act(_settings(), as_, command_id, reference, "decide", fields, as_json)


@app.command("call-in")
@click.argument("reference")
@click.option("--stage", required=True, help="The stage whose decision is called in, e.g. pcc_decision.")
@click.option("--members", required=True, help="The scrutiny members calling it in, comma-separated.")
@click.option("--reason", required=True, help="Why it is called in.")
@_command_opts
def call_in(
    reference: str, stage: str, members: str, reason: str, as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """Call in a council body's decision within its call-in period (the scrutiny forum's secretary)."""
    fields = {"stage": stage, "members": members, "reason": reason}
    _act(_settings(), as_, command_id, reference, "call-in", fields, as_json)


@app.command()
@click.argument("reference")
@click.option("--note", default="", help="Why it is withdrawn.")
@_command_opts
def withdraw(reference: str, note: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Withdraw an open proposal, variation or funding change (JCU leads), your notice, or yourself as mediator."""
    _act(_settings(), as_, command_id, reference, "withdraw", {"note": note}, as_json)


@app.group("dispute")
def dispute_app() -> None:
    """Disputes between partners: the Lead Director first, then an agreed, appointed mediator."""


@app.group("termination")
def termination_app() -> None:
    """Notices to leave the partnership (six months at least), withdrawal, and agreements by mutual consent."""


def _start_case(settings: Settings, as_: str | None, command_id: str | None, kind: str, fields: dict[str, Any]) -> Any:
    """Open a case of `kind` and start its workflow, on the one command path (concordat.commands)."""
    session = _session(settings, as_)
    cid = _command_id(command_id)
    _attempt["command_id"] = cid
    return _run(session.commands().start(kind, session.identity, fields, cid, session.role))


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
    from concordat import render
    from concordat.as_json import state_dict

    session = _session(settings, as_)
    who, role = session.identity, session.role
    cid = _command_id(command_id)
    _attempt.update(command_id=cid, reference=reference)
    cmds = session.commands()
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
    from concordat.as_json import state_dict

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
    "--mediator",
    required=True,
    metavar="ID",
    help="The nominee's user id (e.g. mo): a person who holds the mediator role and no role of a party.",
)
@click.option("--note", default="")
@_command_opts
def dispute_nominate(
    reference: str, mediator: str, note: str, as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """Nominate a mediator (or, during mediation, a replacement); every party to the dispute must then agree."""
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


@dispute_app.command("object")
@click.argument("reference")
@click.option("--reason", required=True, help="Why the nominee is not independent, for the record.")
@_command_opts
def dispute_object(reference: str, reason: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Your party objects that the nominee is not independent: the nominee lapses, for good in this dispute."""
    _act(_settings(), as_, command_id, reference, "object", {"reason": reason}, as_json)


@dispute_app.command("withdraw")
@click.argument("reference")
@click.option("--note", default="", help="Why, for the record.")
@_command_opts
def dispute_withdraw(reference: str, note: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """The appointed mediator withdraws (--as mediator:ID); the parties then select another."""
    _act(_settings(), as_, command_id, reference, "withdraw", {"note": note}, as_json)


@dispute_app.command("appoint")
@click.argument("reference")
@click.option("--letter-ref", required=True, help="Reference of the letter of appointment (appointed in writing).")
@_command_opts
def dispute_appoint(reference: str, letter_ref: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Appoint the agreed mediator, in writing (a replacement takes the first mediator's place)."""
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
    from concordat.as_json import state_dict

    state = _start_case(_settings(), as_, command_id, "termination", _given(TerminationIn, options))
    _out(as_json, state_dict(state), lambda c: c.print(f"{state.reference} effective {state.details['effective']}"))


@termination_app.command("withdraw")
@click.argument("reference")
@click.option("--note", default="", help="Why, for the record.")
@_command_opts
def termination_withdraw(reference: str, note: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Withdraw your party's notice before it takes effect."""
    _act(_settings(), as_, command_id, reference, "withdraw", {"note": note}, as_json)


@termination_app.command("propose")
@_start_options(AgreementIn)
@_command_opts
def termination_propose(as_: str | None, as_json: bool, command_id: str | None, **options: Any) -> None:
    """Propose termination by mutual consent: --leaving PARTY leaves (or, without it, the partnership
    ends) on the agreed date. You sign it for your party as you propose it (--as party_rep:PARTY:ID)."""
    from concordat import render
    from concordat.as_json import state_dict

    state = _start_case(_settings(), as_, command_id, "agreement", _given(AgreementIn, options))
    _out(as_json, state_dict(state), lambda c: render.agreement_line(c, state))


@termination_app.command("agree")
@click.argument("reference")
@_command_opts
def termination_agree(reference: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Your party signs a termination agreement; once every party has, no one party can undo it."""
    _act(_settings(), as_, command_id, reference, "agree", {}, as_json)


@termination_app.command("consent")
@click.argument("reference")
@click.option("--effective", required=True, metavar="YYYY-MM-DD", help="The date the partnership ends.")
@_command_opts
def termination_consent(reference: str, effective: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Consent to ending the partnership on a date, by mutual consent (the command of earlier releases,
    kept: it signs the open agreement to end the partnership on that date for your party, or, if there is
    none, proposes one naming notice REFERENCE; see `propose`, `agree`)."""
    from concordat import render
    from concordat.as_json import state_dict

    settings = _settings()
    day = _date(effective, "--effective")
    session = _session(settings, as_)
    cid = _command_id(command_id)
    _attempt.update(reference=reference)
    state, _ = _run(session.commands().consent(session.identity, reference, day, cid, session.role))
    _out(as_json, state_dict(state), lambda c: render.agreement_line(c, state))


@termination_app.command("refuse")
@click.argument("reference")
@click.option("--note", default="", help="Why, for the record.")
@_command_opts
def termination_refuse(reference: str, note: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Your party refuses a termination agreement before every party has signed it (it then fails)."""
    _act(_settings(), as_, command_id, reference, "refuse", {"note": note}, as_json)


@app.group("variation")
def variation_app() -> None:
    """Contract variations: from the JCU's draft through the board (and CCG) to the provider."""


@variation_app.command("start")
@_start_options(VariationIn)
@_command_opts
def variation_start(as_: str | None, as_json: bool, command_id: str | None, **options: Any) -> None:
    """Start a contract variation at its route's first stage (the JCU); prints its reference."""
    from concordat.as_json import state_dict

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
    from concordat.as_json import state_dict

    state = _start_case(_settings(), as_, command_id, "funding", _given(FundingIn, options))
    _out(as_json, state_dict(state), lambda c: c.print(state.reference))


@app.group("fund")
def fund_app() -> None:
    """Aligned and pooled funds: their balance, contributions and the changes applied to them."""


@fund_app.command("open")
@_start_options(FundIn)
@_command_opts
def fund_open(as_: str | None, as_json: bool, command_id: str | None, **options: Any) -> None:
    """Propose to open a fund (JCU leads); prints the case's reference. It opens when the
    Programme Board agrees (ToR 4.2), after Public Health is consulted on a ring-fenced one."""
    from concordat.as_json import state_dict

    state = _start_case(_settings(), as_, command_id, "fund", _given(FundIn, options))
    _out(as_json, state_dict(state), lambda c: c.print(state.reference, highlight=False))


@fund_app.command("show")
@click.argument("name")
@_as_option
def fund_show(name: str, as_: str | None, as_json: bool) -> None:
    """A fund's balance, contributions and the changes applied to it."""
    from concordat import render

    session = _session(_settings(), as_)
    view = session.cases.fund_view(name, actor=session.reader())
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
    """Ring-fenced public-health money per party per financial quarter (Q1 = April-June): what each
    party contributed, the changes approved and its balance at the quarter's end."""
    from concordat import bootstrap, render

    settings = _settings()
    session = _session(settings, as_)
    actor, cases = session.reader(), session.cases
    cases.authorize_read(actor)
    view = bootstrap.open_public_health(settings)
    lag = render.wait_for_view(view, cases)
    report = view.report(year, cases.policy.partnership.parties)
    if as_csv:
        render.csv_out(report)
    else:
        _out(as_json, render.with_pounds(report), lambda c: render.public_health(c, report, lag))


# --- Freedom of Information requests (MOU, FOI; domain/foi.py) ------------------------------------


@app.group("foi")
def foi_app() -> None:
    """Freedom of Information requests: answered by the party first approached within 20 UK working
    days, with the response agreed by the other parties."""


@foi_app.command("receive")
@_start_options(FoiIn)
@_command_opts
def foi_receive(as_: str | None, as_json: bool, command_id: str | None, **options: Any) -> None:
    """Record a request your party received (--as party_rep:PARTY:ID); prints its reference and due date."""
    from concordat.as_json import state_dict

    state = _start_case(_settings(), as_, command_id, "foi", _given(FoiIn, options))
    _out(
        as_json,
        state_dict(state),
        lambda c: c.print(f"{state.reference} due {state.details['due']}", highlight=False),
    )


def _on_option(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--note", default="", help="A note for the record.")(f)
    return click.option("--on", "on", default=None, metavar="YYYY-MM-DD", help="The day it happened (default today).")(
        f
    )


def _foi_step(name: str, help_text: str) -> None:
    def step(reference: str, on: str | None, note: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
        fields = {"on": _date(on, "--on") if on else None, "note": note}
        _act(_settings(), as_, command_id, reference, name, fields, as_json)

    step.__doc__ = help_text
    step.__name__ = "foi_" + name.replace("-", "_")
    foi_app.command(name)(click.argument("reference")(_on_option(_command_opts(step))))


for _step, _help in [
    ("seek-clarification", "Ask the requester to clarify (s.1(3)): the clock stops until the answer arrives."),
    ("clarification-received", "The clarification arrived: the 20 working days start again from that day."),
    ("fees-notice", "A fees notice was given (s.10(2)): the clock stops until the fee is paid."),
    ("fee-paid", "The fee was paid: the days it stood unpaid are disregarded."),
    ("send-response", "Send the response every other party agreed: recorded on time or late."),
]:
    _foi_step(_step, _help)


@foi_app.command("extend-public-interest")
@click.argument("reference")
@click.option("--to", "to", required=True, metavar="YYYY-MM-DD", help="The new due date (a UK working day).")
@click.option("--reason", required=True, help="The exemption whose public interest test needs the time.")
@_command_opts
def foi_extend(reference: str, to: str, reason: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """A public-interest extension (s.10(3)): a later due date, with its reason."""
    fields = {"to": _date(to, "--to"), "reason": reason}
    _act(_settings(), as_, command_id, reference, "extend-public-interest", fields, as_json)


@foi_app.command("draft-response")
@click.argument("reference")
@click.option("--draft-ref", required=True, help="The draft response's document reference.")
@click.option("--exemption", "exemptions", multiple=True, help="An exemption it cites, e.g. s.43(2); repeat for more.")
@click.option("--note", default="", help="A note for the record.")
@_command_opts
def foi_draft(
    reference: str,
    draft_ref: str,
    exemptions: tuple[str, ...],
    note: str,
    as_: str | None,
    as_json: bool,
    command_id: str | None,
) -> None:
    """Put the draft response to each other party for agreement (a new draft needs agreement afresh)."""
    fields = {"draft_ref": draft_ref, "exemptions": list(exemptions), "note": note}
    _act(_settings(), as_, command_id, reference, "draft-response", fields, as_json)


@foi_app.command("agree")
@click.argument("reference")
@_command_opts
def foi_agree(reference: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Your party agrees the draft response (or, once a party's silence is escalated, the Lead Director does)."""
    _act(_settings(), as_, command_id, reference, "agree", {}, as_json)


@foi_app.command("refuse")
@click.argument("reference")
@click.option("--note", default="", help="Why, for the record.")
@_command_opts
def foi_refuse(reference: str, note: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Your party does not agree the draft response: a new draft is needed."""
    _act(_settings(), as_, command_id, reference, "refuse", {"note": note}, as_json)


@foi_app.command("register")
@click.option("--csv", "as_csv", is_flag=True, help="Print the requests as CSV.")
@_as_option
def foi_register(as_csv: bool, as_: str | None, as_json: bool) -> None:
    """Every FOI request with its due date and answer, and the share answered on time per quarter."""
    from concordat import render

    session = _session(_settings(), as_)
    report = session.cases.foi_register(actor=session.reader())
    if as_csv:
        render.foi_csv(report)
    else:
        _out(as_json, report, lambda c: render.foi_register(c, report))


# --- review and report cycles (domain/cycles.py, concordat/schedules.py) -------------------------


@app.group("schedules", invoke_without_command=True)
@_as_option
@click.pass_context
def schedules_app(ctx: click.Context, as_: str | None, as_json: bool) -> None:
    """The policy's review and report cycles (Temporal Schedules): alone, list each with its next
    firings; `pause` and `resume` are an administrator's."""
    from concordat import render, schedules

    if ctx.invoked_subcommand is not None:
        return
    settings = _settings()
    session = _session(settings, as_)
    session.reader()

    async def listed() -> list[dict[str, Any]]:
        return await schedules.listing(await _client(settings), session.cases.policy)

    rows = _run(listed())
    _out(as_json, rows, lambda c: render.schedules(c, rows))


def _schedule_control(
    name: str, reason: str, as_: str | None, as_json: bool, command_id: str | None, paused: bool
) -> None:
    from concordat import schedules

    settings = _settings()
    session = _session(settings, as_)
    actor = session.admin()
    schedules.check_name(session.cases.policy, name)
    cid = _command_id(command_id)
    _attempt.update(reference=f"schedule:{name}")
    recorded = session.cases.record_schedule_control(
        actor=actor, name=name, paused=paused, reason=reason, command_id=cid
    )

    async def apply() -> None:
        client = await _client(settings)
        note = f"{'paused' if paused else 'resumed'} by {actor.id}: {reason.strip()}"
        await (schedules.pause(client, name, note) if paused else schedules.resume(client, name, note))

    _run(apply())
    _out(as_json, recorded, lambda c: c.print(f"{name} {'paused' if paused else 'resumed'}", highlight=False))


@schedules_app.command("pause")
@click.argument("name")
@click.option("--reason", required=True, help="Why, for the record.")
@_command_opts
def schedules_pause(name: str, reason: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Stop a schedule firing until it is resumed (an administrator's; recorded with the reason)."""
    _schedule_control(name, reason, as_, as_json, command_id, paused=True)


@schedules_app.command("resume")
@click.argument("name")
@click.option("--reason", default="resumed", help="Why, for the record.")
@_command_opts
def schedules_resume(name: str, reason: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Let a paused schedule fire again (a firing missed while paused is not caught up)."""
    _schedule_control(name, reason, as_, as_json, command_id, paused=False)


@schedules_app.command("trigger")
@click.argument("name")
@click.option("--reason", default="fired by hand", help="Why, for the record.")
@_command_opts
def schedules_trigger(name: str, reason: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Fire a schedule now (an administrator's; recorded with the reason): a report wanted early, a
    firing missed while it was paused. Prints the case the firing opened. A second firing by hand
    within a minute of the last is refused: it would open the same report twice."""
    from concordat import schedules

    settings = _settings()
    session = _session(settings, as_)
    actor = session.admin()
    schedules.check_name(session.cases.policy, name)
    cid = _command_id(command_id)
    _attempt.update(reference=f"schedule:{name}")

    async def fire() -> tuple[dict[str, Any], schedules.Fired | None]:
        client = await _client(settings)
        before = await schedules.started_firings(client, name)  # Temporal holds it: else nothing is recorded
        recorded = session.cases.record_schedule_trigger(actor=actor, name=name, reason=reason, command_id=cid)
        if not recorded["fire"]:
            # Recorded by this command before. If Temporal never fired it (it failed or went away after
            # the record), the repeat fires it now; if it did, not again.
            at = recorded["at"]
            if at is None or await schedules.fired_since(client, name, datetime.fromisoformat(at)):
                return recorded, None
        return recorded, await schedules.trigger(client, name, before)

    recorded, fired = _run(fire())
    recorded = {**recorded, "case": fired.reference if fired else None, "problem": fired.problem if fired else None}

    def said(c: Console) -> None:
        if fired is None:
            c.print(f"{name} was fired by this command already, at {recorded['at']}: not again", highlight=False)
        elif fired.reference:
            c.print(f"{name} fired: {fired.reference}", highlight=False)
        else:
            c.print(f"{name} fired (recorded); {fired.problem}", highlight=False)

    _out(as_json, recorded, said)
    if fired is not None and fired.problem and fired.problem.startswith("the firing failed"):
        raise SystemExit(1)


@app.group("cycles")
def cycles_app() -> None:
    """Review (REV-) and report (RPT-) cases, opened by the policy's schedules."""


@cycles_app.command("list")
@_as_option
def cycles_list(as_: str | None, as_json: bool) -> None:
    """Every review and report case: its schedule, owner, due date and whether it is done."""
    from concordat import render
    from concordat.as_json import state_dict

    session = _session(_settings(), as_)
    found = [state_dict(v) for v in session.cases.cycles(actor=session.reader())]
    _out(as_json, found, lambda c: render.cycles(c, found))


@cycles_app.command("done")
@click.argument("reference")
@click.option("--document-ref", required=True, help="Where the review or report is kept (its document reference).")
@click.option("--note", default="", help="A note for the record.")
@_command_opts
def cycles_done(
    reference: str, document_ref: str, note: str, as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """The owner records the review or report done (once it is escalated, the escalation role may)."""
    _act(_settings(), as_, command_id, reference, "record-done", {"document_ref": document_ref, "note": note}, as_json)


# --- the risk register (domain/risk.py) -------------------------------------------------------------


@app.group("risk")
def risk_app() -> None:
    """The board's risk register: risks (RSK-) with an owner, likelihood and impact, mitigations and a
    review date; every change on the record."""


def _risk_write(as_: str | None, command_id: str | None, call: Callable[[Any, Actor, str], Any], as_json: bool) -> None:
    from concordat.as_json import state_dict

    session = _session(_settings(), as_)
    actor = session.reader()
    cid = _command_id(command_id)
    state = call(session.cases, actor, cid)
    _out(
        as_json,
        state_dict(state),
        lambda c: c.print(
            f"{state.reference} {state.status}; score {state.details['score']}; review on {state.details['review_on']}",
            highlight=False,
        ),
    )


@risk_app.command("add")
@click.option("--title", required=True)
@click.option("--owner", required=True, help="The role that owns the risk, e.g. jcu_lead.")
@click.option("--likelihood", required=True, type=click.IntRange(1, 5))
@click.option("--impact", required=True, type=click.IntRange(1, 5))
@click.option("--mitigation", "mitigations", multiple=True, help="A mitigation; repeat for more.")
@click.option("--review-on", required=True, metavar="YYYY-MM-DD", help="When it is next to be reviewed.")
@_command_opts
def risk_add(
    title: str,
    owner: str,
    likelihood: int,
    impact: int,
    mitigations: tuple[str, ...],
    review_on: str,
    as_: str | None,
    as_json: bool,
    command_id: str | None,
) -> None:
    """Add a risk to the register; prints its reference and score (likelihood × impact)."""
    fields = {
        "title": title,
        "owner": owner,
        "likelihood": likelihood,
        "impact": impact,
        "mitigations": list(mitigations),
        "review_on": _date(review_on, "--review-on").isoformat(),
    }
    _risk_write(
        as_, command_id, lambda app, actor, cid: app.add_risk(actor=actor, fields=fields, command_id=cid), as_json
    )


def _risk_act(
    reference: str, action: str, fields: dict[str, Any], as_: str | None, as_json: bool, command_id: str | None
) -> None:
    _attempt["reference"] = reference
    _risk_write(
        as_,
        command_id,
        lambda app, actor, cid: app.act(reference, actor=actor, action=action, fields=fields, command_id=cid),
        as_json,
    )


@risk_app.command("update")
@click.argument("reference")
@click.option("--likelihood", type=click.IntRange(1, 5), default=None)
@click.option("--impact", type=click.IntRange(1, 5), default=None)
@click.option("--owner", default=None, help="A new owner (a role).")
@click.option("--mitigation", "mitigations", multiple=True, help="The mitigations now (replacing them); repeat.")
@click.option("--note", default="", help="Why, for the record.")
@_command_opts
def risk_update(
    reference: str,
    likelihood: int | None,
    impact: int | None,
    owner: str | None,
    mitigations: tuple[str, ...],
    note: str,
    as_: str | None,
    as_json: bool,
    command_id: str | None,
) -> None:
    """Change a risk's likelihood, impact, owner or mitigations."""
    fields: dict[str, Any] = {"likelihood": likelihood, "impact": impact, "owner": owner, "note": note}
    fields["mitigations"] = list(mitigations) if mitigations else None
    _risk_act(reference, "update", {k: v for k, v in fields.items() if v is not None}, as_, as_json, command_id)


@risk_app.command("review")
@click.argument("reference")
@click.option("--note", required=True, help="What the review found.")
@click.option("--next-review-on", required=True, metavar="YYYY-MM-DD")
@_command_opts
def risk_review(
    reference: str, note: str, next_review_on: str, as_: str | None, as_json: bool, command_id: str | None
) -> None:
    """Record a review of a risk and when it is next to be reviewed."""
    fields = {"note": note, "next_review_on": _date(next_review_on, "--next-review-on").isoformat()}
    _risk_act(reference, "review", fields, as_, as_json, command_id)


@risk_app.command("close")
@click.argument("reference")
@click.option("--reason", required=True)
@_command_opts
def risk_close(reference: str, reason: str, as_: str | None, as_json: bool, command_id: str | None) -> None:
    """Close a risk that no longer applies (it stays on the record)."""
    _risk_act(reference, "close", {"reason": reason}, as_, as_json, command_id)


@risk_app.command("register")
@click.option("--all", "all_", is_flag=True, help="Closed risks too.")
@_as_option
def risk_register(all_: bool, as_: str | None, as_json: bool) -> None:
    """The register, highest score first."""
    from concordat import render

    session = _session(_settings(), as_)
    rows = session.cases.risk_register(actor=session.reader(), include_closed=all_)
    _out(as_json, rows, lambda c: render.risks(c, rows))


@app.group("audit")
def audit_app() -> None:
    """For auditors: verify the hash chains and seals, keep signed heads, replay the views, export the history."""


def _auditor(settings: Settings, as_: str | None, *, export: bool = False) -> Auditor:
    from concordat import keys
    from domain.audit import Auditor, authorize_export

    session = _session(settings, as_)
    if export:
        authorize_export(session.cases, session.identity.acting_as(["auditor"], session.role))
    else:
        session.cases.authorize_read(session.reader())
    return Auditor(session.cases, keys.audit_key(settings).public_key())


def _public_key(text: str) -> Any:
    from concordat import keys

    try:
        return keys.public_from_text(text)
    except (InvalidInputError, ValueError):
        raise InvalidInputError(
            "--public-key: not a public key; give the one `concordat audit key` printed (base64 of 32 bytes)"
        ) from None


@audit_app.command("verify")
@click.argument("reference", required=False)
@click.option(
    "--heads",
    "heads_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Signed heads kept elsewhere (from `concordat audit heads --json`), to catch a truncated tail.",
)
@click.option(
    "--public-key",
    default=None,
    metavar="KEY",
    help="The audit key's public half you kept (`concordat audit key`). Default: this store's audit key.",
)
@_as_option
def audit_verify(
    reference: str | None, heads_file: str | None, public_key: str | None, as_: str | None, as_json: bool
) -> None:
    """Walk the hash chains of every case (or one) and the seals over the whole log; report each
    break; exit 1 if any."""
    from concordat import render

    settings = _settings()
    auditor = _auditor(settings, as_)
    if public_key is not None:
        auditor.public_key = _public_key(public_key)
    heads = _read_heads(heads_file, auditor.public_key) if heads_file else None
    done = auditor.check(reference, heads=heads)
    data = {
        "checked": done.checked,
        "breaks": [asdict(b) for b in done.breaks],
        "heads_checked": done.heads_checked,
        "seals": done.seals,
        "sealed_through": done.sealed_through,
        "unsealed": done.unsealed,
        "public_key": done.public_key,
    }
    _out(as_json, data, lambda c: render.verify(c, done.checked, done.breaks, heads, done))
    if done.breaks:
        raise SystemExit(1)


@audit_app.command("heads")
@_as_option
def audit_heads(as_: str | None, as_json: bool) -> None:
    """Each aggregate's latest version and hash, signed with the audit key: keep it (or publish it)
    somewhere the operators cannot change."""
    from concordat import keys, render
    from domain import ledger

    settings = _settings()
    heads = _auditor(settings, as_).heads()
    signed = ledger.sign_heads([asdict(h) for h in heads], keys.audit_key(settings))
    _out(as_json, signed, lambda c: render.heads(c, heads, signed))


@audit_app.command("key")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")
def audit_key(as_json: bool) -> None:
    """The audit key's public half: keep it to check signed heads and seals later."""
    from concordat import keys
    from domain import ledger

    public = keys.audit_key(_settings()).public_key()
    data = {"public_key": keys.public_text(public), "fingerprint": ledger.key_fingerprint(public)}
    _out(as_json, data, lambda c: c.print(data["public_key"], highlight=False))


@app.group("keys")
def keys_app() -> None:
    """For operators: fresh secrets for a deployment."""


@keys_app.command("generate")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")
def keys_generate(as_json: bool) -> None:
    """Print a fresh cipher key, command key, audit key and session secret as `.env` lines (put them in
    your secret store; nothing is written here), and the audit key's public half as a comment."""

    from concordat import keys

    made = keys.generate()
    public = made.pop("audit_public_key")

    def text(c: Console) -> None:
        for name, value in made.items():
            c.print(f"{name}={value}", highlight=False, soft_wrap=True)
        c.print(
            f"# the audit key's public half (publish it; `concordat audit key` prints it): {public}",
            highlight=False,
            soft_wrap=True,
        )

    _out(as_json, {**made, "audit_public_key": public}, text)


@audit_app.command("seal")
@_as_option
def audit_seal(as_: str | None, as_json: bool) -> None:
    """Seal the notifications written since the last seal (the projection runner does this too)."""
    from concordat import keys, render

    settings = _settings()
    auditor = _auditor(settings, as_)
    done = auditor.sealer(keys.audit_key(settings)).seal_all()
    data = {"seals": [asdict(s) for s in done], "events": sum(s.count for s in done)}
    _out(as_json, data, lambda c: render.sealed(c, done))


@audit_app.command("export")
@click.argument("reference", required=False)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", help="jsonl or csv.")
@click.option("--as", "as_", metavar="ROLE", default=None, help="The role to act in. Default: $CONCORDAT_ACTOR.")
def audit_export(reference: str | None, fmt: str, as_: str | None) -> None:
    """Write the full history (every event, every aggregate, or one case) with its metadata; secrets
    (password and token hashes) redacted. For auditors only."""
    from concordat import render

    settings = _settings()
    render.export(_auditor(settings, as_, export=True).export_rows(reference), fmt)


@audit_app.command("refusals")
@click.option(
    "--since", type=click.IntRange(min=0), default=0, metavar="POSITION", help="Only refusals after this position."
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=200, show_default=True, help="At most this many.")
@_as_option
def audit_refusals(since: int, limit: int, as_: str | None, as_json: bool) -> None:
    """The refusal log, oldest first: every refused sign-in, request and command, with who (as proven,
    or as claimed), what, why, when and through which door (for auditors)."""
    from concordat import render
    from domain.refusals import RefusalLog

    session = _session(_settings(), as_)
    session.identity.actor("auditor")
    entries = RefusalLog(session.cases).entries(since=since, limit=limit)
    _out(as_json, [e.as_dict() for e in entries], lambda c: render.refusals(c, entries))


@audit_app.command("replay")
@_as_option
def audit_replay(as_: str | None, as_json: bool) -> None:
    """Rebuild every view from event zero into fresh tables and swap them in when complete (an
    administrator's command). A running projection runner steps aside for it and then carries on."""
    from rich.console import Console

    from concordat.leadership import PAUSE_TIMEOUT_SECONDS, ReplayRunningError, RunnerDidNotPauseError
    from concordat.replay import replay

    settings = _settings()
    _session(settings, as_).admin()
    try:
        summary = replay(settings, console=None if as_json else Console(stderr=True))
    except ReplayRunningError:
        _fail("another audit replay is running; nothing was rebuilt: run it again when that one is done", 75)
    except RunnerDidNotPauseError:
        _fail(
            f"the projection runner did not step aside within {PAUSE_TIMEOUT_SECONDS:.0f} s (a runner older than "
            "this release does not know how): nothing was rebuilt; stop it, replay, and start it again",
            75,
        )
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


def _read_heads(path: str, trusted: Any) -> list[Head]:
    """The heads in a file from `concordat audit heads --json`, once its signature holds."""
    from concordat import keys
    from domain import ledger
    from domain.audit import Head

    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InvalidInputError(
            f"--heads {path}: not a heads file from `concordat audit heads --json` ({err})"
        ) from None
    if isinstance(raw, list):
        raise InvalidInputError(
            f"--heads {path}: these heads are not signed (an earlier release wrote them); "
            "take signed heads with `concordat audit heads --json`"
        )
    if not isinstance(raw, dict) or not isinstance(raw.get("heads"), list) or "signature" not in raw:
        raise InvalidInputError(f"--heads {path}: not a heads file from `concordat audit heads --json`")
    if str(raw.get("public_key")) != keys.public_text(trusted):
        raise InvalidInputError(
            f"--heads {path}: signed by another key than the audit key {ledger.key_fingerprint(trusted)}; "
            "give the public key you kept with --public-key"
        )
    if not ledger.heads_are_signed_by(raw, trusted):
        raise InvalidInputError(
            f"--heads {path}: the signature does not match the heads: the file was changed after it was "
            "signed; nothing was checked"
        )
    try:
        return [Head(**item) for item in raw["heads"]]
    except TypeError as err:
        raise InvalidInputError(
            f"--heads {path}: not a heads file from `concordat audit heads --json` ({err})"
        ) from None


@app.command()
@_as_option
def partnership(as_: str | None, as_json: bool) -> None:
    """The partnership's members and the notices pending, with their effective dates."""
    from concordat import render

    session = _session(_settings(), as_)
    view = session.cases.partnership_view(actor=session.reader())
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
    from concordat import render
    from concordat.as_json import state_dict

    settings = _settings()
    session = _session(settings, as_)
    actor, cases = session.reader(), session.cases
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
    from concordat import render
    from concordat.as_json import state_dict

    session = _session(_settings(), as_)
    entries = session.cases.history(reference, actor=session.reader())
    _out(as_json, [state_dict(e) for e in entries], lambda c: render.history(c, reference, entries))


@app.command("list")
@click.option("--open", "open_", is_flag=True, help="Only open cases.")
@click.option("--overdue", is_flag=True, help="Only open cases past their deadline.")
@_as_option
def list_cases(open_: bool, overdue: bool, as_: str | None, as_json: bool) -> None:
    """Cases from the case-list view."""
    from concordat import bootstrap, render

    settings = _settings()
    session = _session(settings, as_)
    actor, cases = session.reader(), session.cases
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
    from concordat import bootstrap, render

    settings = _settings()
    session = _session(settings, as_)
    actor, cases = session.reader(), session.cases
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
    from concordat import render

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
    """The one broad catch of the CLI: every failure becomes one line and an exit code. The errors of
    Temporal, the store and pydantic are matched only if the command loaded their modules
    (`_loaded`), so that a command that needs none of them never imports them."""
    from concordat import private

    _attempt.clear()
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
    except _loaded("concordat.engine", "CommandRefusedError") as err:
        if (
            cast("CommandRefusedError", err).kind == "StoreUnavailable"
        ):  # not refused: nobody knows yet whether it was recorded
            _fail(_unknown_outcome("the store did not answer in time; the command may or may not be recorded"), 75)
        _fail(str(err), 1)
    except ConcordatError as err:
        _record_refusal(err)
        _fail(str(err), 1)
    except _loaded("pydantic", "ValidationError") as err:
        first = cast("ValidationError", err).errors()[0]
        _fail(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", 2)
    except _loaded("concordat.engine", "TemporalUnavailableError") as err:
        _fail(_unknown_outcome(str(err)), 69)
    except _loaded("concordat.bootstrap", "StoreConnectionError") as err:
        _fail(str(err), 69)
    except _loaded("temporalio.service", "RPCError") as err:  # Temporal answered, with an error of its own
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        status = cast("RPCError", err).status
        _fail(_unknown_outcome(f"Temporal failed ({status.name if status else 'no status'}): {detail}"), 69)
    except _loaded("eventsourcing.persistence", "MapperDeserialisationError"):
        _fail(
            "cannot decode the stored events: is CONCORDAT_CIPHER_KEY the key they were written with? "
            "(`concordat audit verify` names each event it cannot read)",
            1,
        )
    except (
        _loaded("eventsourcing.persistence", "OperationalError"),
        _loaded("eventsourcing.persistence", "PersistenceError"),
        _loaded("psycopg", "OperationalError"),
    ) as err:
        from concordat import bootstrap

        if any(words in str(err) for words in bootstrap.READ_ONLY_WORDS):  # nothing was written, nor can be
            _fail(_read_only_refusal(), 77)
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        _fail(_unknown_outcome(f"store unavailable, try again ({detail})"), 75)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as err:  # noqa: BLE001 - the process boundary: log it whole, show one line
        path = _crash_log(err)
        _fail(f"internal error: {type(err).__name__}: {err} (details in {path})", 70)
    # Without standalone mode, click returns the code of `ctx.exit()` instead of raising it.
    raise SystemExit(code if isinstance(code, int) else 0)


class _NeverRaised(Exception):
    """What `_loaded` matches for a module the command never imported: nothing raises it."""


def _loaded(module: str, name: str) -> type[BaseException]:
    """The exception class `name` of `module` if this process imported `module`, else one nothing
    raises: an error of a module never imported cannot have been raised, and matching it must not
    import the module (`concordat show` never loads Temporal; tests/e2e/test_cli_imports.py)."""
    found = sys.modules.get(module)
    kind = getattr(found, name, None) if found is not None else None
    return kind if isinstance(kind, type) and issubclass(kind, BaseException) else _NeverRaised


def _unknown_outcome(message: str) -> str:
    """`message`, and for a command that was under way, the command id to repeat it with: repeated,
    it either finds the command already recorded or does it now (never twice)."""
    cid = _attempt.get("command_id")
    if not cid:
        return message
    return f"{message}: not done, or not known to be; repeat it with --command-id {cid}"


def _record_refusal(err: ConcordatError) -> None:
    """Put a refusal on the refusal log (`domain/refusals.py`): who (as proven, or as claimed), what,
    why. Bad input and an unknown case are answers, not refusals; a refusal that came back from the
    workflow was recorded by the worker that refused it."""
    answers = (
        InvalidInputError,
        CaseNotFoundError,
        _loaded("domain.identity", "UnknownUserError"),
        _loaded("concordat.engine", "CommandRefusedError"),
    )
    if isinstance(err, answers):
        return
    cases = _attempt.get("cases")
    if cases is None:
        return
    from eventsourcing.persistence import OperationalError, PersistenceError

    from concordat import bootstrap
    from domain.actor import Actor

    identity: Identity | None = _attempt.get("identity")
    command = str(_attempt.get("command") or "")
    actor = None
    if identity is not None:
        role = _attempt.get("claimed") if _attempt.get("claimed") in identity.roles else identity.roles[0]
        actor = Actor(id=identity.user_id, role=str(role))
    try:
        _record_refusal_in(cases, err, actor, command)
    except (OperationalError, PersistenceError) as failed:
        if not any(words in str(failed) for words in bootstrap.READ_ONLY_WORDS):
            raise
        # A read-only store (an auditor's copy) cannot take the record; the refusal is still said.


def _read_only_refusal() -> str:
    from pydantic import ValidationError

    from concordat import bootstrap
    from concordat.settings import Settings

    try:
        return bootstrap.read_only_refusal(Settings())
    except ValidationError:
        return "the store is read-only: read commands (show, list, history, audit) work; this command writes"


def _record_refusal_in(cases: Any, err: ConcordatError, actor: Actor | None, command: str) -> None:
    from domain.refusals import RefusalLog

    RefusalLog(cases).record(
        door="cli",
        command=command or "concordat",
        reason=str(err),
        rule=type(err).__name__,
        actor=actor,
        claimed=str(_attempt.get("claimed") or ""),
        reference=str(_attempt.get("reference") or ""),
        command_id=str(_attempt.get("command_id") or ""),
    )


def _crash_log(err: Exception) -> str:
    from pydantic import ValidationError

    from concordat import bootstrap
    from concordat.settings import Settings

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

# `concordat meeting …` and `concordat forward-plan …` (their module adds them to `app`).
from concordat import meeting_cli  # noqa: E402, F401
