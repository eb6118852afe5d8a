"""`concordat user …` and `concordat token …` as an operator runs them: good input, bad input (one
line, a non-zero exit, nothing written), and the events they leave for the auditor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def run(tmp_path: Path):  # noqa: ANN201 - a small helper
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCORDAT_")}
    env["CONCORDAT_DATA_DIR"] = str(tmp_path / "data")

    def go(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "concordat", *args],
            env=env,
            capture_output=True,
            text=True,
            input=stdin,
            timeout=120,
        )

    return go


def events(run) -> int:  # noqa: ANN001
    done = run("audit", "export", "--as", "auditor:audrey")
    assert done.returncode == 0, done.stderr
    return len(done.stdout.splitlines())


def test_people_and_tokens_from_the_command_line(run) -> None:  # noqa: ANN001
    added = run(
        "user",
        "add",
        "sam",
        "--role",
        "secretary:board",
        "--role",
        "auditor",
        "--password-stdin",
        "--json",
        stdin="a long enough password\n",
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {
        "id": "sam",
        "roles": ["secretary:board", "auditor"],
        "has_password": True,
        "tokens": [],
    }
    token = json.loads(run("token", "create", "sam", "--json").stdout)
    assert token["token"].startswith(f"cdt_{token['id']}.") and token["user"] == "sam"
    plain = run("token", "create", "sam")
    assert plain.stdout.strip().startswith("cdt_") and "shown once" in plain.stderr
    assert run("user", "revoke", "sam", "--role", "auditor").returncode == 0
    assert run("token", "revoke", token["id"]).returncode == 0
    shown = json.loads(run("user", "show", "sam", "--json").stdout)
    assert shown["roles"] == ["secretary:board"]
    assert [t["revoked"] for t in shown["tokens"]] == [True, False]
    assert run("user", "list").stdout.startswith("sam: secretary:board; password set")
    # Who changed access, and when, is in the audit trail with the hash chain.
    rows = [json.loads(line) for line in run("audit", "export", "--as", "auditor:audrey").stdout.splitlines()]
    mine = [r for r in rows if r["reference"] == "user:sam"]
    assert [r["event"] for r in mine] == [
        "Added",
        "PasswordSet",
        "TokenIssued",
        "TokenIssued",
        "RoleRevoked",
        "TokenRevoked",
    ]
    assert all(r["actor_role"] == "operator" for r in mine)
    assert run("audit", "verify", "--as", "auditor:audrey").returncode == 0


@pytest.mark.parametrize(
    ("args", "stdin", "says", "code"),
    [
        (["user", "add", "Sam Smith", "--role", "auditor"], None, "user id 'Sam Smith' is not allowed", 1),
        (["user", "add", "sam", "--role", "chair"], None, "role 'chair' is not known; roles: jcu_lead", 1),
        (["user", "add", "sam"], None, "Missing option '--role'", 2),
        (["user", "add", "sam", "--role", "auditor", "--password-stdin"], "short\n", "at least 12 characters", 1),
        (["user", "add", "sam", "--role", "auditor", "--password-stdin"], "", "nothing on standard input", 1),
        (["user", "grant", "nobody", "--role", "auditor"], None, "no user has the id 'nobody'", 1),
        (["user", "revoke", "nobody", "--role", "auditor"], None, "no user has the id 'nobody'", 1),
        (["token", "create", "nobody"], None, "no user has the id 'nobody'", 1),
        (["token", "revoke", "0123456789ab"], None, "no token has the id '0123456789ab'", 1),
    ],
)
def test_bad_access_changes_say_what_is_wrong_and_write_nothing(
    run,
    args: list[str],
    stdin: str | None,  # noqa: ANN001
    says: str,
    code: int,
) -> None:
    before = events(run)
    done = run(*args, stdin=stdin)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert events(run) == before


def test_serve_refuses_a_taken_port_or_a_bad_address_in_one_line(run) -> None:  # noqa: ANN001
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = run("serve", "--address", f"127.0.0.1:{taken.getsockname()[1]}")
    assert done.returncode == 1 and "is taken" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    bad = run("serve", "--address", "nonsense")
    assert bad.returncode == 2 and "is not HOST:PORT" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
