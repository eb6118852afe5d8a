"""The signed-in web pages: server-rendered, GOV.UK Design System patterns, no script needed.

No rule lives here. What a person may do comes from `actions_for` (the domain's allowed actions);
refusals are the domain's own errors, shown in an error summary with what was typed kept; deadlines
in working days come from the domain's calendar.

Sign-in: a password checked against its argon2 hash; the session is a signed, HttpOnly,
SameSite=Strict cookie holding only the user id, the user's session version at sign-in and a CSRF
token. The person's roles and session version are read again on every request: a revoked role stops
working at once, and a sign-out, a new password, a revoked role or token moves the version on and
ends every session the person had (a copied cookie too, in every web process). Every form carries
the CSRF token. Sign-in attempts are counted in the store before the password is checked
(`concordat.web.throttle`): too many for one id are refused with 429, whichever process answers.
"""

from __future__ import annotations

import hmac
import inspect
import io
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from concordat import keys, render
from concordat.as_json import state_dict
from concordat.commands import CASE_ACTIONS, actions_for
from concordat.fields import START_MODELS, form_fields
from concordat.money import MONEY_MAPS, format_pence, pounds_text
from concordat.web import refusals
from concordat.web.problems import EXPECTED, problem_for
from concordat.web.throttle import Refused, SignInThrottle
from domain.audit import AUDITOR_ROLE, Auditor, authorize_export
from domain.funding import financial_quarter
from domain.identity import AuthenticationError, Identity, role_fits
from domain.refusals import RefusalLog

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["pounds"] = lambda pence: format_pence(int(pence)) if pence is not None else ""
templates.env.filters["pounds_map"] = lambda pence_by_party: pounds_text({p: int(v) for p, v in pence_by_party.items()})
templates.env.globals["money_maps"] = MONEY_MAPS
templates.env.filters["when"] = lambda value: _when(value)
templates.env.filters["entries"] = lambda value, key: [render.detail_entry(key, v) for v in value]

# The fields each case command takes on its form (labels for people; names as the CLI's options).
ACTION_FIELDS: dict[str, list[tuple[str, str]]] = {
    "resolve": [("outcome", "Outcome: resolved, mediation or no_mediation"), ("note", "Note")],
    "nominate": [("mediator", "Mediator's user id"), ("note", "Note")],
    "agree": [],
    "refuse": [("note", "Why")],
    "object": [("reason", "Why the nominee is not independent")],
    "appoint": [("letter_ref", "Letter of appointment reference")],
    "findings": [("findings", "Findings (binding on the parties)"), ("cost", "Total cost in pounds")],
    "inform-ce": [("note", "How and when the Chief Executive was informed")],
    "extend": [("deadline", "New deadline (YYYY-MM-DD; empty for the stage's usual time)"), ("note", "Note")],
    # FOI requests (domain/foi.py)
    "seek-clarification": [("on", "Sought on (YYYY-MM-DD; empty for today)"), ("note", "What was asked")],
    "clarification-received": [("on", "Arrived on (YYYY-MM-DD; empty for today)"), ("note", "Note")],
    "fees-notice": [("on", "Notice given on (YYYY-MM-DD; empty for today)"), ("note", "Note")],
    "fee-paid": [("on", "Paid on (YYYY-MM-DD; empty for today)"), ("note", "Note")],
    "extend-public-interest": [("to", "New due date (YYYY-MM-DD)"), ("reason", "Reason (the exemption weighed)")],
    "draft-response": [
        ("draft_ref", "Draft's document reference"),
        ("exemptions", "Exemptions cited (comma-separated, e.g. s.40(2), s.43(2))"),
        ("note", "Note"),
    ],
    "send-response": [("on", "Sent on (YYYY-MM-DD; empty for today)"), ("note", "Note")],
}
ACTION_NAMES = {domain: cli for cli, (domain, _) in CASE_ACTIONS.items()}


# --- plumbing ---------------------------------------------------------------------------------


class NotSignedIn(Exception):
    pass


NOT_SIGNED_IN = (
    "not signed in: no session, the session's person no longer holds a role, or the session was ended "
    "(signed out, a new password, a role or token revoked)"
)
CSRF_REASON = "the form did not carry this session's CSRF token (expired, or sent from another site)"


class CsrfError(Exception):
    pass


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


async def form_of(request: Request) -> dict[str, str]:
    """The posted form, after checking its CSRF token against the session's."""
    form = await request.form()
    given = str(form.get("csrf_token", ""))
    expected = request.session.get("csrf", "")
    if not expected or not hmac.compare_digest(given, expected):
        raise CsrfError
    request.state.command_id = str(form.get("command_id", ""))  # for a refusal that follows
    request.state.role = str(form.get("role", "")) or None
    return {k: str(v) for k, v in form.items() if k != "csrf_token"}


def me(request: Request) -> Identity:
    """The signed-in person, if their session is still theirs: they hold a role, and their session
    version is the one the session began under (else NotSignedIn)."""
    user_id = request.session.get("user")
    who = request.app.state.page_commands.directory.identity(user_id) if user_id else None
    if who is None or request.session.get("sv") != who.session_version:
        refusals.claimed(request, str(user_id or ""))
        raise NotSignedIn
    refusals.proven(request, who)
    return who


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    user_id = request.session.get("user")
    return templates.TemplateResponse(
        request,
        name,
        {
            "csrf": csrf_token(request),
            "user": user_id,
            "path": request.url.path,
            **context,
        },
        status_code=status,
    )


def _when(value: Any) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return value.astimezone(render.LONDON).strftime("%-d %b %Y %H:%M") if isinstance(value, datetime) else str(value)


def _signed_in(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    async def wrapped(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return await handler(request, *args, **kwargs)
        except NotSignedIn:
            # A page visited before signing in is the way to the sign-in page; a form posted without a
            # session, or a session whose person may no longer sign in, is a refusal.
            if request.method != "GET" or request.session.get("user"):
                await refusals.record(request, rule="NotSignedIn", reason=NOT_SIGNED_IN)
            request.session.clear()  # an ended session is forgotten by this browser too
            return RedirectResponse(f"/sign-in?next={quote(request.url.path)}", status_code=303)
        except CsrfError:
            await refusals.record(request, rule="CsrfError", reason=CSRF_REASON)
            return page(
                request,
                "error.html",
                403,
                title="This form has expired",
                detail="The form was not sent from this session of Concordat, or it has expired. "
                "Go back, reload the page and try again.",
            )

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    wrapped.__signature__ = inspect.signature(handler)  # type: ignore[attr-defined]
    return wrapped


async def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    title = {
        401: "Sign in",
        403: "You cannot do that",
        404: "Page not found",
        409: "The case has moved on",
        422: "There is a problem",
        503: "Sorry, the service is unavailable",
    }.get(status, "Sorry, there is a problem")
    return page(request, "error.html", status, title=title, detail=detail)


# --- sign-in ----------------------------------------------------------------------------------


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str = "/") -> HTMLResponse:
    return page(request, "sign_in.html", next=_safe_next(next), values={}, errors={})


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    try:
        form = await form_of(request)
    except CsrfError:
        await refusals.record(request, rule="CsrfError", reason=CSRF_REASON)
        return page(
            request,
            "sign_in.html",
            403,
            next="/",
            values={},
            errors={"user_id": "The form had expired. Enter your user id and password again."},
        )
    user_id, password = form.get("user_id", "").strip(), form.get("password", "")
    throttle: SignInThrottle = request.app.state.throttle
    errors = {}
    if not user_id:
        errors["user_id"] = "Enter your user id"
    if not password:
        errors["password"] = "Enter your password"
    if not errors:
        keys = throttle.keys(request, user_id)
        refused = await run_in_threadpool(throttle.take, keys)  # counted before the password is checked
        if refused is not None:
            return await _throttled(request, user_id, form, refused)
        try:
            who = await run_in_threadpool(request.app.state.page_commands.directory.sign_in, user_id, password)
        except AuthenticationError as err:
            errors["user_id"] = "The user id or password is not right"
            refusals.claimed(request, user_id)  # the id they gave (bounded when stored); never the password
            await refusals.record(request, rule=type(err).__name__, reason=str(err))
        else:
            await run_in_threadpool(throttle.succeeded, keys)
            request.session.clear()
            request.session.update({"user": who.user_id, "sv": who.session_version, "csrf": secrets.token_urlsafe(32)})
            return RedirectResponse(_safe_next(form.get("next", "/")), status_code=303)
    return page(
        request,
        "sign_in.html",
        401 if "password" not in errors and "user_id" in errors and password else 422,
        next=_safe_next(form.get("next", "/")),
        values={"user_id": user_id},
        errors=errors,
    )


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    try:
        await form_of(request)
    except CsrfError:
        await refusals.record(request, rule="CsrfError", reason=CSRF_REASON)
        return await error_page(request, 403, "The form had expired; reload the page and sign out again.")
    try:
        who = me(request)
    except NotSignedIn:
        who = None  # already ended: nothing more to end
    if who is not None:
        directory = request.app.state.page_commands.directory
        await run_in_threadpool(
            directory.end_sessions, who.user_id, by=who.any_role(), command_id=f"sign-out-{secrets.token_hex(8)}"
        )
    request.session.clear()
    return RedirectResponse("/sign-in", status_code=303)


async def _throttled(request: Request, user_id: str, form: dict[str, str], refused: Refused) -> HTMLResponse:
    """Too many attempts: 429 with Retry-After, the password not checked, and on the refusal log."""
    minutes = -(-refused.retry_after // 60)
    reason = (
        f"too many sign-in attempts for this {refused.what} (at most {_limit(request, refused.what)} in "
        f"{SignInThrottle.WINDOW // 60} minutes); the password was not checked; try again in {refused.retry_after} s"
    )
    refusals.claimed(request, user_id)
    await refusals.record(request, rule="SignInThrottled", reason=reason)
    answer = page(
        request,
        "sign_in.html",
        429,
        next=_safe_next(form.get("next", "/")),
        values={"user_id": user_id},
        errors={
            "user_id": f"Too many attempts to sign in. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
        },
    )
    answer.headers["Retry-After"] = str(refused.retry_after)
    return answer


def _limit(request: Request, what: str) -> int:
    throttle: SignInThrottle = request.app.state.throttle
    return throttle.LIMIT if what == "user id" else throttle.CLIENT_LIMIT


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


# --- reading ----------------------------------------------------------------------------------


@router.get("/")
@_signed_in
async def dashboard(request: Request) -> HTMLResponse:
    """The cases waiting on the signed-in person's roles, overdue first, deadlines in working days."""
    who = me(request)
    cmds = request.app.state.page_commands
    rows = await run_in_threadpool(_waiting_on, request, who)
    reminders = await run_in_threadpool(request.app.state.views["outbox"].rows, recipient=who.user_id, limit=20)
    return page(
        request,
        "dashboard.html",
        who=who,
        rows=rows,
        reminders=reminders,
        outbox_status=render.OUTBOX_STATUS,
        policy=cmds.cases.policy,
    )


def _waiting_on(request: Request, who: Identity) -> list[dict[str, Any]]:
    cmds = request.app.state.page_commands
    view = request.app.state.views["case_list"]
    render.wait_for_view(view, cmds.cases)
    calendar = cmds.cases.rules.calendar
    today = calendar.local_date(datetime.now().astimezone())
    rows = []
    for row in view.list_cases(open_only=True, limit=500):
        state = cmds.cases.state(row["reference"], history=False)
        mine = [a for a in actions_for(state, who) if a["action"] != "withdraw"]
        if not mine:
            continue
        deadline = getattr(state, "deadline", None)
        days = calendar.working_days_until(today, calendar.local_date(deadline)) if deadline else None
        rows.append(
            {
                **row,
                "actions": mine,
                "deadline": deadline,
                "working_days": days,
                "overdue": days is not None and deadline < datetime.now().astimezone(),
            }
        )
    rows.sort(key=lambda r: (not r["overdue"], r["working_days"] if r["working_days"] is not None else 10**6))
    return rows


@router.get("/cases")
@_signed_in
async def case_list(
    request: Request, kind: str = "", stage: str = "", party: str = "", status: str = "", page_no: int = 1
) -> HTMLResponse:
    who = me(request)
    cmds = request.app.state.page_commands
    cmds.cases.authorize_read(who.any_role())
    view = request.app.state.views["case_list"]
    per_page = 50
    page_no = min(max(1, page_no), 10**6)
    filters = {
        "kind": kind or None,
        "stage": stage or None,
        "party": party or None,
        "open_only": status in ("open", "overdue"),
        "overdue_at": datetime.now().astimezone() if status == "overdue" else None,
    }

    def read() -> tuple[list[dict[str, Any]], int, int]:
        lag = render.wait_for_view(view, cmds.cases)
        return (
            view.list_cases(**filters, limit=per_page, offset=(page_no - 1) * per_page),
            view.count_cases(**filters),
            lag,
        )

    rows, total, lag = await run_in_threadpool(read)
    query = {"kind": kind, "stage": stage, "party": party, "status": status}
    return page(
        request,
        "cases.html",
        rows=rows,
        total=total,
        lag=lag,
        filters=query,
        page_no=page_no,
        pages=max(1, -(-total // per_page)),
        query=urlencode({k: v for k, v in query.items() if v}),
        parties=cmds.cases.policy.partnership.parties,
        now=datetime.now().astimezone(),
    )


@router.get("/cases/{ref}")
@_signed_in
async def case_page(request: Request, ref: str) -> HTMLResponse:
    return await _case_page(request, ref)


async def _case_page(
    request: Request,
    ref: str,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    form: str = "",
) -> HTMLResponse:
    who = me(request)
    cmds = request.app.state.page_commands

    def read() -> tuple[Any, list[Any]]:
        actor = who.any_role()
        return cmds.cases.get(ref, actor=actor), cmds.cases.history(ref, actor=actor)

    state, history = await run_in_threadpool(read)
    calendar = cmds.cases.rules.calendar
    deadline = getattr(state, "deadline", None)
    days = (
        calendar.working_days_until(calendar.local_date(datetime.now().astimezone()), calendar.local_date(deadline))
        if deadline
        else None
    )
    actions = actions_for(state, who)
    decide = [a for a in actions if a["action"] == "decide"]
    others = [
        {
            **a,
            "name": ACTION_NAMES.get(a["action"], a["action"]),
            "fields": ACTION_FIELDS.get(ACTION_NAMES.get(a["action"], a["action"]), []),
        }
        for a in actions
        if a["action"] not in ("decide", "withdraw")
    ]
    return page(
        request,
        "case.html",
        status,
        case=state_dict(state),
        history=[state_dict(h) for h in history],
        working_days=days,
        decide=decide,
        withdraw=[a for a in actions if a["action"] == "withdraw"],
        others=others,
        errors=errors or {},
        values=values or {},
        form=form,
        command_id=secrets.token_hex(16),
        recorded=request.query_params.get("recorded", ""),
    )


# --- commands ---------------------------------------------------------------------------------


async def _refusal(request: Request, err: Exception) -> tuple[int, str]:
    """A refused form's status and reason, to show by its field (and on the refusal log, if the tier
    refused it); a store or engine outage is not the form's fault and goes to the error page
    (re-raised from the `except` that called this)."""
    status, detail = problem_for(err)
    if status >= 500:
        raise err
    await refusals.record_error(request, err)
    return status, detail


@router.post("/cases/{ref}/decide")
@_signed_in
async def decide(request: Request, ref: str) -> Response:
    who = me(request)
    form = await form_of(request)
    errors = {}
    for field, what in (("stage", "the stage deciding"), ("outcome", "an outcome")):
        if not form.get(field):
            errors[field] = f"Choose {what}"
    if errors:
        return await _case_page(request, ref, 422, errors, form, "decide")
    try:
        await request.app.state.page_commands.decide(
            who, ref, form, form.get("command_id") or secrets.token_hex(16), form.get("role") or None
        )
    except EXPECTED as err:
        status, detail = await _refusal(request, err)
        return await _case_page(request, ref, status, {"outcome": detail}, form, "decide")
    return RedirectResponse(f"/cases/{ref}?recorded=decision", status_code=303)


@router.post("/cases/{ref}/withdraw")
@_signed_in
async def withdraw(request: Request, ref: str) -> Response:
    who = me(request)
    form = await form_of(request)
    try:
        await request.app.state.page_commands.withdraw(
            who, ref, form.get("note", ""), form.get("command_id") or secrets.token_hex(16), form.get("role") or None
        )
    except EXPECTED as err:
        status, detail = await _refusal(request, err)
        return await _case_page(request, ref, status, {"note": detail}, form, "withdraw")
    return RedirectResponse(f"/cases/{ref}?recorded=withdrawal", status_code=303)


@router.post("/cases/{ref}/act/{command}")
@_signed_in
async def act(request: Request, ref: str, command: str) -> Response:
    who = me(request)
    form = await form_of(request)
    if command not in CASE_ACTIONS:
        return await error_page(request, 404, f"there is no command {command!r}")
    try:
        await request.app.state.page_commands.act(
            who, ref, command, form, form.get("command_id") or secrets.token_hex(16), form.get("role") or None
        )
    except EXPECTED as err:
        status, detail = await _refusal(request, err)
        field = (ACTION_FIELDS[command] or [("command", "")])[0][0]
        return await _case_page(request, ref, status, {field: detail}, form, command)
    return RedirectResponse(f"/cases/{ref}?recorded={command}", status_code=303)


@router.get("/proposals/new")
@_signed_in
async def new_proposal(request: Request) -> HTMLResponse:
    me(request)
    return _proposal_form(request, {}, {})


def _proposal_form(request: Request, values: dict[str, str], errors: dict[str, str], status: int = 200) -> HTMLResponse:
    policy = request.app.state.page_commands.cases.policy
    return page(
        request,
        "start_proposal.html",
        status,
        values=values,
        errors=errors,
        kinds=policy.proposal.kinds,
        parties=policy.partnership.parties,
        command_id=values.get("command_id") or secrets.token_hex(16),
    )


@router.post("/proposals/new")
@_signed_in
async def start_proposal(request: Request) -> Response:
    who = me(request)
    form = await form_of(request)
    raw = await request.form()
    parties = [str(p) for p in raw.getlist("parties")]
    values = {**form, "parties": ",".join(parties)}
    errors = {}
    if not form.get("title", "").strip():
        errors["title"] = "Enter a title"
    if not form.get("kind"):
        errors["kind"] = "Choose the kind of proposal"
    if not form.get("value", "").strip():
        errors["value"] = "Enter the annual value in pounds, like 180000"
    if not parties:
        errors["parties"] = "Choose the parties it concerns"
    if errors:
        return _proposal_form(request, values, errors, 422)
    fields = {
        "title": form["title"],
        "kind": form["kind"],
        "value": form["value"],
        "parties": parties,
        "public_health": form.get("public_health") == "yes",
    }
    try:
        state = await request.app.state.page_commands.start(
            "proposal", who, fields, form.get("command_id") or secrets.token_hex(16)
        )
    except EXPECTED as err:
        status, detail = await _refusal(request, err)
        field = next((f for f in ("value", "kind", "parties", "title") if f in detail.lower()), "title")
        return _proposal_form(request, values, {field: detail}, status)
    return RedirectResponse(f"/cases/{state.reference}?recorded=start", status_code=303)


# --- starting the other kinds of case ----------------------------------------------------------

# Each kind's form, made from the fields it declares once (concordat.fields): (heading, [(field, label,
# input type, hint)]), and which fields may be left empty. Field names are the CLI's options; the
# domain checks every value (the page only says which boxes are empty).
START_FORMS: dict[str, tuple[str, list[tuple[str, str, str, str]]]] = {
    kind: (
        (model.__doc__ or kind).strip(),
        [(n, label, kind_of, hint) for n, label, kind_of, hint, _ in form_fields(model)],
    )
    for kind, model in START_MODELS.items()
    if kind != "proposal"
}
OPTIONAL = {kind: {n for n, *_, required in form_fields(model) if not required} for kind, model in START_MODELS.items()}
# Checkboxes that assert something only when ticked (left empty, the domain decides: a funding change's
# `public_health` is the fund's own fact).
ASSERTIONS = {
    kind: {n for n, info in model.model_fields.items() if info.default is None and bool in get_args(info.annotation)}
    for kind, model in START_MODELS.items()
}


@router.get("/start")
@_signed_in
async def start_menu(request: Request) -> HTMLResponse:
    """The kinds of case this person may start (the policy says who may start what)."""
    who = me(request)
    policy = request.app.state.page_commands.cases.policy
    kinds = [
        (kind, START_FORMS[kind][0] if kind in START_FORMS else "Start a proposal")
        for kind in ("proposal", *START_FORMS)
        if any(role_fits(r, policy.roles_that_start(kind)) for r in who.roles)
    ]
    return page(request, "start_menu.html", kinds=kinds)


@router.get("/start/{kind}")
@_signed_in
async def start_form(request: Request, kind: str) -> Response:
    me(request)
    if kind == "proposal":
        return RedirectResponse("/proposals/new", status_code=303)
    if kind not in START_FORMS:
        return await error_page(request, 404, f"there is no kind of case called {kind!r}")
    return _start_page(request, kind, {}, {})


def _start_page(
    request: Request, kind: str, values: dict[str, Any], errors: dict[str, str], status: int = 200
) -> HTMLResponse:
    policy = request.app.state.page_commands.cases.policy
    title, fields = START_FORMS[kind]
    return page(
        request,
        "start_case.html",
        status,
        kind=kind,
        heading=title,
        fields=fields,
        values=values,
        errors=errors,
        parties=policy.partnership.parties,
        reasons=list(policy.variation.reasons),
        fund_types=["aligned", "pooled"],
        command_id=values.get("command_id") or secrets.token_hex(16),
    )


@router.post("/start/{kind}")
@_signed_in
async def start_case(request: Request, kind: str) -> Response:
    who = me(request)
    form = await form_of(request)
    if kind not in START_FORMS:
        return await error_page(request, 404, f"there is no kind of case called {kind!r}")
    raw = await request.form()
    policy_parties = request.app.state.page_commands.cases.policy.partnership.parties
    values: dict[str, Any] = dict(form)
    fields: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, label, kind_of_input, _ in START_FORMS[kind][1]:
        if kind_of_input == "parties":
            chosen = [str(p) for p in raw.getlist(name)]
            values[name] = chosen
            fields[name] = chosen
            if not chosen:
                errors[name] = f"Choose the {label.lower()}"
        elif kind_of_input == "changes":
            changes = {p: form.get(f"change-{p}", "").strip() for p in policy_parties}
            values.update({f"change-{p}": v for p, v in changes.items()})
            fields[name] = {p: v for p, v in changes.items() if v}
            if not fields[name]:
                what = "contribution" if name == "contribution" else "change"
                errors[f"change-{policy_parties[0]}"] = f"Give at least one party's {what} in pounds"
        elif kind_of_input == "checkbox":
            ticked = form.get(name) == "yes"
            if ticked or name not in ASSERTIONS[kind]:
                fields[name] = ticked
        else:
            fields[name] = form.get(name, "").strip()
            if not fields[name] and name not in OPTIONAL[kind]:
                errors[name] = f"Enter the {label.lower()}"
    if errors:
        return _start_page(request, kind, values, errors, 422)
    try:
        state = await request.app.state.page_commands.start(
            kind, who, fields, form.get("command_id") or secrets.token_hex(16)
        )
    except EXPECTED as err:
        status, detail = await _refusal(request, err)
        return _start_page(request, kind, values, {_field_named(kind, detail, policy_parties): detail}, status)
    return RedirectResponse(f"/cases/{state.reference}?recorded=start", status_code=303)


def _field_named(kind: str, detail: str, parties: list[str]) -> str:
    """The form field a refusal is about, to put the message by it (the first named, else the first)."""
    names = [name for name, *_ in START_FORMS[kind][1]]
    text = detail.lower()
    found = next((n for n in names if n in text or n.replace("_", " ") in text), names[0])
    return f"change-{parties[0]}" if found in ("change", "contribution") else found


# --- registers and the auditor's page ------------------------------------------------------------


@router.get("/decisions")
@_signed_in
async def decisions(request: Request, case: str = "") -> HTMLResponse:
    who = me(request)
    cmds = request.app.state.page_commands
    cmds.cases.authorize_read(who.any_role())
    view = request.app.state.views["decisions"]

    def read() -> tuple[list[dict[str, Any]], int]:
        lag = render.wait_for_view(view, cmds.cases)
        return view.list_decisions(reference=case or None, limit=500), lag

    rows, lag = await run_in_threadpool(read)
    return page(request, "decisions.html", rows=rows, lag=lag, case=case)


@router.get("/reports/ring-fenced")
@_signed_in
async def ring_fenced_report(request: Request, year: str = "") -> Response:
    """Ring-fenced public-health money per party per quarter (Cabinet report 4.5.1), as a page or CSV."""
    who = me(request)
    cmds = request.app.state.page_commands
    cmds.cases.authorize_read(who.any_role())
    calendar = cmds.cases.rules.calendar
    today = calendar.local_date(datetime.now(UTC))
    try:
        chosen = int(year) if year else financial_quarter(cmds.cases.rules, today)[0]
        if not 2000 <= chosen <= 2100:
            raise ValueError
    except ValueError:
        return await error_page(
            request, 422, f"year {year!r} is not a financial year: give its first calendar year, e.g. 2026"
        )
    view = request.app.state.views["public_health"]

    def read() -> tuple[dict[str, Any], int]:
        lag = render.wait_for_view(view, cmds.cases)
        return view.report(chosen, cmds.cases.policy.partnership.parties), lag

    report, lag = await run_in_threadpool(read)
    if request.query_params.get("format") == "csv":
        out = io.StringIO()
        render.csv_out(report, out)
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="ring-fenced-{report["financial_year"]}.csv"'},
        )
    return page(request, "report.html", report=report, lag=lag, year=chosen)


@router.get("/reports/foi")
@_signed_in
async def foi_register_page(request: Request) -> Response:
    """The FOI register and the share answered on time per quarter, as a page or CSV."""
    who = me(request)
    cases = request.app.state.page_commands.cases
    report = await run_in_threadpool(lambda: cases.foi_register(actor=who.any_role()))
    if request.query_params.get("format") == "csv":
        out = io.StringIO()
        render.foi_csv(report, out)
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="foi-register.csv"'},
        )
    return page(request, "foi_register.html", report=report)


@router.get("/audit")
@_signed_in
async def audit(request: Request, reference: str = "") -> HTMLResponse:
    who = me(request)
    cmds = request.app.state.page_commands
    cmds.cases.authorize_read(who.any_role())
    ref = reference.strip() or None
    auditor = Auditor(cmds.cases, keys.audit_key(request.app.state.settings).public_key())
    checked, breaks = await run_in_threadpool(auditor.verify, ref)

    def held() -> list[dict[str, Any]]:
        return [
            {"view": name, **row}
            for name, view in request.app.state.views.items()
            for row in view.quarantined(cmds.cases.name)
        ]

    quarantined = await run_in_threadpool(held)
    return page(request, "audit.html", reference=ref or "", checked=checked, breaks=breaks, quarantined=quarantined)


@router.get("/audit/export")
@_signed_in
async def audit_export(request: Request, reference: str = "", format: str = "jsonl") -> Response:
    who = me(request)
    cmds = request.app.state.page_commands
    authorize_export(cmds.cases, who.acting_as([AUDITOR_ROLE]))
    if format not in ("jsonl", "csv"):
        return await error_page(request, 422, "format must be jsonl or csv")
    out = io.StringIO()
    await run_in_threadpool(render.export, Auditor(cmds.cases).export_rows(reference or None), format, out)
    name = f"{reference or 'all'}-history.{format}"
    return PlainTextResponse(
        out.getvalue(),
        media_type="text/csv" if format == "csv" else "application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


REFUSALS_PER_PAGE = 100


@router.get("/audit/refusals")
@_signed_in
async def audit_refusals(request: Request, since: int = 0) -> HTMLResponse:
    """The refusal log, oldest first, a page at a time by position (auditors only)."""
    who = me(request)
    refusals.require_auditor(who)
    since = min(max(0, since), 2**31 - 1)  # as the API takes it; beyond, nothing is there yet
    log = RefusalLog(request.app.state.page_commands.cases)
    rows = await run_in_threadpool(log.entries, since=since, limit=REFUSALS_PER_PAGE + 1)
    more = len(rows) > REFUSALS_PER_PAGE
    rows = rows[:REFUSALS_PER_PAGE]
    return page(
        request,
        "refusals.html",
        rows=rows,
        since=since,
        next_since=rows[-1].position if more else None,
    )
