"""The web tier's refusals, on the refusal log (`domain/refusals.py`): the one place the API and the
pages record what they refused themselves.

What is recorded, with door `api` (paths under /api/) or `web` (the pages):
- 401: no token, a malformed, unknown or revoked token (its id when it has one; never the secret), a
  failed sign-in on the sign-in page (the claimed user id; never the password);
- 403: a role that may not (`NotAllowedError` and its kinds, raised in the tier: `acting_as`,
  `authorize_read`, the auditor's routes) and a form without its session's CSRF token;
- a form posted without a signed-in session, and any page reached with a session whose user may no
  longer sign in (a page merely visited before signing in is the way to the sign-in page, not a
  refusal, and is not recorded);
- the rules' refusals raised in the tier before a command reaches Temporal (`CaseClosedError`, a stale
  or conflicting command, a notice too short, …).

Not recorded here: bad input (`InvalidInputError`, a request that does not parse: 422), a case or
user not found (404), an outage (5xx), and `CommandRefusedError`: that refusal was made, and
recorded, by the worker.

Who: the proven person (`Actor`) when the request proved one, in the role they named if they hold it,
else in every role they hold (`jcu_lead|auditor`); otherwise what was claimed. Recording never turns
the refusal into another answer: `RefusalLog.record` swallows the store's errors, and so does this.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from concordat.engine import CommandRefusedError
from domain.actor import Actor
from domain.errors import CaseNotFoundError, ConcordatError, InvalidInputError, NotAllowedError, PolicyError
from domain.identity import Identity, UnknownUserError
from domain.refusals import RefusalLog

log = structlog.get_logger("concordat.web.refusals")
AUDITOR = "auditor"
# Raised in the tier, but not refusals of a person: bad input, nothing there, or already recorded.
NOT_REFUSALS: tuple[type[BaseException], ...] = (
    InvalidInputError,
    PolicyError,
    CaseNotFoundError,
    UnknownUserError,
    CommandRefusedError,
)


def is_refusal(exc: BaseException) -> bool:
    """Whether the tier should record `exc` (see the module's docstring)."""
    return isinstance(exc, ConcordatError) and not isinstance(exc, NOT_REFUSALS)


def door_of(request: Request) -> str:
    return "api" if request.url.path.startswith("/api/") else "web"


def proven(request: Request, who: Identity, role: str | None = None) -> None:
    """Note the person this request proved (and the role they named), for a refusal that follows."""
    request.state.identity = who
    if role is not None:
        request.state.role = role


def claimed(request: Request, text: str) -> None:
    """Note who an unproven request claimed to be (a token's id, a user id; never a secret)."""
    request.state.claimed = text


def _actor(request: Request) -> Actor | None:
    who: Identity | None = getattr(request.state, "identity", None)
    if who is None:
        return None
    wanted = getattr(request.state, "role", None) or request.headers.get("x-concordat-role", "").strip()
    return Actor(id=who.user_id, role=wanted if wanted in who.roles else "|".join(who.roles))


def _command(request: Request) -> str:
    """The command or read refused: the route's name (`decide`, `start_proposal`, `list_cases`, …)."""
    endpoint = request.scope.get("endpoint")
    name = getattr(endpoint, "__name__", "") or f"{request.method} {request.url.path}"
    params = request.path_params
    if name == "act" and params.get("command"):
        name = str(params["command"])
    elif name == "start_case" and params.get("kind"):
        name = f"start_{params['kind']}"
    return name.removeprefix("case_")


def _command_id(request: Request, actor: Actor | None) -> str:
    """The command id a proven person gave (the Idempotency-Key; a form's command id): a repeat of the
    same refused command is recorded once. An unproven caller's is not used: it must not take a key."""
    if actor is None:
        return ""
    given = getattr(request.state, "command_id", None) or request.headers.get("idempotency-key", "")
    return str(given).strip()


async def record(
    request: Request, *, rule: str, reason: str, command: str | None = None, door: str | None = None
) -> None:
    """Record one refusal the tier gave for `request`. Never raises."""
    try:
        actor = _actor(request)
        fields: dict[str, Any] = {
            "door": door or door_of(request),
            "command": command or _command(request),
            "reason": reason,
            "rule": rule,
            "actor": actor,
            "claimed": "" if actor else getattr(request.state, "claimed", ""),
            "reference": str(request.path_params.get("ref", "")),
            "command_id": _command_id(request, actor),
        }
        await run_in_threadpool(RefusalLog(request.app.state.commands.cases).record, **fields)
    except Exception as err:  # noqa: BLE001 - a refusal stays the refusal it was
        log.error("refusal.not_recorded", path=request.url.path, rule=rule, error=type(err).__name__)


async def record_error(request: Request, exc: BaseException) -> None:
    """Record `exc` if it is a refusal the tier gave (see `is_refusal`)."""
    if is_refusal(exc):
        await record(request, rule=type(exc).__name__, reason=str(exc))


def require_auditor(who: Identity, role: str | None = None) -> Actor:
    """The person as an auditor, or NotAllowedError: the refusal log is for auditors only."""
    actor = who.acting_as([AUDITOR], role)
    if actor.role != AUDITOR:
        raise NotAllowedError(f"the refusal log is for auditors; {who.user_id} may not read it as {actor.role}")
    return actor
