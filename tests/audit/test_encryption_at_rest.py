"""Encryption at rest: with a cipher key the stored event rows hold no readable case text, and
history, time travel and verification still work. On SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from eventsourcing.cryptography import AESCipher
from pydantic import SecretStr

from concordat import bootstrap
from concordat.settings import Settings
from concordat.store_key import StoreKeyError
from domain.actor import Actor
from domain.audit import Auditor

SECRET_TITLE = "Safeguarding review for a named looked-after child"
LEAD, DAN, AUDREY = Actor.parse("jcu_lead:jo"), Actor.parse("lead_director:dan"), Actor.parse("auditor:audrey")


def raw_rows(settings: Settings) -> bytes:
    if settings.uses_postgres:
        with psycopg.connect(settings.database_url) as conn:
            rows = conn.execute("SELECT topic, state FROM cases_events").fetchall()
    else:
        con = sqlite3.connect(settings.data_dir / "events.sqlite")
        rows = con.execute("SELECT topic, state FROM stored_events").fetchall()
        con.close()
    return b"".join(topic.encode() + bytes(state) for topic, state in rows)


@pytest.mark.parametrize("encrypted", [True, False])
def test_encrypted_rows_hold_no_case_text_and_the_auditor_still_reads_them(settings: Settings, encrypted: bool) -> None:
    if encrypted:
        settings = settings.model_copy(update={"cipher_key": SecretStr(AESCipher.create_key(32))})
    app = bootstrap.open_cases(settings)
    ref = app.start_proposal(
        actor=LEAD,
        command_id="s",
        title=SECRET_TITLE,
        kind="procurement",
        value_pence=1,
        parties=["PCC"],
        public_health=False,
    ).reference
    app.decide(ref, actor=DAN, stage="jcu", outcome="refer", minutes_ref="JCU-CONFIDENTIAL-7", command_id="d")
    raw = raw_rows(settings)
    assert (SECRET_TITLE.encode() in raw) is not encrypted
    assert (b"JCU-CONFIDENTIAL-7" in raw) is not encrypted
    # Everything an auditor does still works, through the cipher.
    again = bootstrap.open_cases(settings)
    assert again.get(ref, actor=AUDREY).title == SECRET_TITLE
    history = again.history(ref, actor=AUDREY)
    assert [h.event for h in history] == ["Started", "Decided"]
    assert again.get(ref, actor=AUDREY, version=again.version_at(ref, history[0].recorded_at)).stage == "jcu"
    assert Auditor(again).verify(ref)[1] == []


def test_the_wrong_key_cannot_read_the_store(settings: Settings) -> None:
    keyed = settings.model_copy(update={"cipher_key": SecretStr(AESCipher.create_key(32))})
    app = bootstrap.open_cases(keyed)
    app.start_proposal(
        actor=LEAD,
        command_id="s",
        title=SECRET_TITLE,
        kind="procurement",
        value_pence=1,
        parties=["PCC"],
        public_health=False,
    )
    wrong = settings.model_copy(update={"cipher_key": SecretStr(AESCipher.create_key(32))})
    # Refused at open, before it reads or writes anything (tests/store/test_store_key.py has the rest).
    with pytest.raises(StoreKeyError, match="is not this store's key"):
        bootstrap.open_cases(wrong)
