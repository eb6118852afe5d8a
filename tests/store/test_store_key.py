"""A process with no cipher key, or another key, is refused by an encrypted store before it writes
anything, and a process with a key is refused by a store that is not encrypted: the store records its
key's fingerprint (never the key) and every process compares it at open. One line on the command
line, and a non-zero exit. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid

import psycopg
import pytest
from eventsourcing.cryptography import AESCipher
from pydantic import SecretStr

from concordat import bootstrap, schema, store_key
from concordat.settings import Settings
from concordat.store_key import StoreKeyError
from domain.actor import Actor
from domain.application import CaseService

LEAD = Actor.parse("jcu_lead:jo")


def with_key(settings: Settings, key: str) -> Settings:
    return settings.model_copy(update={"cipher_key": SecretStr(key)})


def a_case(app: CaseService) -> None:
    app.start_proposal(
        actor=LEAD,
        command_id=str(uuid.uuid4()),
        title="Speech therapy",
        kind="procurement",
        value_pence=1_000,
        parties=["PCC"],
        public_health=False,
    )


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`concordat …` as an operator runs it, in a process of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCORDAT_")}
    env.update(
        CONCORDAT_DATA_DIR=str(settings.data_dir),
        CONCORDAT_DATABASE_URL=settings.database_url,
        CONCORDAT_CIPHER_KEY=settings.cipher_key.get_secret_value(),
    )
    return subprocess.run(
        [sys.executable, "-m", "concordat", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        input="a long enough password\n",
    )


def forget_the_record(settings: Settings) -> None:
    """As a store written before the record existed (and the schema's version with it), opened by a
    process that has not seen it before."""
    schema.forget(settings)
    if settings.uses_postgres:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE {store_key.TABLE}")
    else:
        con = sqlite3.connect(settings.data_dir / "events.sqlite")
        con.execute(f"DROP TABLE {store_key.TABLE}")
        con.commit()
        con.close()


def stored_rows(settings: Settings) -> list[tuple[str, bytes]]:
    if settings.uses_postgres:
        with psycopg.connect(settings.database_url) as conn:
            return [(t, bytes(s)) for t, s in conn.execute("SELECT topic, state FROM cases_events ORDER BY 1, 2")]
    con = sqlite3.connect(settings.data_dir / "events.sqlite")
    try:
        return [(t, bytes(s)) for t, s in con.execute("SELECT topic, state FROM stored_events ORDER BY 1, 2")]
    finally:
        con.close()


@pytest.mark.parametrize("legacy", [False, True], ids=["recorded", "before-the-record"])
def test_a_process_without_the_key_or_with_another_is_refused_by_an_encrypted_store(
    settings: Settings, legacy: bool
) -> None:
    key = AESCipher.create_key(32)
    a_case(bootstrap.open_cases(with_key(settings, key)))
    if legacy:
        forget_the_record(settings)
    before = stored_rows(settings)

    for other in ("", AESCipher.create_key(32)):
        with pytest.raises(StoreKeyError) as refused:
            bootstrap.open_cases(with_key(settings, other))
        assert "nothing was written" in str(refused.value)
        done = cli(with_key(settings, other), "user", "add", "mo", "--role", "auditor", "--password-stdin")
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("concordat: ")
        assert "CONCORDAT_CIPHER_KEY" in done.stderr and "Traceback" not in done.stderr
        assert key not in done.stderr
    assert stored_rows(settings) == before  # not one row written by a refused process

    a_case(bootstrap.open_cases(with_key(settings, key)))  # the store's own key still writes
    assert len(stored_rows(settings)) > len(before)


@pytest.mark.parametrize("legacy", [False, True], ids=["recorded", "before-the-record"])
def test_a_process_with_a_key_is_refused_by_a_store_that_is_not_encrypted(settings: Settings, legacy: bool) -> None:
    a_case(bootstrap.open_cases(settings))
    if legacy:
        forget_the_record(settings)
    before = stored_rows(settings)
    keyed = with_key(settings, AESCipher.create_key(32))
    with pytest.raises(StoreKeyError, match="not encrypted|cannot read"):
        bootstrap.open_cases(keyed)
    done = cli(keyed, "user", "add", "mo", "--role", "auditor", "--password-stdin")
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert stored_rows(settings) == before
    a_case(bootstrap.open_cases(settings))


def test_the_store_records_a_fingerprint_of_its_key_never_the_key(settings: Settings) -> None:
    key = AESCipher.create_key(32)
    bootstrap.open_cases(with_key(settings, key))
    if settings.uses_postgres:
        with psycopg.connect(settings.database_url) as conn:
            recorded = conn.execute(f"SELECT name, value FROM {store_key.TABLE} ORDER BY name").fetchall()
    else:
        con = sqlite3.connect(settings.data_dir / "events.sqlite")
        recorded = con.execute(f"SELECT name, value FROM {store_key.TABLE} ORDER BY name").fetchall()
        con.close()
    # The key's fingerprint, beside the schema's version (concordat.schema): nothing else.
    assert recorded == [(store_key.NAME, store_key.fingerprint(key)), (schema.NAME, str(schema.SCHEMA_VERSION))]
    assert key not in str(recorded) and store_key.fingerprint(key) != store_key.fingerprint(AESCipher.create_key(32))


def test_the_projection_runner_and_health_refuse_a_wrong_key_too(settings: Settings) -> None:
    a_case(bootstrap.open_cases(with_key(settings, AESCipher.create_key(32))))
    with pytest.raises(StoreKeyError):
        bootstrap.projection_runners(settings)
    done = cli(settings, "health", "projections")
    assert done.returncode == 1 and "CONCORDAT_CIPHER_KEY" in done.stdout and done.stdout.count("\n") == 1
