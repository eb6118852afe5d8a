"""The command line proves who acts: people of the directory, signed in (`concordat login`, or a token
in CONCORDAT_TOKEN), acting in a role they hold. Operator commands are for administrators; the first
one is made at the shell while nobody exists. Every refusal is on the refusal log.

These run the real CLI in processes against a store of their own (no Temporal is needed for them)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT_PASSWORD = "root's long password"
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCORDAT_")}
    env["CONCORDAT_DATA_DIR"] = str(tmp_path / "data")
    env["CONCORDAT_CREDENTIALS"] = str(tmp_path / "home" / "credentials.json")
    return env


@pytest.fixture
def run(base_env: dict[str, str]) -> Run:
    def go(*args: str, stdin: str | None = None, token: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(base_env)
        if token is not None:
            env["CONCORDAT_TOKEN"] = token
        return subprocess.run(
            [sys.executable, "-m", "concordat", *args],
            env=env,
            capture_output=True,
            text=True,
            input=stdin,
            timeout=120,
        )

    return go


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def one_line(done: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def admin(run: Run) -> str:
    """The first administrator, made at the shell, signed in; an auditor's token for reading the log."""
    ok(run("user", "add", "root", "--role", "admin", "--password-stdin", stdin=ROOT_PASSWORD + "\n"))
    ok(run("login", "root", "--password-stdin", stdin=ROOT_PASSWORD + "\n"))
    return "root"


def token(run: Run, user: str) -> str:
    return json.loads(ok(run("token", "create", user, "--json")))["token"]


def refusals(run: Run, auditor_token: str) -> list[dict[str, object]]:
    return json.loads(ok(run("audit", "refusals", "--json", token=auditor_token)))


def export_rows(run: Run, auditor_token: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in ok(run("audit", "export", token=auditor_token)).splitlines()]


def test_the_first_administrator_is_made_at_the_shell_only_while_nobody_exists(run: Run, tmp_path: Path) -> None:
    assert "the first person must be an administrator" in one_line(run("user", "add", "jo", "--role", "jcu_lead"))
    ok(run("user", "add", "root", "--role", "admin", "--password-stdin", stdin=ROOT_PASSWORD + "\n"))
    # Once someone exists, adding people needs a signed-in administrator.
    said = one_line(run("user", "add", "eve", "--role", "admin", "--password-stdin", stdin="eve's long password\n"))
    assert "you are not signed in" in said
    signed = ok(run("login", "root", "--password-stdin", "--json", stdin=ROOT_PASSWORD + "\n"))
    creds = Path(json.loads(signed)["credentials"])
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert stat.S_IMODE(creds.parent.stat().st_mode) == 0o700
    assert json.loads(ok(run("whoami", "--json")))["user"] == "root"
    ok(run("user", "add", "audrey", "--role", "auditor"))
    # The first user's record says it was made at the shell, by the operating-system user.
    rows = export_rows(run, token(run, "audrey"))
    added = next(r for r in rows if r["reference"] == "user:root" and r["event"] == "Added")
    assert added["actor_role"] == "shell"


def test_login_logout_and_a_token_in_the_environment(run: Run, admin: str) -> None:
    ok(run("user", "add", "dan", "--role", "lead_director", "--password-stdin", stdin="dan's long password\n"))
    ok(run("logout"))
    assert "you are not signed in" in one_line(run("whoami"))
    assert "the user id or password is not right" in one_line(
        run("login", "dan", "--password-stdin", stdin="not dan's password\n")
    )
    ok(run("login", "dan", "--password-stdin", stdin="dan's long password\n"))
    me = json.loads(ok(run("whoami", "--json")))
    assert me == {"user": "dan", "roles": ["lead_director"], "acting_as": None, "from": me["from"]}
    issued = json.loads(ok(run("token", "create", "--json")))  # one's own token, without being an admin
    ok(run("logout"))
    # The token made by login is revoked: a copy of the credentials file is worth nothing now.
    shown = json.loads(ok(run("user", "show", "dan", "--json", token=issued["token"])))
    assert [t["revoked"] for t in shown["tokens"]] == [True, False]
    assert json.loads(ok(run("whoami", "--json", token=issued["token"])))["from"] == "CONCORDAT_TOKEN"
    ok(run("token", "revoke", issued["id"], token=issued["token"]))
    assert "is not valid" in one_line(run("whoami", token=issued["token"]))
    assert "is not valid" in one_line(run("whoami", token="cdt_0123456789ab.forged"))


def test_people_and_tokens_from_the_command_line(run: Run, admin: str) -> None:
    added = run(
        "user",
        "add",
        "sam",
        "--role",
        "secretary:board",
        "--role",
        "party_rep:PCC",
        "--password-stdin",
        "--json",
        stdin="a long enough password\n",
    )
    assert json.loads(ok(added)) == {
        "id": "sam",
        "roles": ["secretary:board", "party_rep:PCC"],
        "has_password": True,
        "email": "",
        "tokens": [],
    }
    ok(run("user", "add", "audrey", "--role", "auditor"))
    first = json.loads(ok(run("token", "create", "sam", "--json")))
    assert first["token"].startswith(f"cdt_{first['id']}.") and first["user"] == "sam"
    plain = run("token", "create", "sam")
    assert ok(plain).strip().startswith("cdt_") and "shown once" in plain.stderr
    ok(run("user", "revoke", "sam", "--role", "party_rep:PCC"))
    ok(run("token", "revoke", first["id"]))
    shown = json.loads(ok(run("user", "show", "sam", "--json")))
    assert shown["roles"] == ["secretary:board"]
    assert [t["revoked"] for t in shown["tokens"]] == [True, False]
    assert "sam: secretary:board; password set" in ok(run("user", "list"))
    # Who changed access, and when, is in the audit trail: the signed-in administrator.
    rows = export_rows(run, token(run, "audrey"))
    mine = [r for r in rows if r["reference"] == "user:sam"]
    assert [r["event"] for r in mine] == [
        "Added",
        "PasswordSet",
        "TokenIssued",
        "TokenIssued",
        "RoleRevoked",
        "TokenRevoked",
    ]
    assert {(r["actor_id"], r["actor_role"]) for r in mine} == {("root", "admin")}


def test_no_one_acts_on_a_claim_and_every_refusal_is_on_the_record(run: Run, admin: str) -> None:
    ok(run("user", "add", "audrey", "--role", "auditor"))
    ok(run("user", "add", "dan", "--role", "lead_director"))
    audrey, dan = token(run, "audrey"), token(run, "dan")
    ok(run("logout"))
    before = len(export_rows(run, audrey))
    attempts = {
        # No proof at all: a name on the command line proves nothing.
        "nobody": (run("show", "PRO-2026-0001", "--as", "lead_director:mallory"), "you are not signed in"),
        # Proven as dan, claiming to be someone else.
        "claim": (run("list", "--as", "lead_director:mallory", token=dan), "you are signed in as dan, not mallory"),
        # A role dan does not hold.
        "role": (run("list", "--as", "secretary:board", token=dan), "dan does not hold the role 'secretary:board'"),
        # An auditor can never grant, not even to themselves.
        "grant": (
            run("user", "grant", "audrey", "--role", "secretary:board", "--as", "auditor:audrey", token=audrey),
            "it is for an administrator",
        ),
        "operator": (run("resume", token=dan), "it is for an administrator"),
        "forged": (run("list", token="cdt_0123456789ab.forged"), "is not valid"),
        "login": (run("login", "dan", "--password-stdin", stdin="a guessed password\n"), "is not right"),
    }
    for name, (done, says) in attempts.items():
        assert says in one_line(done), name
    log = refusals(run, audrey)
    assert len(log) == len(attempts)
    assert all(r["door"] == "cli" for r in log)
    by_rule = {(r["command"], r["actor"], r["rule"]) for r in log}
    assert ("show", "unproven:lead_director:mallory", "NotSignedInError") in by_rule
    assert ("list", "lead_director:dan", "NotAllowedError") in by_rule
    assert ("user grant", "auditor:audrey", "NotAllowedError") in by_rule
    assert ("resume", "lead_director:dan", "NotAllowedError") in by_rule
    assert ("login", "unproven:dan", "AuthenticationError") in by_rule
    # Nothing but the refusals was written.
    after = export_rows(run, audrey)
    assert len(after) == before + len(attempts)
    assert {r["event"] for r in after[before:]} == {"Refused"}
    # The refusal log is for auditors.
    assert "does not hold the role 'auditor'" in one_line(run("audit", "refusals", token=dan))


def test_no_one_grants_themselves_and_no_one_is_both_operator_and_auditor(run: Run, admin: str) -> None:
    assert "no one grants a role to themselves" in one_line(run("user", "grant", "root", "--role", "jcu_lead"))
    assert "cannot hold both admin and auditor" in one_line(
        run("user", "add", "ann", "--role", "admin", "--role", "auditor")
    )
    ok(run("user", "add", "audrey", "--role", "auditor"))
    assert "cannot hold both admin and auditor" in one_line(run("user", "grant", "audrey", "--role", "admin"))
    assert "the only administrator" in one_line(run("user", "revoke", "root", "--role", "admin"))


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
    run: Run, admin: str, args: list[str], stdin: str | None, says: str, code: int
) -> None:
    ok(run("user", "add", "audrey", "--role", "auditor"))
    audrey = token(run, "audrey")
    before = len(export_rows(run, audrey))
    done = run(*args, stdin=stdin)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert len(export_rows(run, audrey)) == before


def test_serve_refuses_a_taken_port_or_a_bad_address_in_one_line(run: Run) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = run("serve", "--address", f"127.0.0.1:{taken.getsockname()[1]}")
    assert done.returncode == 1 and "is taken" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    bad = run("serve", "--address", "nonsense")
    assert bad.returncode == 2 and "is not HOST:PORT" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
