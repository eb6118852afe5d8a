"""Which cipher key a store is written with, checked by every process before it writes anything.

A process started without CONCORDAT_CIPHER_KEY (or with another key) against an encrypted store would
write events that no other process can read: the projection runner, the workers and the auditor
would then each fail on them. So the store records a fingerprint of its key (an HMAC of a fixed text
under the key: it names the key without revealing it), or `none` for a store that is not encrypted,
and `bootstrap.open_cases` compares it with the process's own key before returning the store.

The first process to open an empty store records its key. A store written before this check existed
has no record: its first event is read with the process's key, and the key is recorded only if that
works. `deploy/rotate_cipher_key.py` records the new key's fingerprint in the transaction that
re-encrypts the store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import sys
from typing import Any

from domain.errors import ConcordatError


def is_postgres(datastore: Any) -> bool:
    """Whether `datastore` is eventsourcing's PostgreSQL datastore, asked without importing it (and
    psycopg) for a SQLite store: no datastore is of a module this process never imported."""
    module = sys.modules.get("eventsourcing.postgres")
    return module is not None and isinstance(datastore, module.PostgresDatastore)


TABLE = "concordat_store"
NAME = "cipher_key_fingerprint"
PLAIN = "none"
_LABEL = b"concordat store cipher key fingerprint v1"


class StoreKeyError(ConcordatError):
    """The process's cipher key is not the one the store is written with."""


def fingerprint(key: str) -> str:
    """`none` for no key; else 16 hex digits of HMAC-SHA256 under the key's bytes."""
    if not key:
        return PLAIN
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = key.encode()  # the cipher refuses such a key on its own; this only names it
    return hmac.new(raw, _LABEL, hashlib.sha256).hexdigest()[:16]


def _describe(fp: str) -> str:
    return "no key (not encrypted)" if fp == PLAIN else f"the key with fingerprint {fp}"


def mismatch(recorded: str, mine: str) -> str:
    if recorded == PLAIN:
        return (
            f"this store is not encrypted, but CONCORDAT_CIPHER_KEY is set (fingerprint {mine}): unset it, or "
            "encrypt the store first with deploy/rotate_cipher_key.py; nothing was written"
        )
    if mine == PLAIN:
        return (
            f"this store is encrypted (key fingerprint {recorded}) and CONCORDAT_CIPHER_KEY is empty: set it to "
            "the store's key; nothing was written"
        )
    return (
        f"CONCORDAT_CIPHER_KEY (fingerprint {mine}) is not this store's key (fingerprint {recorded}): set it "
        "to the store's key; nothing was written"
    )


def statements(postgres: bool, schema: str = "public") -> dict[str, str]:
    """The SQL to keep the record, for a DB-API cursor on the store's own database."""
    table = f'"{schema}".{TABLE}' if postgres else TABLE
    p = "%s" if postgres else "?"
    return {
        "create": f"CREATE TABLE IF NOT EXISTS {table} (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "read": f"SELECT value FROM {table} WHERE name = {p}",  # noqa: S608 - our own table name
        "add": f"INSERT INTO {table} (name, value) VALUES ({p}, {p}) ON CONFLICT (name) DO NOTHING",
        "set": f"INSERT INTO {table} (name, value) VALUES ({p}, {p}) ON CONFLICT (name) DO UPDATE SET value = "
        "excluded.value",
    }


def check(app: Any, key: str) -> None:
    """Raise StoreKeyError unless `key` is the key `app`'s store is written with (see the module)."""
    datastore = app.recorder.datastore
    postgres = is_postgres(datastore)
    sql = statements(postgres, datastore.schema if postgres else "")
    mine = fingerprint(key)
    recorded = _read(datastore, sql)
    if recorded is None:
        first = app.recorder.select_notifications(start=1, limit=1)
        if first:
            try:
                app.mapper.to_domain_event(first[0])
            except Exception as err:  # noqa: BLE001 - the cipher's, zlib's or JSON's own error: the key does not fit
                raise StoreKeyError(
                    f"CONCORDAT_CIPHER_KEY ({_describe(mine)}) cannot read this store's first event "
                    f"({type(err).__name__}): set it to the key the store is written with; nothing was written"
                ) from None
        with datastore.transaction(commit=True) as cursor:
            cursor.execute(sql["add"], (NAME, mine))  # two first processes at once: the first one wins
        recorded = _read(datastore, sql)
    if recorded != mine:
        raise StoreKeyError(mismatch(recorded or PLAIN, mine))


def _read(datastore: Any, sql: dict[str, str]) -> str | None:
    with datastore.transaction(commit=True) as cursor:
        cursor.execute(sql["read"], (NAME,))  # the table is made by `concordat migrate` (concordat.schema)
        row = cursor.fetchone()
    if row is None:
        return None
    return row[0] if isinstance(row, tuple | list) else row["value"]
