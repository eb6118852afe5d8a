"""Idempotency keys scoped to the person, the route and the request.

A client's key (`Idempotency-Key`, `--command-id`, a form's hidden command id) is never the command
id the store records. The store records `k1:<scope>:<request>`, where `scope` is a digest of (the
person's id, the route, the key) and `request` a digest of the request's fields. So:

- another person's key, or the same key on another route, is another command: it replays nothing;
- the same person, route and key with the same fields is the same command: the first answer again;
- the same person, route and key with other fields is refused (`reused_text`), as payment APIs do.

Command ids recorded before keys were scoped are the client's key itself; a repeat of one answers as
before only for the person who gave it (`CaseService.replay`, `CaseService.started_by`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

PREFIX = "k1:"


def _digest(value: Any, size: int) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def request_fingerprint(fields: dict[str, Any]) -> str:
    """The request's fields, a field left out and a field left empty alike (the CLI omits what the API
    sends empty)."""
    given = {k: v for k, v in fields.items() if v not in (None, "", [], {}, (), False)}
    return _digest(given, 16)


def scoped_command_id(user_id: str, route: str, key: str, fields: dict[str, Any]) -> str:
    """The command id the store records for `key` given by `user_id` on `route` with `fields`."""
    return f"{PREFIX}{_digest([user_id, route, key], 32)}:{request_fingerprint(fields)}"


def scope_of(command_id: str) -> str | None:
    """The (person, route, key) part of a scoped command id; None for any other command id."""
    if not command_id.startswith(PREFIX):
        return None
    scope, sep, _ = command_id.rpartition(":")
    return scope if sep and scope != PREFIX.rstrip(":") else None


def reused_text(key: str) -> str:
    return (
        f"Idempotency-Key {key!r} was used for a different request; "
        "send the same request again with it, or use a new key for a new request"
    )
