"""Errors as `application/problem+json` (RFC 9457): a status, a title, and a detail a person can act on.

Every refusal the domain can make maps to one 4xx status here, so the API and the pages agree:
401 not signed in, 403 not your role, 404 no such case, 409 the case has moved on (a stale or
closed command, a conflict), 422 the request itself is wrong, 503 the store or Temporal is down
(try again with the same Idempotency-Key). A server error is logged whole and answered in one line.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import psycopg
from eventsourcing.persistence import MapperDeserialisationError, OperationalError, PersistenceError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from temporalio.service import RPCError

from concordat.engine import CommandRefusedError, TemporalUnavailableError
from domain.errors import (
    CaseNotFoundError,
    ConcordatError,
    FundWouldOverspendError,
    InvalidInputError,
    NotAllowedError,
    NoticeTooShortError,
    OutcomeNotAllowedError,
    PolicyError,
)
from domain.identity import AuthenticationError, UnknownUserError
from domain.values import field_path

PROBLEM = "application/problem+json"
UNPROCESSABLE = (InvalidInputError, OutcomeNotAllowedError, NoticeTooShortError, FundWouldOverspendError, PolicyError)
# The domain error names a workflow's refusal carries (engine.CommandRefusedError.kind).
KIND_STATUS = {
    "NotAllowedError": 403,
    "NotYourForumError": 403,
    "NotAPartyError": 403,
    "FormerPartyError": 403,
    "SeparationOfDutiesError": 403,
    "ForgedCommandError": 403,
    "InvalidInputError": 422,
    "MediatorNotEligibleError": 422,
    "IdempotencyKeyReusedError": 422,
    "OutcomeNotAllowedError": 422,
    "NoticeTooShortError": 422,
    "FundWouldOverspendError": 422,
    "PolicyError": 422,
    "StoreUnavailable": 503,
}


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None


# Raised by the domain, the store or Temporal in the ordinary course: answered, not logged as faults.
EXPECTED: tuple[type[BaseException], ...] = (
    ConcordatError,
    ValidationError,
    TemporalUnavailableError,
    RPCError,
    MapperDeserialisationError,
    OperationalError,
    PersistenceError,
    psycopg.OperationalError,
)


def problem_for(exc: BaseException) -> tuple[int, str]:
    """The status and the one-line detail for an exception raised while serving a request."""
    if isinstance(exc, AuthenticationError):
        return 401, str(exc)
    if isinstance(exc, NotAllowedError):
        return 403, str(exc)
    if isinstance(exc, CaseNotFoundError | UnknownUserError):
        return 404, str(exc)
    if isinstance(exc, UNPROCESSABLE):
        return 422, str(exc)
    if isinstance(exc, CommandRefusedError):
        if exc.kind == "StoreUnavailable":  # not refused: the outcome is not known yet
            return 503, (
                "the store did not answer in time; the command may or may not be recorded: repeat it with the "
                "same Idempotency-Key to finish it (it is recorded once); without a key a repeat is a new command"
            )
        return KIND_STATUS.get(exc.kind, 409), str(exc)
    if isinstance(exc, ConcordatError):
        return 409, str(exc)  # closed, wrong stage, not yet due, a concurrent change: the case moved on
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return 422, f"{field_path(first['loc'])}: {first['msg']}"
    if isinstance(exc, TemporalUnavailableError):
        return 503, str(exc)
    if isinstance(exc, RPCError):  # Temporal answered with an error of its own: a failing dependency
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return 503, f"Temporal failed ({exc.status.name if exc.status else 'no status'}): {detail}; try again"
    if isinstance(exc, MapperDeserialisationError):
        return 500, "cannot decode the stored events: is CONCORDAT_CIPHER_KEY the key they were written with?"
    if isinstance(exc, OperationalError | PersistenceError | psycopg.OperationalError):
        if any(full in str(exc) for full in DISK_FULL):  # the cause, named: waiting alone will not mend it
            return 503, (
                "store unavailable: its database or disk is full; try again once there is space "
                "(with the same Idempotency-Key, it is recorded once)"
            )
        return 503, "store unavailable, try again (with the same Idempotency-Key, it is recorded once)"
    return 500, f"internal error ({type(exc).__name__}); the details are in the server's log"


# SQLite's words (SQLITE_FULL) and PostgreSQL's (ENOSPC, "could not extend file …") for a full disk.
DISK_FULL = ("database or disk is full", "No space left on device")


def problem_response(
    status: int, detail: str, *, errors: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": _title(status), "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    extra = dict(headers or {})
    if status == 401:
        extra.setdefault("WWW-Authenticate", 'Bearer realm="concordat"')
    if status == 503:
        extra.setdefault("Retry-After", "5")
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=extra)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
