"""Re-encrypt the event store under a new cipher key (deploy/README.md, "Rotating the encryption key").

    NEW_CIPHER_KEY=... python rotate_cipher_key.py        with the store's CONCORDAT_* settings

Reads every stored event and snapshot with the current key (CONCORDAT_CIPHER_KEY; empty: the store is
not encrypted yet), writes it back under NEW_CIPHER_KEY (empty: store it unencrypted), and commits
once: the store is wholly under the old key or wholly under the new one, never a mix, and its record
of which key that is (`concordat.store_key`) changes in the same transaction. A row the old key cannot
read stops it with nothing changed. The hash chains cover the decoded events, so `concordat
audit verify` under the new key proves that nothing but the encryption changed.

Stop every worker, web process and projection runner first (anything still running with the old key
would write rows the new key cannot read), and take a backup. The views are not encrypted and are
not touched. Prints one line; exits 0 when done, 1 when it changed nothing.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

import psycopg
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment
from psycopg import sql

from concordat import bootstrap, store_key
from concordat.settings import Settings

SQLITE_TABLES = ("stored_events", "stored_snapshots")


def _codec(key: str) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    """(decode, encode) of a row's state as bootstrap stores it: compressed then encrypted, or plain."""
    if not key:
        return (lambda state: state), (lambda state: state)
    cipher, zlib = AESCipher(Environment(env={AESCipher.CIPHER_KEY: key})), ZlibCompressor()
    return (lambda state: zlib.decompress(cipher.decrypt(state))), (lambda state: cipher.encrypt(zlib.compress(state)))


def rotate(settings: Settings, new_key: str) -> int:
    """Re-encrypt every stored event and snapshot from settings.cipher_key to `new_key`, in one
    transaction; returns how many rows were rewritten."""
    decode, _ = _codec(settings.cipher_key.get_secret_value())
    _, encode = _codec(new_key)

    def recode(state: Any, where: str) -> bytes:
        try:
            return encode(decode(bytes(state)))
        except Exception as err:  # noqa: BLE001 - the cipher's and zlib's own errors: name the row, change nothing
            raise RuntimeError(f"{where} cannot be read with the current key ({type(err).__name__})") from None

    if settings.uses_postgres:
        return _rotate_postgres(settings, recode, store_key.fingerprint(new_key))
    return _rotate_sqlite(settings, recode, store_key.fingerprint(new_key))


def _rotate_postgres(settings: Settings, recode: Callable[[Any, str], bytes], fingerprint: str) -> int:
    schema = bootstrap.store_env(settings).get("POSTGRES_SCHEMA") or "public"
    done = 0
    with psycopg.connect(settings.database_url) as conn, conn.transaction():
        _record_key(conn, store_key.statements(True, schema), fingerprint)
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_name = ANY(%s)",
                (schema, ["cases_events", "cases_snapshots"]),
            )
        ]
        for table in sorted(tables):
            name = sql.Identifier(schema, table)
            conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(name))
            rows = conn.execute(sql.SQL("SELECT originator_id, originator_version, state FROM {}").format(name))
            for originator_id, version, state in rows.fetchall():
                conn.execute(
                    sql.SQL("UPDATE {} SET state = %s WHERE originator_id = %s AND originator_version = %s").format(
                        name
                    ),
                    (recode(state, f"{table} {originator_id} v{version}"), originator_id, version),
                )
                done += 1
    return done


def _record_key(conn: Any, sql: dict[str, str], fingerprint: str) -> None:
    """The store's record of its key (`concordat.store_key`), in the transaction that re-encrypts it."""
    conn.execute(sql["create"])
    conn.execute(sql["set"], (store_key.NAME, fingerprint))


def _rotate_sqlite(settings: Settings, recode: Callable[[Any, str], bytes], fingerprint: str) -> int:
    path = bootstrap.store_env(settings)["SQLITE_DBNAME"]
    con = sqlite3.connect(path, timeout=30, isolation_level=None)
    done = 0
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            _record_key(con, store_key.statements(False), fingerprint)
            present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for table in (t for t in SQLITE_TABLES if t in present):
                rows = con.execute(f"SELECT originator_id, originator_version, state FROM {table}").fetchall()  # noqa: S608
                for originator_id, version, state in rows:
                    con.execute(
                        f"UPDATE {table} SET state = ? WHERE originator_id = ? AND originator_version = ?",  # noqa: S608
                        (recode(state, f"{table} {originator_id} v{version}"), originator_id, version),
                    )
                    done += 1
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
    return done


def main() -> int:
    settings = Settings()
    new_key = os.environ.get("NEW_CIPHER_KEY", "")
    try:
        for key in (new_key, settings.cipher_key.get_secret_value()):
            if key:
                AESCipher(Environment(env={AESCipher.CIPHER_KEY: key}))  # a key of the wrong size fails here
    except ValueError as err:
        sys.stderr.write(f"rotate_cipher_key: not a base64 AES key of 16, 24 or 32 bytes ({err})\n")
        return 1
    if new_key == settings.cipher_key.get_secret_value():
        sys.stderr.write("rotate_cipher_key: NEW_CIPHER_KEY is the current key; nothing to do\n")
        return 1
    try:
        done = rotate(settings, new_key)
    except RuntimeError as err:
        sys.stderr.write(f"rotate_cipher_key: {err}; nothing was changed\n")
        return 1
    sys.stdout.write(
        f"re-encrypted {done} stored events and snapshots; set CONCORDAT_CIPHER_KEY to the new key, "
        "then run `concordat audit verify`\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
