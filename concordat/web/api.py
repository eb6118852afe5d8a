"""The JSON API, `/api/v1`: the CLI's commands and reads over HTTP.

Request fields are named as the CLI's options (underscores for dashes). Who acts comes from the
bearer token only; a person with several roles may name the one they act in with `X-Concordat-Role`
(it must be one they hold), otherwise they act in the one role they hold that may give the command.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from concordat import keys, render
from concordat.as_json import state_dict
from concordat.commands import Commands, actions_for
from concordat.fields import (
    AgreementIn,
    AppointIn,
    ConsentIn,
    DecisionIn,
    DisputeIn,
    DraftIn,
    EmptyIn,
    ExtendIn,
    Fields,
    FindingsIn,
    FoiIn,
    FundIn,
    FundingIn,
    NominateIn,
    NoteIn,
    ObjectIn,
    OnDateIn,
    ProposalIn,
    PublicInterestIn,
    RecordDoneIn,
    ResolveIn,
    TerminationIn,
    VariationIn,
    WithdrawIn,
)
from concordat.web import refusals
from domain.actor import Actor
from domain.audit import AUDITOR_ROLE, Auditor, authorize_export
from domain.errors import InvalidInputError
from domain.identity import AuthenticationError, Identity, split_token
from domain.refusals import RefusalLog
from domain.values import CASE_REFERENCE_PATTERN, FUND_NAME_PATTERN, NAME_PATTERN, PARTY_PATTERN

LONDON = ZoneInfo("Europe/London")
MAX_INT = 2**31 - 1  # what either database takes in a LIMIT, OFFSET or version without overflowing
DESCRIPTION = """\
Every command of the `concordat` command line, over HTTP, for the same cases and workflows.

**Authentication.** `Authorization: Bearer <token>`, a token from `concordat token create ID`. Without
a valid token: 401. With a role that may not give the command: 403, and nothing is written.

**Roles.** A person with several roles acts in the one that may give the command; name one with
`X-Concordat-Role: secretary:board` (it must be a role they hold).

**Idempotency.** Every command takes an `Idempotency-Key` header, scoped to the person and the route:
the same person sending the same key and body again gets the same answer and records nothing more;
the same key with a different body is a 422; another person's key replays nothing. Authorisation runs
before any replay. Without one, each request is a new command.

**Money** is given in pounds as the CLI takes it (`180000`, `"£180,000.50"`; a JSON number is whole
pounds), at most the policy's `[limits] max_value_pounds`, and returned in pence.

**Text** is checked as on every door: no control or bidirectional-override characters, some visible
text, and each field's length limit (the schema states each limit and pattern).

**Errors** are `application/problem+json` (RFC 9457): 400 (the body is not JSON), 401, 403, 404 (no such case), 409 (the case has
moved on: a decision was already recorded, it is closed, or the stage is another), 422 (the request
is wrong), 503 (the store or Temporal is unavailable: try again with the same Idempotency-Key).

**Refusals are recorded.** Every 401 and 403, and every command a rule refused (409, and a 422 that a
rule gave rather than the request's own shape), is on the refusal log with who (as proven, or as
claimed: a token's id, never its secret), what, why and when; auditors read it at `/audit/refusals`.
"""

PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {
        "description": text,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for code, text in [
        (400, "The body is not JSON"),
        (401, "No valid token"),
        (403, "Your roles may not do this"),
        (404, "No such case"),
        (409, "The case has moved on"),
        (422, "The request is not valid"),
        (503, "Store or Temporal unavailable; try again"),
    ]
}


router = APIRouter(responses=PROBLEMS)


# --- who is asking -------------------------------------------------------------------------------


def commands(request: Request) -> Commands:
    return request.app.state.commands


bearer = HTTPBearer(auto_error=False, scheme_name="token", description="A token from `concordat token create ID`.")


def identity(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Identity:
    """The token's person and their roles now (a revoked token or role stops working at once)."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials.strip():
        refusals.claimed(request, "no bearer token")
        raise AuthenticationError("sign in: send Authorization: Bearer <token> (from `concordat token create ID`)")
    token = credentials.credentials.strip()
    parts = split_token(token)
    refusals.claimed(request, f"token {parts[0]}" if parts else "a malformed token")  # the id, never the secret
    who = commands(request).directory.identity_of_token(token)
    refusals.proven(request, who)
    return who


Who = Annotated[Identity, Depends(identity)]
Cmds = Annotated[Commands, Depends(commands)]
RoleHeader = Annotated[
    str | None,
    Header(alias="X-Concordat-Role", min_length=1, description="The role to act in, if you hold several."),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Repeat a command safely: the same key and body from the same person, one event.",
    ),
]
Ref = Annotated[str, Path(pattern=CASE_REFERENCE_PATTERN, examples=["PRO-2026-0001"], description="A case reference.")]


def reader(who: Identity, cmds: Commands, role: str | None) -> Actor:
    actor = who.any_role(role)
    cmds.cases.authorize_read(actor)
    return actor


def command_id(key: str | None) -> str:
    if key is not None and not key.strip():
        raise InvalidInputError("Idempotency-Key is empty")
    return key.strip() if key else str(uuid.uuid4())


# --- request bodies --------------------------------------------------------------------------------


class Created(BaseModel):
    reference: str
    case: dict[str, Any]


# --- reads -----------------------------------------------------------------------------------------


@router.get("/me", tags=["identity"], summary="Who the token belongs to, and their roles")
def me(who: Who) -> dict[str, Any]:
    return {"id": who.user_id, "roles": list(who.roles)}


@router.get("/me/reminders", tags=["identity"], summary="Your reminders and escalations, and whether each was sent")
def my_reminders(request: Request, who: Who, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    """Newest first: each reminder before a deadline, and each escalation of a missed one, that concerns
    you (you hold the role that must act, or you started the case); `status` is `sent`, `pending`,
    `no_address` (you had no email address then), `refused` or `expired`."""
    rows = request.app.state.views["outbox"].rows(recipient=who.user_id, limit=limit)
    keep = ("reference", "title", "kind", "stage", "forum", "deadline", "role", "event_at", "status", "sent_at")
    return [{k: r[k] for k in keep} | {"message_id": r["message_id"]} for r in rows]


@router.get("/cases", tags=["cases"], summary="Cases, filtered and paged")
def list_cases(
    request: Request,
    who: Who,
    cmds: Cmds,
    role: RoleHeader = None,
    kind: Annotated[
        str | None,
        Query(
            pattern=NAME_PATTERN,
            description="proposal, dispute, termination, agreement, fund, variation, funding, foi, or a proposal's kind",
        ),
    ] = None,
    stage: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    open: bool = False,
    overdue: bool = False,
    party: Annotated[str | None, Query(pattern=PARTY_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> dict[str, Any]:
    reader(who, cmds, role)
    view = request.app.state.views["case_list"]
    lag = render.wait_for_view(view, cmds.cases)
    filters = {
        "open_only": open,
        "overdue_at": datetime.now().astimezone() if overdue else None,
        "kind": kind,
        "stage": stage,
        "party": party,
    }
    rows = view.list_cases(**filters, limit=limit, offset=offset)
    return {"items": rows, "total": view.count_cases(**filters), "limit": limit, "offset": offset, "lag_events": lag}


@router.get(
    "/cases/{ref}",
    tags=["cases"],
    summary="One case, now or as it stood (as_of / version; with both, the earlier)",
)
def get_case(
    ref: Ref,
    who: Who,
    cmds: Cmds,
    role: RoleHeader = None,
    as_of: Annotated[
        datetime | None, Query(description="e.g. 2026-06-30T17:00 (Europe/London without an offset)")
    ] = None,
    version: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
) -> dict[str, Any]:
    actor = reader(who, cmds, role)
    if as_of is not None:
        # With both, the earlier: the case as it stood at `version`, unless it had not got so far by `as_of`.
        at = cmds.cases.version_at(ref, as_of if as_of.tzinfo else as_of.replace(tzinfo=LONDON))
        version = at if version is None else min(version, at)
    state = cmds.cases.get(ref, actor=actor, version=version)
    now = cmds.cases.state(ref) if version else state
    return {**state_dict(state), "your_actions": actions_for(now, who) if not version else []}


@router.get("/cases/{ref}/history", tags=["cases"], summary="Every event of a case, with its metadata")
def history(ref: Ref, who: Who, cmds: Cmds, role: RoleHeader = None) -> list[dict[str, Any]]:
    return [state_dict(e) for e in cmds.cases.history(ref, actor=reader(who, cmds, role))]


@router.get("/decisions", tags=["registers"], summary="The decisions register, newest first")
def decisions(
    request: Request,
    who: Who,
    cmds: Cmds,
    role: RoleHeader = None,
    case: Annotated[str | None, Query(pattern=CASE_REFERENCE_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> dict[str, Any]:
    reader(who, cmds, role)
    view = request.app.state.views["decisions"]
    lag = render.wait_for_view(view, cmds.cases)
    return {"items": view.list_decisions(reference=case, limit=limit), "lag_events": lag}


@router.get("/partnership", tags=["registers"], summary="Members and pending notices")
def partnership(who: Who, cmds: Cmds, role: RoleHeader = None) -> dict[str, Any]:
    return cmds.cases.partnership_view(actor=reader(who, cmds, role))


@router.get("/funds/{name}", tags=["funds"], summary="A fund's balance, contributions and changes")
def fund(
    name: Annotated[str, Path(pattern=FUND_NAME_PATTERN)], who: Who, cmds: Cmds, role: RoleHeader = None
) -> dict[str, Any]:
    return cmds.cases.fund_view(name, actor=reader(who, cmds, role))


@router.get(
    "/reports/public-health",
    tags=["registers"],
    summary="Ring-fenced public-health money per party per financial quarter: contributions, changes, balances",
    description="Amounts in pence (`*_pence`) with pounds beside them; `?format=csv` gives CSV in pounds.",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def public_health(
    request: Request,
    who: Who,
    cmds: Cmds,
    year: Annotated[int, Query(ge=2000, le=2100)],
    role: RoleHeader = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    reader(who, cmds, role)
    view = request.app.state.views["public_health"]
    lag = render.wait_for_view(view, cmds.cases)
    report = view.report(year, cmds.cases.policy.partnership.parties)
    if format == "csv":
        out = io.StringIO()
        render.csv_out(report, out)
        name = f"ring-fenced-{report['financial_year']}.csv"
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return {**render.with_pounds(report), "lag_events": lag}


@router.get(
    "/reports/foi",
    tags=["registers"],
    summary="The FOI register: every request, its due date and answer, and the share answered on time per quarter",
    description="`?format=csv` gives the requests as CSV.",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def foi_register(
    who: Who, cmds: Cmds, role: RoleHeader = None, format: Annotated[Literal["json", "csv"], Query()] = "json"
) -> Any:
    report = cmds.cases.foi_register(actor=reader(who, cmds, role))
    if format == "csv":
        out = io.StringIO()
        render.foi_csv(report, out)
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="foi-register.csv"'},
        )
    return report


@router.get("/reports/cycles", tags=["registers"], summary="Every review (REV-) and report (RPT-) case")
def cycles_register(who: Who, cmds: Cmds, role: RoleHeader = None) -> Any:
    return [state_dict(v) for v in cmds.cases.cycles(actor=reader(who, cmds, role))]


@router.get("/reports/risks", tags=["registers"], summary="The risk register, highest score first")
def risks_register(who: Who, cmds: Cmds, role: RoleHeader = None, all: bool = False) -> Any:
    return cmds.cases.risk_register(actor=reader(who, cmds, role), include_closed=all)


@router.get("/audit/verify", tags=["audit"], summary="Walk the hash chains (all, or one case)")
def audit_verify(
    request: Request,
    who: Who,
    cmds: Cmds,
    role: RoleHeader = None,
    reference: Annotated[str | None, Query(pattern=CASE_REFERENCE_PATTERN)] = None,
) -> dict[str, Any]:
    reader(who, cmds, role)
    done = Auditor(cmds.cases, keys.audit_key(request.app.state.settings).public_key()).check(reference)
    return {
        "checked": done.checked,
        "breaks": [asdict(b) for b in done.breaks],
        "clean": not done.breaks,
        "seals": done.seals,
        "sealed_through": done.sealed_through,
        "unsealed": done.unsealed,
    }


@router.get("/audit/heads", tags=["audit"], summary="Each aggregate's latest version and hash")
def audit_heads(who: Who, cmds: Cmds, role: RoleHeader = None) -> list[dict[str, Any]]:
    reader(who, cmds, role)
    return [asdict(h) for h in Auditor(cmds.cases).heads()]


@router.get(
    "/audit/export",
    tags=["audit"],
    summary="The full history with metadata, as JSON lines or CSV",
    response_class=PlainTextResponse,
    responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}},
)
def audit_export(
    who: Who,
    cmds: Cmds,
    role: RoleHeader = None,
    reference: Annotated[str | None, Query(pattern=CASE_REFERENCE_PATTERN)] = None,
    format: Literal["jsonl", "csv"] = "jsonl",
) -> PlainTextResponse:
    authorize_export(cmds.cases, who.acting_as([AUDITOR_ROLE], role))
    out = io.StringIO()
    render.export(Auditor(cmds.cases).export_rows(reference), format, out)
    media = "application/x-ndjson" if format == "jsonl" else "text/csv"
    name = f"{reference or 'all'}-history.{format}"
    return PlainTextResponse(
        out.getvalue(), media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


class RefusalOut(BaseModel):
    """One refusal on the refusal log, as an auditor reads it."""

    position: int = Field(description="Its place in the store's log; page on with `since`")
    at: str = Field(description="When it was refused (ISO 8601, UTC)")
    door: Literal["cli", "api", "web", "temporal"] = Field(description="The way in it came through")
    actor: str = Field(description="ROLE:ID as proven, or `unproven:` and what was claimed")
    proven: bool
    command: str
    reference: str = Field(description="The case, if it named one")
    rule: str = Field(description="What refused it (e.g. NotAllowedError, CaseClosedError, AuthenticationError)")
    reason: str
    command_id: str


@router.get(
    "/audit/refusals",
    tags=["audit"],
    summary="The refusal log: every refused command, sign-in and request, oldest first (auditors only)",
    response_model=list[RefusalOut],
)
def audit_refusals(
    who: Who,
    cmds: Cmds,
    role: RoleHeader = None,
    since: Annotated[int, Query(ge=0, le=MAX_INT, description="Only refusals after this position")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    refusals.require_auditor(who, role)
    return [e.as_dict() for e in RefusalLog(cmds.cases).entries(since=since, limit=limit)]


# --- commands: starting cases ------------------------------------------------------------------------


async def _created(
    cmds: Commands, kind: str, who: Identity, body: BaseModel, key: str | None, role: str | None
) -> JSONResponse:
    state = await cmds.start(kind, who, body.model_dump(), command_id(key), role)
    data = state_dict(state)
    return JSONResponse(
        {"reference": state.reference, "case": data},
        status_code=201,
        headers={"Location": f"/api/v1/cases/{state.reference}"},
    )


@router.post("/proposals", tags=["commands"], status_code=201, response_model=Created, summary="Start a proposal")
async def start_proposal(
    body: ProposalIn, who: Who, cmds: Cmds, key: IdempotencyKey = None, role: RoleHeader = None
) -> JSONResponse:
    return await _created(cmds, "proposal", who, body, key, role)


@router.post("/disputes", tags=["commands"], status_code=201, response_model=Created, summary="Raise a dispute")
async def raise_dispute(
    body: DisputeIn, who: Who, cmds: Cmds, key: IdempotencyKey = None, role: RoleHeader = None
) -> JSONResponse:
    return await _created(cmds, "dispute", who, body, key, role)


@router.post(
    "/terminations",
    tags=["commands"],
    status_code=201,
    response_model=Created,
    summary="Serve notice to leave the partnership",
)
async def serve_notice(
    body: TerminationIn, who: Who, cmds: Cmds, key: IdempotencyKey = None, role: RoleHeader = None
) -> JSONResponse:
    return await _created(cmds, "termination", who, body, key, role)


@router.post(
    "/agreements",
    tags=["commands"],
    status_code=201,
    response_model=Created,
    summary="Propose termination by mutual consent (a party leaves, or the partnership ends, on an agreed date)",
)
async def propose_agreement(
    body: AgreementIn, who: Who, cmds: Cmds, key: IdempotencyKey = None, role: RoleHeader = None
) -> JSONResponse:
    return await _created(cmds, "agreement", who, body, key, role)


@router.post(
    "/variations", tags=["commands"], status_code=201, response_model=Created, summary="Start a contract variation"
)
async def start_variation(
    body: VariationIn, who: Who, cmds: Cmds, key: IdempotencyKey = None, role: RoleHeader = None
) -> JSONResponse:
    return await _created(cmds, "variation", who, body, key, role)


@router.post(
    "/funding-changes",
    tags=["commands"],
    status_code=201,
    response_model=Created,
    summary="Start an in-year funding change",
)
async def start_funding(
    body: FundingIn, who: Who, cmds: Cmds, key: IdempotencyKey = None, role: RoleHeader = None
) -> JSONResponse:
    return await _created(cmds, "funding", who, body, key, role)


@router.post(
    "/funds",
    tags=["funds"],
    status_code=201,
    response_model=Created,
    summary="Propose to open an aligned or pooled fund: a case the Programme Board agrees (ToR 4.2)",
)
async def open_fund(
    body: FundIn, who: Who, cmds: Cmds, key: IdempotencyKey = None, role: RoleHeader = None
) -> JSONResponse:
    return await _created(cmds, "fund", who, body, key, role)


@router.post(
    "/foi-requests",
    tags=["commands"],
    status_code=201,
    response_model=Created,
    summary="Record a Freedom of Information request your party received (due in 20 UK working days)",
)
async def receive_foi(
    body: FoiIn, who: Who, cmds: Cmds, key: IdempotencyKey = None, role: RoleHeader = None
) -> JSONResponse:
    return await _created(cmds, "foi", who, body, key, role)


# --- commands on a case ------------------------------------------------------------------------------


@router.post("/cases/{ref}/decisions", tags=["commands"], summary="Record a forum's decision at the current stage")
async def decide(
    ref: Ref, body: DecisionIn, who: Who, cmds: Cmds, key: IdempotencyKey = None, role: RoleHeader = None
) -> dict[str, Any]:
    return state_dict(await cmds.decide(who, ref, body.model_dump(), command_id(key), role))


@router.post(
    "/cases/{ref}/withdraw", tags=["commands"], summary="Withdraw a case (or your notice, or yourself as mediator)"
)
async def withdraw(
    ref: Ref, who: Who, cmds: Cmds, body: WithdrawIn | None = None, key: IdempotencyKey = None, role: RoleHeader = None
) -> dict[str, Any]:
    return state_dict(await cmds.withdraw(who, ref, (body or WithdrawIn()).note, command_id(key), role))


@router.post(
    "/cases/{ref}/consent",
    tags=["commands"],
    summary="Termination (as in earlier releases): your party consents to ending the partnership on a date — "
    "it signs the open agreement to end it on that date, or proposes one (see POST /agreements)",
)
async def consent(
    ref: Ref, body: ConsentIn, who: Who, cmds: Cmds, key: IdempotencyKey = None, role: RoleHeader = None
) -> JSONResponse:
    state, created = await cmds.consent(who, ref, body.effective, command_id(key), role)
    location = {"Location": f"/api/v1/cases/{state.reference}"} if created else None
    return JSONResponse(state_dict(state), status_code=201 if created else 200, headers=location)


def _case_command(name: str, model: type[Fields], summary: str) -> None:
    async def run(
        ref: Ref,
        body: model,
        who: Who,
        cmds: Cmds,  # type: ignore[valid-type]
        key: IdempotencyKey = None,
        role: RoleHeader = None,
    ) -> dict[str, Any]:
        return state_dict(await cmds.act(who, ref, name, body.model_dump(), command_id(key), role))

    run.__name__ = f"case_{name.replace('-', '_')}"
    run.__annotations__["body"] = model  # a real class: the module's string annotations cannot name it
    router.post(f"/cases/{{ref}}/{name}", tags=["commands"], summary=summary)(run)


for _name, _model, _summary in [
    ("resolve", ResolveIn, "Dispute: the Lead Director resolves it, or decides on mediation"),
    ("nominate", NominateIn, "Dispute: nominate a mediator"),
    (
        "agree",
        EmptyIn,
        "Dispute: your party agrees to the nominee; agreement: your party signs it; FOI: your party agrees the draft response",
    ),
    (
        "refuse",
        NoteIn,
        "Dispute: your party refuses the nominee; agreement: your party refuses it; FOI: your party does not agree the draft",
    ),
    ("object", ObjectIn, "Dispute: your party objects that the nominee is not independent"),
    ("appoint", AppointIn, "Dispute: appoint the agreed mediator, in writing"),
    ("findings", FindingsIn, "Dispute: the mediator's binding findings and the cost"),
    ("inform-ce", NoteIn, "Variation: the Chief Executive was informed before a contractual lever"),
    ("extend", ExtendIn, "Dispute: the escalation forum gives an escalated stage a new deadline"),
    ("seek-clarification", OnDateIn, "FOI: ask the requester to clarify; the clock stops (s.1(3))"),
    ("clarification-received", OnDateIn, "FOI: the clarification arrived; 20 working days start again"),
    ("fees-notice", OnDateIn, "FOI: a fees notice was given; the clock stops until it is paid (s.10(2))"),
    ("fee-paid", OnDateIn, "FOI: the fee was paid; the days it stood unpaid are disregarded"),
    ("extend-public-interest", PublicInterestIn, "FOI: a public-interest extension to a later date (s.10(3))"),
    ("draft-response", DraftIn, "FOI: put the draft response, with the exemptions it cites, to the other parties"),
    ("send-response", OnDateIn, "FOI: send the response every other party agreed"),
    ("record-done", RecordDoneIn, "Review or report: the owner records it done, with its document reference"),
]:
    _case_command(_name, _model, _summary)
