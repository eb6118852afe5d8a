"""The sign-in throttle, shared by every web process: attempts are counted in the store's database.

An attempt is counted when it starts, before the password is checked, in one atomic statement: so
parallel guesses are counted as they arrive, not as they finish, and at most LIMIT of them for one
user id (CLIENT_LIMIT from one client address) are evaluated within a WINDOW. Further attempts are
refused, without checking the password, until the window that the first attempt opened has passed
(`Retry-After`). A success forgets the id's attempts and gives back its own one of the address's; a
failure stays counted until the window ends.

Why a table beside the events rather than events: attempts are operational, not decisions (the
refusals are on the refusal log already), they change on every try and expire after a window, and
an atomic conditional UPDATE is what "count it before evaluating it" needs across processes; one row
per key, pruned when its window has passed, keeps it bounded. Keys are SHA-256 digests of the id
tried (lower-cased) and of the client address, so nothing an attacker types is stored.

The client address is the socket's peer unless `CONCORDAT_TRUSTED_PROXY_HEADER` names the header
a trusted reverse proxy sets (e.g. `X-Forwarded-For`): then its last entry, the one that proxy
added. Without the setting such headers are ignored: anyone can send them.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier
from starlette.requests import Request

TABLE = "sign_in_attempts"
_PARAM = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")
_DDL = (
    "CREATE TABLE IF NOT EXISTS {t} (key TEXT PRIMARY KEY, attempts INTEGER NOT NULL, first_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS {i} ON {t} (first_at)",
)
# Count this attempt, unless the key's window is full; a window that has passed starts again at 1.
_TAKE = (
    "UPDATE {t} SET attempts = CASE WHEN first_at <= :cutoff THEN 1 ELSE attempts + 1 END,"
    " first_at = CASE WHEN first_at <= :cutoff THEN :now ELSE first_at END"
    " WHERE key = :key AND (first_at <= :cutoff OR attempts < :limit) RETURNING attempts"
)


@dataclass(frozen=True)
class Refused:
    """An attempt refused by the throttle: which key was full, and in how many seconds to try again."""

    what: str  # "user id" or "client address"
    retry_after: int


class SignInThrottle:
    """Counts sign-in attempts per user id and per client address in the store's own database."""

    LIMIT = 5  # attempts for one user id ...
    CLIENT_LIMIT = 50  # ... and from one client address (many people may share one) ...
    WINDOW = 15 * 60  # ... in this many seconds

    def __init__(self, datastore: Any, *, trusted_header: str = "", clock: Callable[[], float] = time.time) -> None:
        self.datastore = datastore
        self.trusted_header = trusted_header.strip().lower()
        self.clock = clock
        self.postgres = isinstance(datastore, PostgresDatastore)

    # --- keys ---------------------------------------------------------------------------------

    def client_address(self, request: Request) -> str:
        """The trusted proxy's header's last entry when one is configured, else the socket's peer."""
        if self.trusted_header:
            given = request.headers.get(self.trusted_header, "")
            last = given.split(",")[-1].strip()
            if last:
                return last[:200]
        return request.client.host if request.client else "unknown"

    def keys(self, request: Request, user_id: str) -> dict[str, str]:
        return {
            "user id": "user:" + _digest(user_id.strip().lower()),
            "client address": "client:" + _digest(self.client_address(request)),
        }

    # --- counting -----------------------------------------------------------------------------

    def take(self, keys: dict[str, str]) -> Refused | None:
        """Count an attempt for every key, all or none; None if it may go ahead, else why not."""
        now = int(self.clock())
        cutoff = now - self.WINDOW
        self._run([("DELETE FROM {t} WHERE first_at <= :cutoff", {"cutoff": cutoff})])  # stay bounded
        limits = {"user id": self.LIMIT, "client address": self.CLIENT_LIMIT}
        refused: list[Refused] = []

        def count(cursor: Any) -> None:
            for what, key in sorted(keys.items(), key=lambda kv: kv[1]):  # one order: no deadlock
                params = {"key": key, "now": now, "cutoff": cutoff, "limit": limits[what]}
                self._execute(
                    cursor,
                    "INSERT INTO {t} (key, attempts, first_at) VALUES (:key, 0, :now) ON CONFLICT (key) DO NOTHING",
                    params,
                )
                if self._execute(cursor, _TAKE, params) is None:
                    row = self._execute(cursor, "SELECT first_at FROM {t} WHERE key = :key", params)
                    first = int(row[0]) if row else now
                    refused.append(Refused(what, max(1, math.ceil(first + self.WINDOW - now))))
                    raise _Full

        try:
            self._transaction(count)
        except _Full:  # nothing counted: the transaction was rolled back
            return refused[0]
        return None

    def succeeded(self, keys: dict[str, str]) -> None:
        """A right password: the id's attempts are forgotten, and this one is given back to the address."""
        self._run(
            [
                ("DELETE FROM {t} WHERE key = :key", {"key": keys["user id"]}),
                (
                    "UPDATE {t} SET attempts = attempts - 1 WHERE key = :key AND attempts > 0",
                    {"key": keys["client address"]},
                ),
            ]
        )

    def attempts(self, key: str) -> int:
        """How many attempts are counted for `key` now (for tests and operators)."""
        found: list[int] = []
        self._transaction(
            lambda c: found.append(
                int((self._execute(c, "SELECT attempts FROM {t} WHERE key = :key", {"key": key}) or [0])[0])
            )
        )
        return found[0]

    # --- SQL on either store --------------------------------------------------------------------

    def _run(self, statements: list[tuple[str, dict[str, Any]]]) -> None:
        def run(cursor: Any) -> None:
            for sql, params in statements:
                self._execute(cursor, sql, params, fetch=False)

        self._transaction(run)

    def _transaction(self, body: Callable[[Any], None]) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            body(cursor)

    def _execute(self, cursor: Any, sql: str, params: dict[str, Any], *, fetch: bool = True) -> Any:
        if self.postgres:
            names = {"t": Identifier(self.datastore.schema, TABLE), "i": Identifier(f"{TABLE}_by_first_at")}
            cursor.execute(SQL(_PARAM.sub(r"%(\1)s", sql)).format(**names), params)
            row = cursor.fetchone() if fetch and cursor.description is not None else None
            return list(row.values()) if row else None
        cursor.execute(sql.format(t=TABLE, i=f"{TABLE}_by_first_at"), params)
        row = cursor.fetchone() if fetch else None
        return list(row) if row else None


class _Full(Exception):
    """A key's window is full: roll the attempt back on every key."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def create_tables(datastore: Any) -> None:
    """The throttle's table, made by `concordat migrate` (concordat.schema), not by each web process."""
    SignInThrottle(datastore)._run([(s, {}) for s in _DDL])
