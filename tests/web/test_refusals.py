"""The pages' refusals on the refusal log, in-process on a real store: failed and throttled sign-ins,
forms without a session or their CSRF token, a role that may not (through a form and on a page), a
session whose person lost their roles; and the auditor's page of the log. Nothing recorded holds a
password or the session cookie; bad input and a page visited before signing in are not refusals."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from concordat.settings import Settings
from concordat.web.app import SESSION_COOKIE, create_app
from concordat.web.throttle import SignInThrottle
from domain.actor import Actor
from domain.refusals import RefusalEntry, RefusalLog
from tests.people import ADMIN as OPS
from tests.people import directory as seeded_directory

PASSWORD = "a long enough password"
WRONG = "not the password, but long"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    app = create_app(Settings(data_dir=tmp_path / "data"))
    people = seeded_directory(app.state.commands.cases)
    for who, roles in {"sam": ["secretary:board"], "audrey": ["auditor"], "jo": ["jcu_lead"]}.items():
        people.add_user(who, roles, by=OPS, command_id=f"add-{who}", password=PASSWORD)
    ref = app.state.commands.cases.start_proposal(
        actor=Actor.parse("jcu_lead:jo"),
        title="Speech and language therapy",
        kind="pathway_change",
        value_pence=40_000_000,
        parties=["PCC", "CPCCG"],
        public_health=False,
        command_id="s1",
    ).reference
    with TestClient(app) as client:
        yield client, ref


def app_of(client: TestClient) -> FastAPI:
    app = client.app
    assert isinstance(app, FastAPI)
    return app


def refusals(client: TestClient) -> list[RefusalEntry]:
    return RefusalLog(app_of(client).state.commands.cases).entries()


def stored_text(client: TestClient) -> str:
    """Every event in the store, decoded, as text (what an operator with the database could read)."""
    cases = app_of(client).state.commands.cases
    notifications = cases.recorder.select_notifications(start=1, limit=100_000)
    return "\n".join(repr(vars(cases.mapper.to_domain_event(n))) for n in notifications)


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the form"
    return found.group(1)


def sign_in(client: TestClient, who: str, password: str = PASSWORD) -> Any:
    token = csrf(client.get("/sign-in").text)
    return client.post(
        "/sign-in",
        data={"csrf_token": token, "user_id": who, "password": password, "next": "/"},
        follow_redirects=False,
    )


def test_a_failed_sign_in_is_recorded_with_the_id_claimed_and_never_the_password(
    site: tuple[TestClient, str],
) -> None:
    client, _ = site
    assert sign_in(client, "sam", WRONG).status_code == 401
    assert sign_in(client, "x" * 5000, WRONG).status_code == 401
    sign_in(client, "", WRONG)  # no id typed: the form is not filled in, no sign-in was tried
    assert sign_in(client, "sam").status_code == 303  # the right password: nothing recorded
    sam, long = refusals(client)
    assert (sam.door, sam.command, sam.rule, sam.actor, sam.proven) == (
        "web",
        "sign_in",
        "AuthenticationError",
        "unproven:sam",
        False,
    )
    assert sam.reason == "the user id or password is not right"
    assert long.actor.startswith("unproven:xxx") and len(long.actor) <= len("unproven:") + 100  # bounded
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie
    stored = stored_text(client)
    assert WRONG not in stored and PASSWORD not in stored and cookie not in stored


def test_a_throttled_sign_in_is_recorded_and_says_the_password_was_not_checked(site: tuple[TestClient, str]) -> None:
    client, _ = site
    for _ in range(SignInThrottle.LIMIT):
        assert sign_in(client, "sam", WRONG).status_code == 401
    refused = sign_in(client, "sam", PASSWORD)  # even the right password: it is not checked
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    found = refusals(client)
    assert [r.rule for r in found] == ["AuthenticationError"] * SignInThrottle.LIMIT + ["SignInThrottled"]
    assert found[-1].actor == "unproven:sam" and "the password was not checked" in found[-1].reason


def test_a_form_without_its_csrf_token_is_recorded_with_the_person_proven(site: tuple[TestClient, str]) -> None:
    client, ref = site
    sign_in(client, "sam")
    refused = client.post(
        f"/cases/{ref}/decide",
        data={
            "csrf_token": "forged",
            "stage": "board",
            "outcome": "recommend",
            "minutes_ref": "MIN-2026-01",
            "command_id": "c-1",
        },
    )
    assert refused.status_code == 403
    (entry,) = refusals(client)
    assert (entry.door, entry.command, entry.rule, entry.actor, entry.proven, entry.reference) == (
        "web",
        "decide",
        "CsrfError",
        "secretary:board:sam",
        True,
        ref,
    )
    assert entry.command_id == ""  # the form was not trusted, so neither is its command id


def test_a_form_posted_without_a_session_is_recorded_but_a_page_visited_is_not(site: tuple[TestClient, str]) -> None:
    client, ref = site
    for path in ["/", "/cases", f"/cases/{ref}", "/audit", "/audit/refusals"]:
        assert client.get(path, follow_redirects=False).status_code == 303
    assert refusals(client) == []
    answer = client.post(f"/cases/{ref}/withdraw", data={"note": "x"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/sign-in")
    (entry,) = refusals(client)
    assert (entry.door, entry.command, entry.rule, entry.actor, entry.reference) == (
        "web",
        "withdraw",
        "NotSignedIn",
        "unproven:unknown",
        ref,
    )


def test_a_session_whose_person_lost_every_role_is_refused_and_recorded(site: tuple[TestClient, str]) -> None:
    client, _ = site
    sign_in(client, "sam")
    assert client.get("/").status_code == 200
    app_of(client).state.commands.directory.revoke("sam", "secretary:board", by=OPS, command_id="r-sam")
    assert client.get("/", follow_redirects=False).status_code == 303
    (entry,) = refusals(client)
    assert (entry.rule, entry.actor, entry.proven, entry.command) == ("NotSignedIn", "unproven:sam", False, "dashboard")


def test_a_role_that_may_not_is_refused_in_the_tier_and_recorded_once(site: tuple[TestClient, str]) -> None:
    client, ref = site
    sign_in(client, "audrey")
    token = csrf(client.get(f"/cases/{ref}").text)
    answer = client.post(
        f"/cases/{ref}/decide",
        data={"csrf_token": token, "stage": "jcu", "outcome": "refer", "command_id": "audrey-1"},
    )
    assert answer.status_code == 403 and "may not do this" in answer.text
    missing = client.post(f"/cases/{ref}/decide", data={"csrf_token": token, "stage": "jcu"})
    assert missing.status_code == 422  # a form not filled in: not a refusal
    assert client.get("/cases/PRO-2099-0009").status_code == 404  # nothing there: not a refusal
    (entry,) = refusals(client)
    assert (entry.door, entry.command, entry.rule, entry.actor, entry.proven) == (
        "web",
        "decide",
        "NotAllowedError",
        "auditor:audrey",
        True,
    )
    assert (entry.reference, entry.command_id) == (ref, "audrey-1")
    assert "audrey may not do this: it is for lead_director" in entry.reason


def test_only_an_auditor_reads_the_refusal_log_page_and_it_shows_text_inert(site: tuple[TestClient, str]) -> None:
    client, _ = site
    sign_in(client, "<script>alert(1)</script>", WRONG)
    sign_in(client, "sam")
    assert client.get("/audit/refusals").status_code == 403
    denied = refusals(client)[-1]
    assert (denied.door, denied.command, denied.rule, denied.actor) == (
        "web",
        "audit_refusals",
        "NotAllowedError",
        "secretary:board:sam",
    )
    client.cookies.clear()
    sign_in(client, "audrey")
    assert 'href="/audit/refusals"' in client.get("/audit").text
    html = client.get("/audit/refusals").text
    assert "<script>alert(1)</script>" not in html and "unproven:&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "secretary:board:sam" in html and "NotAllowedError" in html
    first = refusals(client)[0].position
    later = client.get("/audit/refusals", params={"since": first}).text
    assert "&lt;script&gt;" not in later and "secretary:board:sam" in later


def test_the_refusal_log_page_pages_by_position(site: tuple[TestClient, str], monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = site
    monkeypatch.setattr("concordat.web.pages.REFUSALS_PER_PAGE", 2)
    for n in range(3):
        sign_in(client, f"guess{n}", WRONG)
    sign_in(client, "audrey")
    first = client.get("/audit/refusals").text
    assert "unproven:guess0" in first and "unproven:guess1" in first and "unproven:guess2" not in first
    on = re.search(r'href="/audit/refusals\?since=(\d+)"', first)
    assert on, "no link to the later refusals"
    second = client.get(f"/audit/refusals?since={on.group(1)}").text
    assert "unproven:guess2" in second and "unproven:guess1" not in second and "since=" not in second


def test_a_refusal_stays_the_refusal_it_was_when_the_store_cannot_record_it(site: tuple[TestClient, str]) -> None:
    client, _ = site
    app = app_of(client)
    token = app.state.commands.directory.issue_token("sam", by=OPS, command_id="t-sam").token
    holder = sqlite3.connect(app.state.settings.data_dir / "events.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the store: every write waits, then fails
    try:
        answer = client.post(
            "/api/v1/proposals",
            json={"title": "x", "kind": "pathway_change", "value": "1", "parties": ["PCC"]},
            headers={"Authorization": f"Bearer {token}"},
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert answer.status_code == 403 and "it is for jcu_lead" in answer.json()["detail"]  # not a 500, not a 503
    assert refusals(client) == []  # the store could not take it (and the server's log says so)


def test_a_scrape_of_the_metrics_without_their_token_is_recorded(tmp_path: Path) -> None:
    token = "metrics-token-of-at-least-some-length"
    with TestClient(create_app(Settings(data_dir=tmp_path / "data", metrics_token=SecretStr(token)))) as client:
        assert client.get("/metrics/", headers={"Authorization": "Bearer wrong-guess"}).status_code == 401
        assert client.get("/metrics/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        (entry,) = refusals(client)
        assert (entry.door, entry.command, entry.rule, entry.actor) == (
            "api",
            "metrics",
            "AuthenticationError",
            "unproven:unknown",
        )
        assert "wrong-guess" not in stored_text(client) and token not in stored_text(client)
