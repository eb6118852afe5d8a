"""The `concordat` command line: thin. Parse → command → one clear line for any refusal.

Exit codes: 0 done; 1 refused by a rule or not found; 2 bad usage; 69 Temporal unreachable;
75 the store unavailable (try again); 70 an internal error (details in the data dir's log).
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import traceback
import uuid
from collections.abc import Callable, Coroutine
from datetime import date, datetime
from typing import Annotated, Any, NoReturn, TypeVar

import click
import psycopg
import structlog
import typer
from eventsourcing.persistence import OperationalError, PersistenceError
from pydantic import ValidationError
from rich.console import Console

from concordat import bootstrap, processes, render
from concordat import up as supervisor
from concordat.engine import TemporalUnavailableError, ensure_workflow, send_update, state_dict
from concordat.money import parse_pounds
from concordat.settings import Settings
from domain.actor import Actor
from domain.errors import ConcordatError, InvalidInputError
from workflows.contracts import ActorRef, DecideInput, WithdrawInput
from workflows.proposal import ProposalWorkflow

T = TypeVar("T")
log = structlog.get_logger("concordat.cli")

app = typer.Typer(
    name="concordat",
    help="Concordat: an event-sourced workflow engine for partnership governance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
proposal_app = typer.Typer(help="Proposals: commissioning, pathway changes, redesigns, procurements.", no_args_is_help=True)
app.add_typer(proposal_app, name="proposal")

AsOpt = Annotated[
    str | None,
    typer.Option("--as", help="Who is acting, ROLE:ID (e.g. secretary:board:sam). Default: $CONCORDAT_ACTOR."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines instead of text.")]
CommandIdOpt = Annotated[
    str | None,
    typer.Option(
        "--command-id",
        help="Idempotency key: repeating a command with the same id records it once and answers the same.",
    ),
]


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


@app.command()
def up(
    temporal: Annotated[
        str | None, typer.Option("--temporal", help="Use this existing Temporal server (HOST:PORT) instead of starting one.")
    ] = None,
) -> None:
    """Start the engine on this machine: a Temporal dev server (state kept in the data dir), the
    worker and the projection runner. Ctrl-C stops them all."""
    raise typer.Exit(supervisor.run(_settings(), temporal))


@app.command(hidden=True)
def worker() -> None:
    """Run the Temporal worker (started by `concordat up`)."""
    raise typer.Exit(processes.run_worker(_settings()))


@app.command(hidden=True)
def projections() -> None:
    """Run the projection runners (started by `concordat up`)."""
    raise typer.Exit(processes.run_projections(_settings()))


@proposal_app.command("start")
def proposal_start(
    title: Annotated[str, typer.Option(help="What the proposal is, in a line.")],
    kind: Annotated[str, typer.Option(help="service_commissioning, pathway_change, minor_redesign, major_redesign or procurement.")],
    value: Annotated[str, typer.Option(help="Annual value in pounds, e.g. 180000 or £180,000.50.")],
    parties: Annotated[str, typer.Option(help="Parties it concerns, comma-separated: PCC,CCC,CPCCG.")],
    public_health: Annotated[bool, typer.Option("--public-health", help="Public-health ring-fenced money is involved.")] = False,
    as_: AsOpt = None,
    as_json: JsonOpt = False,
    command_id: CommandIdOpt = None,
) -> None:
    """Start a proposal at the JCU stage; prints its reference."""
    settings = _settings()
    actor = _actor(settings, as_)
    pence = parse_pounds(value)
    party_list = [p.strip() for p in parties.split(",") if p.strip()]
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
        await ensure_workflow(client, settings, state)
        return state

    state = _run(go())
    _out(as_json, state_dict(state), lambda c: c.print(state.reference, highlight=False))


@app.command()
def decide(
    reference: Annotated[str, typer.Argument(help="Case reference, e.g. PRO-2026-0001.")],
    stage: Annotated[str, typer.Option(help="The stage (or escalation forum) deciding, e.g. board.")],
    outcome: Annotated[str, typer.Option(help="The decision, e.g. approve, refer, recommend, reject, defer.")],
    minutes_ref: Annotated[str, typer.Option("--minutes-ref", help="Reference of the minutes recording it.")] = "",
    note: Annotated[str, typer.Option(help="A note for the record.")] = "",
    stage_outcome: Annotated[
        str | None, typer.Option("--stage-outcome", help="With --outcome decide at an escalation: the stage's own outcome.")
    ] = None,
    deadline: Annotated[
        str | None, typer.Option("--deadline", help="With --outcome extend: the new deadline, YYYY-MM-DD (Europe/London).")
    ] = None,
    as_: AsOpt = None,
    as_json: JsonOpt = False,
    command_id: CommandIdOpt = None,
) -> None:
    """Record a forum's decision on a case at its current stage."""
    settings = _settings()
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
def withdraw(
    reference: Annotated[str, typer.Argument(help="Case reference.")],
    note: Annotated[str, typer.Option(help="Why it is withdrawn.")] = "",
    as_: AsOpt = None,
    as_json: JsonOpt = False,
    command_id: CommandIdOpt = None,
) -> None:
    """Withdraw an open proposal (JCU leads)."""
    settings = _settings()
    actor = _actor(settings, as_)
    withdrawal = WithdrawInput(actor=ActorRef(id=actor.id, role=actor.role), note=note)
    cid = _command_id(command_id)

    async def go() -> Any:
        cases = bootstrap.open_cases(settings)
        client = await _client(settings)
        return await send_update(client, settings, cases, reference, ProposalWorkflow.withdraw, withdrawal, cid)

    state = _run(go())
    _out(as_json, state_dict(state), lambda c: render.after_command(c, state))


@app.command()
def show(
    reference: Annotated[str, typer.Argument(help="Case reference.")],
    version: Annotated[int | None, typer.Option(min=1, help="Show the case as it stood at this version.")] = None,
    as_: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A case's current state: stage, deadline, who may act, decisions so far."""
    settings = _settings()
    actor = _actor(settings, as_)
    cases = bootstrap.open_cases(settings)
    state = cases.get(reference, actor=actor, version=version)
    _out(as_json, state_dict(state), lambda c: render.case(c, state, cases.policy))


@app.command()
def history(
    reference: Annotated[str, typer.Argument(help="Case reference.")],
    as_: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every event of a case, in order, with time, actor, role and what changed."""
    settings = _settings()
    actor = _actor(settings, as_)
    entries = bootstrap.open_cases(settings).history(reference, actor=actor)
    _out(as_json, [state_dict(e) for e in entries], lambda c: render.history(c, reference, entries))


@app.command("list")
def list_cases(
    open_: Annotated[bool, typer.Option("--open", help="Only open cases.")] = False,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only open cases past their deadline.")] = False,
    as_: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
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
def decisions(
    case: Annotated[str | None, typer.Option("--case", help="Only this case's decisions.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")] = 200,
    as_: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The decisions register: every decision of every forum, newest first."""
    settings = _settings()
    actor = _actor(settings, as_)
    cases = bootstrap.open_cases(settings)
    cases.authorize_read(actor)
    view = bootstrap.open_decisions(settings)
    lag = render.wait_for_view(view, cases)
    rows = view.list_decisions(reference=case, limit=limit)
    _out(as_json, rows, lambda c: render.decisions(c, rows, lag))


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
    """Entry point. The one broad catch of the CLI: every failure becomes one line and an exit code."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="concordat", standalone_mode=False)
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
    except (OperationalError, PersistenceError, psycopg.OperationalError) as err:
        _fail(f"store unavailable, try again ({str(err).splitlines()[0] if str(err) else type(err).__name__})", 75)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as err:  # noqa: BLE001 - the process boundary: log it whole, show one line
        path = _crash_log(err)
        _fail(f"internal error: {type(err).__name__}: {err} (details in {path})", 70)
    # Without standalone mode, click returns the code of `typer.Exit` instead of raising it.
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
