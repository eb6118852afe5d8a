"""Sessions end when they should, and the sign-in throttle holds, in-process on a real store.

A copied session cookie stops working once its person signs out, gets a new password, or loses a role
or a token; parallel guesses are counted before any password is checked; two web apps on one store
share the count; a proxy's client-address header is believed only when configured."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import domain.directory
from concordat.settings import Settings
from concordat.web.app import SESSION_COOKIE, create_app
from concordat.web.throttle import SignInThrottle
from domain.actor import Actor
from domain.refusals import RefusalLog
from tests.people import ADMIN as OPS
from tests.people import directory as seeded_directory

PASSWORD = "a long enough password"
WRONG = "not the password, but long"


def make_app(data_dir: Path, **settings: Any) -> FastAPI:
    app = create_app(Settings(data_dir=data_dir, **settings))
    people = seeded_directory(app.state.commands.cases)
    if "sam" not in [u["id"] for u in people.list()]:
        people.add_user("sam", ["secretary:board", "jcu_lead"], by=OPS, command_id="add-sam", password=PASSWORD)
    return app


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return make_app(tmp_path / "data")


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the form"
    return found.group(1)


def sign_in(client: TestClient, who: str = "sam", password: str = PASSWORD, **headers: str) -> Any:
    token = csrf(client.get("/sign-in").text)
    return client.post(
        "/sign-in",
        data={"csrf_token": token, "user_id": who, "password": password, "next": "/"},
        headers=headers,
        follow_redirects=False,
    )


def copied(app: FastAPI, client: TestClient) -> TestClient:
    """Another browser holding a copy of `client`'s session cookie."""
    thief = TestClient(app)
    thief.cookies.set(SESSION_COOKIE, client.cookies[SESSION_COOKIE])
    return thief


def signed_in(client: TestClient) -> bool:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code in (200, 303)
    return answer.status_code == 200


def refusal_rules(app: FastAPI) -> list[str]:
    return [r.rule for r in RefusalLog(app.state.commands.cases).entries()]


def test_a_copied_cookie_stops_working_after_sign_out(app: FastAPI) -> None:
    client = TestClient(app)
    assert sign_in(client).status_code == 303
    thief = copied(app, client)
    assert signed_in(thief)
    client.post("/sign-out", data={"csrf_token": csrf(client.get("/").text)})
    assert not signed_in(client)
    assert not signed_in(thief)  # the copy ended with the sign-out, though its cookie was never cleared
    assert sign_in(client).status_code == 303 and signed_in(client)  # signing in again starts a new session
    assert not signed_in(thief)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda app: app.state.commands.directory.set_password(
                "sam", PASSWORD + "!", by=Actor("sam", "jcu_lead"), command_id="pw"
            ),
            id="password-change",
        ),
        pytest.param(
            lambda app: app.state.commands.directory.revoke("sam", "jcu_lead", by=OPS, command_id="rv"),
            id="role-revoked",
        ),
        pytest.param(
            lambda app: app.state.commands.directory.revoke_token(
                app.state.commands.directory.issue_token("sam", by=OPS, command_id="t1").token_id,
                by=OPS,
                command_id="t2",
            ),
            id="token-revoked",
        ),
    ],
)
def test_a_copied_cookie_stops_working_after(app: FastAPI, change: Callable[[FastAPI], Any]) -> None:
    client = TestClient(app)
    sign_in(client)
    thief = copied(app, client)
    assert signed_in(thief) and signed_in(client)
    change(app)
    # Sam still holds a role, but every session begun before the change is over, the copy too.
    assert not signed_in(thief) and not signed_in(client)
    assert refusal_rules(app).count("NotSignedIn") == 2  # a page reached with an ended session is recorded


def test_an_ended_session_posting_a_form_is_refused_and_recorded(app: FastAPI) -> None:
    client = TestClient(app)
    sign_in(client)
    thief = copied(app, client)
    token = csrf(thief.get("/proposals/new").text)
    client.post("/sign-out", data={"csrf_token": csrf(client.get("/").text)})
    before = app.state.commands.cases.max_notification_id()
    form = {"csrf_token": token, "title": "Respite", "kind": "procurement", "value": "1000", "parties": ["PCC"]}
    answer = thief.post("/proposals/new", data=form, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/sign-in")
    (entry,) = RefusalLog(app.state.commands.cases).entries()
    assert (entry.rule, entry.actor, entry.command) == ("NotSignedIn", "unproven:sam", "start_proposal")
    assert app.state.commands.cases.max_notification_id() == before + 1  # the refusal, and no case


def test_forty_parallel_guesses_are_not_all_evaluated(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    real = domain.directory.password_matches

    def counting(password_hash: str, password: str) -> bool:
        checked.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(domain.directory, "password_matches", counting)

    def guess(n: int) -> int:
        return int(sign_in(TestClient(app), "sam", f"{WRONG} {n}").status_code)

    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(guess, range(40)))
    assert len(checked) <= SignInThrottle.LIMIT
    assert sorted(answers) == [401] * len(checked) + [429] * (40 - len(checked))
    assert refusal_rules(app).count("SignInThrottled") == 40 - len(checked)
    refused = sign_in(TestClient(app), "sam", PASSWORD)  # the right password now: still not checked
    assert refused.status_code == 429 and "Too many attempts to sign in" in refused.text
    assert 0 < int(refused.headers["retry-after"]) <= SignInThrottle.WINDOW
    assert len(checked) <= SignInThrottle.LIMIT


def test_two_web_apps_on_one_store_share_the_throttle(tmp_path: Path) -> None:
    first, second = make_app(tmp_path / "data"), make_app(tmp_path / "data")
    for n in range(SignInThrottle.LIMIT):
        assert sign_in(TestClient(first if n % 2 else second), "sam", WRONG).status_code == 401
    assert sign_in(TestClient(first), "sam", WRONG).status_code == 429
    assert sign_in(TestClient(second), "sam", PASSWORD).status_code == 429


@pytest.fixture
def few_per_address() -> Iterator[None]:
    """Three attempts per address, so the address's limit is reached in a few requests."""
    before = SignInThrottle.CLIENT_LIMIT
    SignInThrottle.CLIENT_LIMIT = 3
    yield
    SignInThrottle.CLIENT_LIMIT = before


def test_a_proxy_header_is_ignored_unless_configured(tmp_path: Path, few_per_address: None) -> None:
    app = make_app(tmp_path / "plain")
    for n in range(3):  # each guess claims another address: all come from the one peer
        assert sign_in(TestClient(app), f"guess{n}", WRONG, **{"X-Forwarded-For": f"203.0.113.{n}"}).status_code == 401
    answer = sign_in(TestClient(app), "sam", PASSWORD, **{"X-Forwarded-For": "198.51.100.9"})
    assert answer.status_code == 429


def test_a_configured_proxy_header_gives_the_client_address(tmp_path: Path, few_per_address: None) -> None:
    app = make_app(tmp_path / "proxied", trusted_proxy_header="X-Forwarded-For")
    for n in range(3):  # the last entry is the one the trusted proxy added; earlier ones are the client's word
        forwarded = {"X-Forwarded-For": f"10.9.9.{n}, 203.0.113.7"}
        assert sign_in(TestClient(app), f"guess{n}", WRONG, **forwarded).status_code == 401
    assert sign_in(TestClient(app), "sam", PASSWORD, **{"X-Forwarded-For": "203.0.113.7"}).status_code == 429
    assert sign_in(TestClient(app), "sam", PASSWORD, **{"X-Forwarded-For": "198.51.100.9"}).status_code == 303
