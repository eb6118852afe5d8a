"""`concordat keys generate`: fresh secrets an operator can paste into a secret store, each one the
engine accepts, with nothing but concordat itself on the machine."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment

from concordat import keys
from concordat.settings import Settings


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}  # no CONCORDAT_ setting, no data dir needed
    return subprocess.run(
        [sys.executable, "-m", "concordat", "keys", "generate", *args], env=env, capture_output=True, text=True
    )


def test_keys_generate_prints_env_lines_the_engine_accepts() -> None:
    done = generate()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    made = dict(line.split("=", 1) for line in lines if not line.startswith("#"))
    assert set(made) == {
        "CONCORDAT_CIPHER_KEY",
        "CONCORDAT_COMMAND_KEY",
        "CONCORDAT_AUDIT_KEY",
        "CONCORDAT_SESSION_SECRET",
    }
    settings = Settings(
        cipher_key=made["CONCORDAT_CIPHER_KEY"],
        command_key=made["CONCORDAT_COMMAND_KEY"],
        audit_key=made["CONCORDAT_AUDIT_KEY"],
        session_secret=made["CONCORDAT_SESSION_SECRET"],
    )
    assert len(keys.command_key(settings)) == 32
    cipher = AESCipher(Environment(env={"CIPHER_KEY": made["CONCORDAT_CIPHER_KEY"]}))
    assert cipher.decrypt(cipher.encrypt(b"case text")) == b"case text"
    public = keys.public_text(keys.audit_key(settings).public_key())
    assert lines[-1].startswith("# ") and lines[-1].endswith(public)  # the public half matches the seed
    assert all(len(base64.b64decode(value, validate=True)) == 32 for value in made.values())


def test_each_run_makes_new_keys_and_json_has_the_same_names() -> None:
    first, second = json.loads(generate("--json").stdout), json.loads(generate("--json").stdout)
    assert set(first) == set(second) and "audit_public_key" in first
    assert all(first[name] != second[name] for name in first)
