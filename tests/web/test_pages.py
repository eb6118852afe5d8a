"""The web pages in-process (FastAPI's TestClient) on a real store: sign-in, CSRF, what each person
sees, and form errors that keep what was typed. Commands that need Temporal are in tests/browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from concordat import bootstrap
from concordat.settings import Settings
from concordat.web.app import SESSION_COOKIE, create_app
from domain.actor import Actor
from tests.domain.support import open_agreed_fund
from tests.people import ADMIN as OPS
from tests.people import directory as seeded_directory

PASSWORD = "a long enough password"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings)
    people = seeded_directory(app.state.commands.cases)
    for who, roles in {"sam": ["secretary:board"], "audrey": ["auditor"], "jo": ["jcu_lead"]}.items():
        people.add_user(who, roles, by=OPS, command_id=f"add-{who}", password=PASSWORD)
    cases = app.state.commands.cases
    ref = cases.start_proposal(
        actor=Actor.parse("jcu_lead:jo"),
        title="Speech and language therapy",
        kind="pathway_change",
        value_pence=40_000_000,
        parties=["PCC", "CPCCG"],
        public_health=False,
        command_id="s1",
    ).reference
    cases.decide(
        ref, actor=Actor.parse("lead_director:dan"), stage="jcu", outcome="refer", minutes_ref="JCU/11", command_id="d1"
    )
    newest = cases.max_notification_id()
    for runner in bootstrap.projection_runners(settings):  # the real runners, until the views are current
        with runner:
            runner.wait(newest, timeout=10)
    with TestClient(app) as client:
        yield client, ref


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the form"
    return found.group(1)


def sign_in(client: TestClient, who: str, password: str = PASSWORD) -> object:
    token = csrf(client.get("/sign-in").text)
    return client.post(
        "/sign-in",
        data={"csrf_token": token, "user_id": who, "password": password, "next": "/"},
        follow_redirects=False,
    )


def test_pages_need_a_signed_in_person(site: tuple[TestClient, str]) -> None:
    client, ref = site
    for path in ["/", "/cases", f"/cases/{ref}", "/proposals/new", "/decisions", "/audit"]:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/sign-in?next="), path


def test_sign_in_sets_a_signed_httponly_strict_cookie_and_sign_out_ends_it(site: tuple[TestClient, str]) -> None:
    client, _ = site
    answer = sign_in(client, "sam")
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert (
        cookie.startswith(f"{SESSION_COOKIE}=") and "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    )
    assert client.get("/").status_code == 200
    token = csrf(client.get("/").text)
    client.post("/sign-out", data={"csrf_token": token})
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_wrong_password_or_id_gets_the_same_clear_page(site: tuple[TestClient, str]) -> None:
    client, _ = site
    wrong_password, wrong_id = sign_in(client, "sam", "not the password"), sign_in(client, "nobody")
    for answer in (wrong_password, wrong_id):
        assert answer.status_code == 401
        assert "The user id or password is not right" in answer.text and "There is a problem" in answer.text
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", wrong_password.text) == strip.sub("", wrong_id.text)  # no hint which half was wrong
    assert client.cookies.get(SESSION_COOKIE) is None or client.get("/", follow_redirects=False).status_code == 303


def test_a_form_without_the_sessions_csrf_token_is_refused(site: tuple[TestClient, str]) -> None:
    client, ref = site
    sign_in(client, "sam")
    refused = client.post(
        f"/cases/{ref}/decide",
        data={"csrf_token": "forged", "stage": "board", "outcome": "recommend", "minutes_ref": "MIN-2026-01"},
    )
    assert refused.status_code == 403 and "This form has expired" in refused.text
    refused = client.post("/proposals/new", data={"title": "x"})
    assert refused.status_code == 403
    history = client.get(f"/cases/{ref}").text
    assert history.count("app-timeline__item") == 2  # nothing was recorded


def test_the_board_secretary_sees_the_decision_form_and_the_auditor_does_not(site: tuple[TestClient, str]) -> None:
    client, ref = site
    sign_in(client, "sam")
    page = client.get(f"/cases/{ref}").text
    assert "Record the board decision" in page
    assert all(f'value="{o}"' in page for o in ("recommend", "reject", "defer"))
    assert "Minutes: JCU/11" in page and "dan (lead_director)" in page  # the timeline: who, role, minutes
    assert ref in client.get("/").text  # waiting on the board: on Sam's dashboard
    client.cookies.clear()
    sign_in(client, "audrey")
    page = client.get(f"/cases/{ref}").text
    assert "Record the board decision" not in page and '<form method="post" action="/cases/' not in page
    assert ref not in client.get("/").text
    assert "Intact" in client.get(f"/audit?reference={ref}").text
    export = client.get(f"/audit/export?reference={ref}&format=csv")
    assert export.headers["content-type"].startswith("text/csv") and export.text.startswith("reference,originator_id")


def test_a_form_error_is_shown_by_the_field_and_in_the_summary_keeping_what_was_typed(
    site: tuple[TestClient, str],
) -> None:
    client, ref = site
    sign_in(client, "sam")
    token = csrf(client.get(f"/cases/{ref}").text)
    answer = client.post(
        f"/cases/{ref}/decide",
        data={
            "csrf_token": token,
            "stage": "board",
            "role": "secretary:board",
            "minutes_ref": "BOARD/2026/12",
            "note": "kept",
        },
    )
    assert answer.status_code == 422
    assert 'class="govuk-error-summary"' in answer.text and '<a href="#outcome">Choose an outcome</a>' in answer.text
    assert 'id="outcome-error"' in answer.text
    assert 'value="BOARD/2026/12"' in answer.text and ">kept</textarea>" in answer.text

    client.cookies.clear()
    sign_in(client, "jo")
    token = csrf(client.get("/proposals/new").text)
    answer = client.post(
        "/proposals/new",
        data={"csrf_token": token, "title": "Respite care", "kind": "procurement", "value": "lots", "parties": ["PCC"]},
    )
    assert answer.status_code == 422
    assert "value: not an amount in pounds" in answer.text
    assert 'value="Respite care"' in answer.text and 'value="procurement" selected' in answer.text
    assert 'value="PCC" checked' in answer.text


def test_the_start_menu_offers_the_kinds_the_persons_roles_may_start(site: tuple[TestClient, str]) -> None:
    client, _ = site
    sign_in(client, "jo")
    menu = client.get("/start").text
    assert all(f'href="/start/{k}"' in menu for k in ("proposal", "variation", "funding"))
    assert 'href="/start/dispute"' not in menu and 'href="/start/termination"' not in menu
    token = csrf(client.get("/start/variation").text)
    answer = client.post(
        "/start/variation", data={"csrf_token": token, "provider": "Hinchingbrooke", "value_change": "-40000"}
    )
    assert answer.status_code == 422
    assert "Enter the contract reference" in answer.text and "Choose the parties to the contract" in answer.text
    assert 'value="Hinchingbrooke"' in answer.text and 'value="-40000"' in answer.text
    client.cookies.clear()
    sign_in(client, "audrey")
    assert "Your roles do not start cases" in client.get("/start").text


def test_the_case_page_shows_the_route_done_awaited_and_to_come(site: tuple[TestClient, str]) -> None:
    client, ref = site
    sign_in(client, "audrey")
    html = client.get(f"/cases/{ref}").text
    route = html[html.index('id="route"') : html.index("</ul>", html.index('id="route"'))]
    steps = re.findall(
        r'<div class="govuk-body govuk-!-margin-bottom-0">([^<]+)</div>.*?task-list__status">(.*?)</div>', route, re.S
    )
    assert [(name, re.sub(r"<[^>]+>", "", status)) for name, status in steps] == [
        ("Joint Commissioning Unit", "Done"),
        ("Joint Commissioning Board", "Awaiting decision"),
        ("Programme Board", "To come"),
        ("Peterborough City Council", "To come"),
        ("CCG Clinical and Management Executive Team", "To come"),
        ("CCG Governing Body", "To come"),
    ]  # CCC is no party: its council's body is not on this case's route


def test_a_party_representative_is_offered_the_agreement_form(site: tuple[TestClient, str]) -> None:
    client, _ = site
    people = seeded_directory(client.app.state.commands.cases)  # type: ignore[attr-defined]
    people.add_user("pat", ["party_rep:PCC"], by=OPS, command_id="add-pat", password=PASSWORD)
    sign_in(client, "pat")
    menu = client.get("/start").text
    assert 'href="/start/agreement"' in menu and "Propose termination by mutual consent" in menu
    form = client.get("/start/agreement").text
    assert all(f'name="{n}"' in form for n in ("leaving", "effective", "agreement_ref", "note"))
    answer = client.post(
        "/start/agreement",
        data={"csrf_token": csrf(form), "leaving": "PCC", "effective": "next spring", "agreement_ref": "A/1"},
    )
    assert answer.status_code == 422
    assert "effective &#39;next spring&#39; is not a date YYYY-MM-DD" in answer.text
    assert 'value="PCC"' in answer.text and 'value="A/1"' in answer.text


def test_a_dispute_page_shows_objections_and_offers_each_party_its_objection_and_the_mediator_withdrawal(
    site: tuple[TestClient, str],
) -> None:
    client, _ = site
    cases = client.app.state.commands.cases  # type: ignore[attr-defined]
    people = seeded_directory(cases)
    for who, roles in {"cy": ["party_rep:CCC"], "mo": ["mediator"], "meg": ["mediator"]}.items():
        people.add_user(who, roles, by=OPS, command_id=f"add-{who}", password=PASSWORD)
    pat, cy, dan = (Actor.parse(a) for a in ("party_rep:PCC:pat", "party_rep:CCC:cy", "lead_director:dan"))
    ref = cases.raise_dispute(
        actor=pat, fields={"against": ["CCC"], "subject": "Overspend share"}, command_id="r1"
    ).reference

    def act(actor: Actor, action: str, n: str, **fields: object) -> None:
        cases.act(ref, actor=actor, action=action, fields=fields, command_id=n)

    act(dan, "resolve", "r2", outcome="mediation")
    act(dan, "nominate", "r3", mediator="meg")
    act(cy, "object", "r4", reason="Meg advised PCC in 2025")
    act(dan, "nominate", "r5", mediator="mo")
    sign_in(client, "cy")
    page = client.get(f"/cases/{ref}").text
    assert "CCC objected to meg on" in page and "Meg advised PCC in 2025" in page
    assert f'action="/cases/{ref}/act/object"' in page and 'name="reason"' in page
    client.post("/sign-out", data={"csrf_token": csrf(page)})
    act(pat, "agree", "r6")
    act(cy, "agree", "r7")
    act(dan, "appoint", "r8", letter_ref="JCU/MED/1")
    sign_in(client, "mo")
    page = client.get(f"/cases/{ref}").text
    assert "Withdraw as this dispute's mediator" in page and f'action="/cases/{ref}/withdraw"' in page


def test_the_ring_fenced_report_is_a_page_and_a_csv_in_pounds(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings)
    people = seeded_directory(app.state.commands.cases)
    people.add_user("audrey", ["auditor"], by=OPS, command_id="add-audrey", password=PASSWORD)
    cases = app.state.commands.cases
    at = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # Q3 of 2026-27
    open_agreed_fund(cases, "PH pooled", ring_fenced=True, contributions={"PCC": 6_000_000, "CCC": 4_000_000}, at=at)
    newest = cases.max_notification_id()
    for runner in bootstrap.projection_runners(settings):
        with runner:
            runner.wait(newest, timeout=10)
    with TestClient(app) as client:
        assert client.get("/reports/ring-fenced", follow_redirects=False).status_code == 303  # signed in only
        sign_in(client, "audrey")
        page = client.get("/reports/ring-fenced", params={"year": "2026"})
        assert page.status_code == 200 and "Ring-fenced public-health money, 2026-27" in page.text
        assert "Q3 (October–December 2026)" in page.text and "£60,000.00" in page.text and "6000000" not in page.text
        csv = client.get("/reports/ring-fenced", params={"year": "2026", "format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv")
        assert "2026-27,Q3,October–December 2026,PCC,60000.00,0.00,60000.00" in csv.text
        assert client.get("/reports/ring-fenced", params={"year": "soon"}).status_code == 422


def test_the_start_form_for_a_fund_asks_for_each_partys_contribution_and_whether_it_is_ring_fenced(
    site: tuple[TestClient, str],
) -> None:
    client, _ = site
    sign_in(client, "jo")
    form = client.get("/start/fund").text
    assert 'name="change-PCC"' in form and 'name="ring_fenced"' in form and '<option value="pooled"' in form
    answer = client.post(
        "/start/fund", data={"csrf_token": csrf(form), "name": "PH", "type": "pooled", "ring_fenced": "yes"}
    )
    assert answer.status_code == 422 and "Give at least one party&#39;s contribution in pounds" in answer.text
