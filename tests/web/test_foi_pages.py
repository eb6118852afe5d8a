"""An FOI request's page and the FOI register in-process, on a real store: the party first
approached is offered the clock's steps and the draft, another party its agreement, and the register
lists the request as a page and as CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from fastapi.testclient import TestClient

from domain.actor import Actor
from tests.people import ADMIN as OPS
from tests.people import directory as seeded_directory
from tests.web.test_pages import PASSWORD, csrf, sign_in, site  # noqa: F401 - `site` is the fixture


def test_an_foi_page_offers_each_party_its_step_and_the_register_lists_the_request(
    site: tuple[TestClient, str],  # noqa: F811
) -> None:
    client, _ = site
    cases = client.app.state.commands.cases  # type: ignore[attr-defined]
    people = seeded_directory(cases)
    for who, roles in {"pia": ["party_rep:PCC"], "cy": ["party_rep:CCC"]}.items():
        people.add_user(who, roles, by=OPS, command_id=f"add-{who}", password=PASSWORD)
    pia = Actor.parse("party_rep:PCC:pia")
    received = date.today() - timedelta(days=3)
    ref = cases.receive_foi(
        actor=pia,
        fields={"subject": "Therapy waiting times", "requester_ref": "PCC-FOI-9", "received_on": received},
        command_id="f1",
    ).reference

    sign_in(client, "pia")
    menu = client.get("/start").text
    assert 'href="/start/foi"' in menu and "Record a Freedom of Information request" in menu
    page = client.get(f"/cases/{ref}").text
    for command in ("seek-clarification", "fees-notice", "extend-public-interest", "draft-response"):
        assert f'action="/cases/{ref}/act/{command}"' in page, command
    assert 'name="exemptions"' in page
    client.post("/sign-out", data={"csrf_token": csrf(page)})

    cases.act(
        ref, actor=pia, action="draft_response", fields={"draft_ref": "D1", "exemptions": ["s.40(2)"]}, command_id="f2"
    )
    sign_in(client, "cy")
    page = client.get(f"/cases/{ref}").text
    assert f'action="/cases/{ref}/act/agree"' in page and f'action="/cases/{ref}/act/draft-response"' not in page

    register = client.get("/reports/foi").text
    assert f'href="/cases/{ref}"' in register and "Therapy waiting times" in register
    rows = list(csv.DictReader(io.StringIO(client.get("/reports/foi?format=csv").text)))
    assert rows[0]["reference"] == ref and rows[0]["received_on"] == received.isoformat()
