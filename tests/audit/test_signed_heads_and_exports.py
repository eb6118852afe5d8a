"""The auditor's commands at the boundary (the CLI's own entry point, the API and the pages in
process): heads signed with the audit key, a heads file changed afterwards refused in one line; seals
made and checked from the command line; no password or token hash in any export or head list;
exports for auditors only. On SQLite and on a real PostgreSQL."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from concordat import bootstrap, cli, keys
from concordat.settings import Settings
from concordat.web.app import create_app
from domain.identity import user_aggregate_id
from tests.audit.test_tamper_evidence import Rows, a_case_with_history
from tests.people import ADMIN as OPS
from tests.people import directory as seeded_directory
from tests.people import token_for
from tests.web.test_pages import sign_in

PASSWORD = "a long enough password"


class Door:
    """`concordat …` through the CLI's own entry point (one line and an exit code for any refusal)."""

    def __init__(self, settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.settings, self.capsys = settings, capsys
        monkeypatch.setenv("CONCORDAT_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("CONCORDAT_DATABASE_URL", settings.database_url)
        self.monkeypatch = monkeypatch
        self.tokens: dict[str, str] = {}

    def __call__(self, *args: str) -> tuple[int, str, str]:
        """As `--as ROLE:ID` names (default auditor:audrey): that person, signed in with a token."""
        who = args[list(args).index("--as") + 1] if "--as" in args else "auditor:audrey"
        if who not in self.tokens:
            app = bootstrap.open_cases(self.settings)
            try:
                self.tokens[who] = token_for(app, who)
            finally:
                app.close()
        self.monkeypatch.setenv("CONCORDAT_TOKEN", self.tokens[who])
        self.capsys.readouterr()
        with pytest.raises(SystemExit) as done:
            cli._main(list(args))
        out = self.capsys.readouterr()
        return int(done.value.code or 0), out.out, out.err

    def ok(self, *args: str) -> str:
        code, out, err = self(*args)
        assert code == 0, (args, out, err)
        return out

    def refused(self, *args: str, code: int = 1) -> str:
        got, out, err = self(*args)
        assert got == code, (args, got, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("concordat: "), err  # one line, never a traceback
        return lines[0]


@pytest.fixture
def door(settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Door:
    return Door(settings, capsys, monkeypatch)


def people(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """Sam (a password and a token), Audrey the auditor (a token): the secret hashes as stored, and
    the tokens."""
    app = bootstrap.open_cases(settings)
    a_case_with_history(app)
    directory = seeded_directory(app)
    directory.add_user("sam", ["secretary:board"], by=OPS, command_id="u1", password=PASSWORD)
    directory.add_user("audrey", ["auditor"], by=OPS, command_id="u2")
    directory.add_user("multi", ["secretary:board", "auditor"], by=OPS, command_id="u3")
    tokens = {
        who: directory.issue_token(who, by=OPS, command_id=f"t-{who}").token for who in ("sam", "audrey", "multi")
    }
    directory.set_password("sam", PASSWORD + "!", by=OPS, command_id="u4")
    secrets = []
    for who in ("sam", "audrey", "multi"):
        user = app.repository.get(user_aggregate_id(who))
        secrets += [t["secret_hash"] for t in user.tokens.values()]
    sam = app.repository.get(user_aggregate_id("sam"))
    secrets.append(sam.password_hash)
    first = [e for e in app.events.get(user_aggregate_id("sam")) if type(e).__name__ == "PasswordSet"][0]
    secrets.append(first.password_hash)  # the first password's hash, replaced since
    assert all(secrets) and len(set(secrets)) == 5
    return secrets, tokens


def test_heads_are_signed_and_a_heads_file_changed_afterwards_is_refused(door: Door, tmp_path: Path) -> None:
    people(door.settings)
    public = door.ok("audit", "key").strip()
    assert public == keys.public_text(keys.audit_key(door.settings).public_key())
    assert json.loads(door.ok("audit", "key", "--json"))["public_key"] == public
    signed = json.loads(door.ok("audit", "heads", "--json"))
    assert signed["public_key"] == public and signed["signature"] and len(signed["heads"]) > 5
    assert f"signed by the audit key {public}" in door.ok("audit", "heads")
    heads = tmp_path / "heads.json"
    heads.write_text(json.dumps(signed, indent=2))
    assert "and 1 kept head: no break" in door.ok("audit", "verify", "PRO-2026-0001", "--heads", str(heads))

    # One byte changed: a digit of one head's hash.
    text = heads.read_text()
    at = text.index(signed["heads"][0]["hash"])
    heads.write_text(text[:at] + ("1" if text[at] != "1" else "2") + text[at + 1 :])
    line = door.refused("audit", "verify", "--heads", str(heads))
    assert "the signature does not match the heads: the file was changed after it was signed" in line

    # Signed by another key than the one this check trusts; the key the auditor kept settles it.
    heads.write_text(json.dumps(signed))
    door.monkeypatch.setenv("CONCORDAT_AUDIT_KEY", base64.b64encode(b"\x01" * 32).decode())
    assert "signed by another key than the audit key" in door.refused("audit", "verify", "--heads", str(heads))
    assert "no break" in door.ok("audit", "verify", "--heads", str(heads), "--public-key", public)
    assert "--public-key: not a public key" in door.refused("audit", "verify", "--public-key", "nonsense")

    heads.write_text(json.dumps(signed["heads"]))  # an earlier release's unsigned list
    assert "these heads are not signed" in door.refused("audit", "verify", "--heads", str(heads))


def test_sealing_and_verifying_from_the_command_line(door: Door) -> None:
    people(door.settings)
    door.ok("whoami")  # signed in: Audrey's token (and the store's id) are made once, now
    app = bootstrap.open_cases(door.settings)
    newest = app.max_notification_id()
    assert f"{newest} notifications after the last seal not sealed yet" in door.ok("audit", "verify")
    assert door.ok("audit", "seal").strip() == f"sealed notifications 1–{newest} ({newest} events) in 1 seal"
    assert door.ok("audit", "seal").strip() == "nothing new to seal"
    report = json.loads(door.ok("audit", "verify", "--json"))
    assert (report["breaks"], report["seals"], report["sealed_through"], report["unsealed"]) == ([], 1, newest, 0)
    assert door.ok("audit", "verify").strip().endswith(f"1 seal (through notification {newest}): no break")

    user = user_aggregate_id("sam")
    last = max(e.originator_version for e in app.events.get(user))
    rows = Rows(door.settings)
    rows.run(
        "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = ?",
        user if rows.pg else user.hex,
        last,
    )
    code, out, _ = door("audit", "verify")
    assert code == 1
    assert f"  missing: user:sam v{last} (PasswordSet) sealed in notifications 1–{newest} is missing" in out


def test_no_export_or_head_list_holds_a_password_or_token_hash(door: Door) -> None:
    secrets, tokens = people(door.settings)
    jsonl = door.ok("audit", "export")
    as_csv = door.ok("audit", "export", "--format", "csv")
    heads = door.ok("audit", "heads", "--json")
    for text in (jsonl, as_csv, heads):
        assert not [s for s in secrets if s in text]
    rows = [json.loads(line) for line in jsonl.splitlines()]
    sam = [r for r in rows if r["reference"] == "user:sam"]
    assert [r["event"] for r in sam] == ["Added", "PasswordSet", "TokenIssued", "PasswordSet"]
    assert [r["fields"].get("password_hash") for r in sam if r["event"] == "PasswordSet"] == ["[redacted]"] * 2
    assert [r["fields"]["secret_hash"] for r in sam if r["event"] == "TokenIssued"] == ["[redacted]"]
    assert any("[redacted]" in r["fields"] for r in csv.DictReader(io.StringIO(as_csv)) if r["reference"] == "user:sam")
    # For auditors only.
    line = door.refused("audit", "export", "--as", "secretary:board:sam")
    assert "only an auditor may export the history" in line

    site = create_app(door.settings)
    with TestClient(site) as client:

        def api(who: str, **headers: str) -> object:
            return client.get("/api/v1/audit/export", headers={"Authorization": f"Bearer {tokens[who]}", **headers})

        refused = api("sam")
        assert refused.status_code == 403 and "it is for auditor" in refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert api("multi", **{"X-Concordat-Role": "secretary:board"}).status_code == 403
        for who in ("audrey", "multi"):
            for fmt in ("jsonl", "csv"):
                answer = client.get(
                    "/api/v1/audit/export",
                    params={"format": fmt},
                    headers={"Authorization": f"Bearer {tokens[who]}"},
                )
                assert answer.status_code == 200 and "user:sam" in answer.text and "[redacted]" in answer.text
                assert not [s for s in secrets if s in answer.text]
        listed = client.get("/api/v1/audit/heads", headers={"Authorization": f"Bearer {tokens['audrey']}"})
        assert listed.status_code == 200 and not [s for s in secrets if s in listed.text]

        sign_in(client, "sam", PASSWORD + "!")
        assert client.get("/audit/export").status_code == 403
        client.cookies.clear()
