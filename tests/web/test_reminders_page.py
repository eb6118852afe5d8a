"""A person's reminders on their "Your work" page and in the API (`GET /api/v1/me/reminders`): their
own, never another's, with whether each was sent. In-process on a real store and the outbox's own
runner; the sending itself is tested in tests/store/test_outbox.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from concordat import bootstrap
from concordat.settings import Settings
from concordat.web.app import create_app
from tests.domain.support import escalate, remind, start
from tests.people import ADMIN
from tests.people import directory as seeded_directory
from tests.web.test_pages import PASSWORD, sign_in


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, str, dict[str, str]]]:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings)
    cases = app.state.commands.cases
    people = seeded_directory(cases)
    addresses = {"jo": "jo@pcc.example.org", "dan": "", "pat": "pat@cambs.example.org", "sam": "sam@cambs.example.org"}
    roles = {"jo": "jcu_lead", "dan": "lead_director", "pat": "secretary:programme_board", "sam": "secretary:board"}
    for who, role in roles.items():
        people.add_user(who, [role], by=ADMIN, command_id=f"add-{who}", password=PASSWORD, email=addresses[who] or None)
    ref = start(cases).reference
    remind(cases, ref)
    escalate(cases, ref)
    tokens = {who: people.issue_token(who, by=ADMIN, command_id=f"token-{who}").token for who in roles}
    with bootstrap.outbox_runner(settings, cases) as runner:
        runner.wait(cases.max_notification_id(), timeout=30)
    with TestClient(app) as client:
        yield client, ref, tokens


def test_your_work_lists_your_own_reminders_and_escalations(site: tuple[TestClient, str, dict[str, str]]) -> None:
    client, ref, _ = site
    sign_in(client, "dan")
    page = client.get("/").text
    assert "Your reminders" in page
    assert f'href="/cases/{ref}">{ref}</a>' in page
    assert "Reminder: awaits jcu (as lead_director)" in page
    assert "not sent: no email address" in page  # dan has none
    assert "Escalated" not in page  # the escalation is pat's and jo's, not dan's


def test_the_starter_sees_both_and_someone_uninvolved_sees_none(site: tuple[TestClient, str, dict[str, str]]) -> None:
    client, ref, _ = site
    sign_in(client, "jo")
    page = client.get("/").text
    assert "Reminder: awaits jcu (you started it)" in page
    assert "Escalated to programme board from jcu (you started it)" in page
    assert "waiting to be sent" in page
    client.cookies.clear()
    sign_in(client, "sam")
    page = client.get("/").text
    assert "No reminders for you yet." in page and ref not in page.split("Your reminders")[1]


def test_the_api_answers_with_the_token_holders_reminders_only(site: tuple[TestClient, str, dict[str, str]]) -> None:
    client, ref, tokens = site
    answer = client.get("/api/v1/me/reminders", headers={"Authorization": f"Bearer {tokens['pat']}"})
    assert answer.status_code == 200
    (row,) = answer.json()
    assert (row["reference"], row["kind"], row["forum"], row["role"], row["status"]) == (
        ref,
        "escalation",
        "programme_board",
        "secretary:programme_board",
        "pending",
    )
    assert "email" not in row
    refused = client.get("/api/v1/me/reminders")
    assert refused.status_code == 401 and refused.headers["content-type"].startswith("application/problem+json")
