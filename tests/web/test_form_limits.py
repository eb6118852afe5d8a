"""The pages check a form's fields by the same rules as the API and the CLI (domain/values.py): a
title with a control character, an amount in Arabic-Indic digits or beyond the policy's maximum is
shown by its field, what was typed is kept, and nothing is written."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.web.test_pages import csrf, sign_in, site  # noqa: F401 - the pages' own fixture

START = {"title": "Respite care", "kind": "procurement", "value": "1000", "parties": ["PCC"]}


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("title", "Respite\x07care", "title: contains a control character (U+0007)"),
        ("title", "\u200b\u200b", "title: has no visible text"),
        ("title", "x" * 301, "title: is 301 characters long; at most 300"),
        ("value", "١٢٣", "value: not an amount in pounds"),
        ("value", "1" + "0" * 30, "value: not an amount in pounds up to the policy&#39;s maximum"),
    ],
)
def test_a_start_form_refuses_what_the_api_refuses_by_the_field(
    site: tuple[TestClient, str],  # noqa: F811
    field: str,
    value: str,
    shown: str,
) -> None:
    client, _ = site
    cases = client.app.state.commands.cases  # type: ignore[attr-defined]
    sign_in(client, "jo")
    before = cases.max_notification_id()
    token = csrf(client.get("/proposals/new").text)
    answer = client.post("/proposals/new", data={"csrf_token": token, **START, field: value})
    assert answer.status_code == 422, answer.text[:500]
    assert shown in answer.text, answer.text[answer.text.find("govuk-error-summary") :][:800]
    assert f'id="{field}-error"' in answer.text
    assert cases.max_notification_id() == before
