"""What every answer of the web app carries (a policy with no inline script, no framing, no sniffing,
no referrer to other sites, no caching of personal pages, HSTS behind HTTPS); the API docs page from
vendored assets; /metrics only with a token; the auditor's page naming quarantined events."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from concordat import bootstrap
from concordat.settings import Settings
from concordat.web.app import create_app
from domain.actor import Actor
from domain.funding import Fund
from tests.domain.support import open_agreed_fund
from tests.people import ADMIN as OPS
from tests.people import directory as seeded_directory
from tests.web.test_pages import PASSWORD, sign_in

LEAD = Actor.parse("jcu_lead:jo")
TOKEN = "a-metrics-token-for-the-test"


def client_for(settings: Settings, *, secure_cookies: bool = False) -> TestClient:
    app = create_app(settings, secure_cookies=secure_cookies)
    seeded_directory(app.state.commands.cases).add_user(
        "audrey", ["auditor"], by=OPS, command_id="add-audrey", password=PASSWORD
    )
    return TestClient(app, base_url="https://testserver" if secure_cookies else "http://testserver")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with client_for(Settings(data_dir=tmp_path / "data")) as c:
        yield c


def directives(policy: str) -> dict[str, str]:
    return {part.split()[0]: " ".join(part.split()[1:]) for part in policy.split(";") if part.strip()}


def test_every_page_forbids_inline_script_framing_sniffing_and_caching(client: TestClient) -> None:
    assert sign_in(client, "audrey").status_code == 303
    for path in ["/sign-in", "/", "/cases", "/audit", "/api/v1/docs", "/no/such/page"]:
        answer = client.get(path)
        policy = directives(answer.headers["content-security-policy"])
        assert policy["script-src"] == "'self'" and "unsafe-inline" not in answer.headers["content-security-policy"]
        assert policy["frame-ancestors"] == "'none'" and policy["default-src"] == "'none'"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert answer.headers["cache-control"] == "no-store", path
        assert "strict-transport-security" not in answer.headers
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", answer.text), f"an inline script on {path}"
    static = client.get("/static/app.css")
    assert static.status_code == 200 and "cache-control" not in static.headers
    assert static.headers["x-content-type-options"] == "nosniff"


def test_a_server_error_carries_the_same_headers(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data"), secure_cookies=True)

    @app.get("/api/v1/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("a fault")

    @app.get("/boom", include_in_schema=False)
    def boom_page() -> None:
        raise RuntimeError("a fault")

    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        for path, accept in (("/api/v1/boom", "application/json"), ("/boom", "text/html")):
            answer = client.get(path, headers={"Accept": accept})
            assert answer.status_code == 500, answer.text
            assert "a fault" not in answer.text and "Traceback" not in answer.text
            policy = directives(answer.headers["content-security-policy"])
            assert policy["frame-ancestors"] == "'none'" and policy["script-src"] == "'self'"
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["referrer-policy"] == "same-origin"
            assert answer.headers["cache-control"] == "no-store"
            assert answer.headers["strict-transport-security"].startswith("max-age=")


def test_hsts_is_sent_only_behind_https(tmp_path: Path) -> None:
    with client_for(Settings(data_dir=tmp_path / "data"), secure_cookies=True) as secure:
        assert secure.get("/sign-in").headers["strict-transport-security"].startswith("max-age=31536000")


def test_the_api_docs_load_swagger_ui_from_this_site(client: TestClient) -> None:
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/static/") for s in sources), sources
    assert "cdn" not in page.text
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200 and len(asset.content) > 100, source
    assert "SwaggerUIBundle" in client.get("/static/api-docs.js").text
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_metrics_are_not_served_without_a_token_setting(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics/").status_code == 404


def test_metrics_need_the_token_as_a_bearer_token(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", metrics_token=SecretStr(TOKEN))
    with client_for(settings) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            refused = c.get("/metrics/", headers=headers)
            assert refused.status_code == 401 and "concordat_" not in refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
        served = c.get("/metrics/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert served.status_code == 200 and "concordat_projection_lag_events" in served.text


def test_the_audit_page_names_quarantined_events(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with client_for(settings) as c:
        assert "none is quarantined" in (sign_in(c, "audrey") and c.get("/audit")).text
        cases = c.app.state.commands.cases
        open_agreed_fund(cases, "Better Care", balance=1)
        fund = cases.repository.get(Fund.create_id("Better Care"))
        fund.trigger_event(
            Fund.ChangeApplied,
            reference="<b>FUN</b>",
            changes={"PCC": 10**23},
            total_pence=10**23,
            balance_after=10**23,
            public_health=True,
            financial_year=2026,
            quarter=1,
            command_id=str(uuid.uuid4()),
            at=datetime.now(UTC),
        )
        cases.save(fund)
        for runner in bootstrap.projection_runners(settings):
            with runner:
                runner.wait(cases.max_notification_id(), timeout=10)
        page = c.get("/audit").text
        assert "1 event could not be shown" in page and "concordat projections retry" in page
        assert "public health" in page and "ChangeApplied" in page and "OverflowError" in page
