"""Rotating the encryption key (deploy/rotate_cipher_key.py, run as the runbook runs it): every stored
event and snapshot is re-encrypted under the new key in one transaction; history, state and the hash
chains are unchanged under the new key, the old key reads nothing, and a wrong current key changes
nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.cryptography import AESCipher
from pydantic import SecretStr

from concordat import bootstrap
from concordat.settings import Settings
from concordat.store_key import StoreKeyError
from domain.audit import Auditor
from tests.deploy.cases import AUDREY, make_partnership
from tests.people import with_token

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "rotate_cipher_key.py"


def run(settings: Settings, *args: str, new_key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCORDAT_") and k != "NEW_CIPHER_KEY"}
    env.update(
        CONCORDAT_DATABASE_URL=settings.database_url,
        CONCORDAT_DATA_DIR=str(settings.data_dir),
        CONCORDAT_CIPHER_KEY=settings.cipher_key.get_secret_value(),
    )
    if new_key is not None:
        env["NEW_CIPHER_KEY"] = new_key
    argv = [sys.executable, str(SCRIPT)] if not args else [sys.executable, "-m", "concordat", *args]
    return subprocess.run(argv, env=with_token(env, args), capture_output=True, text=True, timeout=120)


def read_all(settings: Settings, references: list[str]) -> dict[str, Any]:
    app = bootstrap.open_cases(settings)
    return {
        "events": list(Auditor(app).export_rows()),
        "histories": {ref: app.history(ref, actor=AUDREY) for ref in references},
        "states": {ref: app.state(ref) for ref in references},
    }


def keyed(settings: Settings, key: str) -> Settings:
    return settings.model_copy(update={"cipher_key": SecretStr(key), "snapshot_interval": 2})


def test_rotation_reencrypts_every_event_and_snapshot_and_the_chains_still_verify(
    settings: Settings, tmp_path: Path
) -> None:
    old, new = AESCipher.create_key(32), AESCipher.create_key(32)
    app = bootstrap.open_cases(keyed(settings, old))
    cases = make_partnership(app)
    heads = run(keyed(settings, old), "audit", "heads", "--json", "--as", "auditor:audrey")
    assert heads.returncode == 0, heads.stderr
    before = read_all(keyed(settings, old), cases.references)
    (tmp_path / "heads.json").write_text(heads.stdout)

    done = run(keyed(settings, old), new_key=new)
    assert done.returncode == 0, done.stderr
    rewritten = int(done.stdout.split()[1])
    assert rewritten > app.max_notification_id()  # every event, and the snapshots (every 2 events) besides

    assert read_all(keyed(settings, new), cases.references) == before
    verified = run(
        keyed(settings, new),
        "audit",
        "verify",
        "--json",
        "--heads",
        str(tmp_path / "heads.json"),
        "--as",
        "auditor:audrey",
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["breaks"] == []
    # The old key is refused now; a rotation from the wrong current key stops and changes nothing.
    with pytest.raises(StoreKeyError, match="is not this store's key"):
        bootstrap.open_cases(keyed(settings, old))
    refused = run(keyed(settings, old), new_key=AESCipher.create_key(32))
    assert refused.returncode == 1
    assert "cannot be read with the current key" in refused.stderr and "nothing was changed" in refused.stderr
    assert read_all(keyed(settings, new), cases.references) == before


def test_an_unencrypted_store_can_be_encrypted_in_place(settings: Settings) -> None:
    key = AESCipher.create_key(32)
    app = bootstrap.open_cases(keyed(settings, ""))
    cases = make_partnership(app)
    before = read_all(keyed(settings, ""), cases.references)
    done = run(keyed(settings, ""), new_key=key)
    assert done.returncode == 0, done.stderr
    assert read_all(keyed(settings, key), cases.references) == before
    assert Auditor(bootstrap.open_cases(keyed(settings, key))).verify()[1] == []
    same = run(keyed(settings, key), new_key=key)
    assert (same.returncode, same.stdout) == (1, "")
