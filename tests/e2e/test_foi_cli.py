"""An FOI request on the running engine, through the CLI and the JSON API (MOU, FOI; FOIA s.1(3),
s.10): the party first approached records it, the clock stops for clarification and starts again,
the other parties agree the draft, the response goes out, and the register counts it on time."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from domain.foi_clock import UkWorkingDays
from tests.e2e.conftest import Engine, running_engine

PIA, CY, GIL, JO, AUDREY = (
    "party_rep:PCC:pia",
    "party_rep:CCC:cy",
    "party_rep:CPCCG:gil",
    "jcu_lead:jo",
    "auditor:audrey",
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with running_engine(tmp_path_factory.mktemp("foi")) as running:
        yield running


def today() -> date:
    return datetime.now(UTC).astimezone(ZoneInfo("Europe/London")).date()


def http(engine: Engine, who: str) -> httpx.Client:
    token = engine.token_of(who)
    return httpx.Client(base_url=f"{engine.web}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=60)


def register(engine: Engine) -> dict:
    return json.loads(engine.ok("foi", "register", "--json", who=AUDREY))


def test_an_foi_request_from_receipt_through_clarification_and_agreement_to_the_response_sent(engine: Engine) -> None:
    for who in (PIA, CY, GIL, JO, AUDREY):
        engine.token_of(who)
    uk = UkWorkingDays()

    # Only the party first approached records it; a request from the future is refused; nothing is written.
    refused = engine.refused("foi", "receive", "--subject", "Therapy spend", "--requester-ref", "R1", who=JO)
    assert "may not do this" in refused or "party first approached" in refused, refused
    refused = engine.refused(
        "foi", "receive", "--subject", "Therapy spend", "--requester-ref", "R1", "--received-on", "2999-01-01", who=PIA
    )
    assert refused == "concordat: --received-on 2999-01-01 is in the future; today is " + today().isoformat()
    assert register(engine)["requests"] == []

    out = engine.ok(
        "foi",
        "receive",
        "--subject",
        "Spend on speech and language therapy",
        "--requester-ref",
        "PCC-FOI-881",
        who=PIA,
    )
    ref, _, due = out.split()
    assert ref.startswith("FOI-") and due == uk.add_working_days(today(), 20).isoformat()

    # Clarification stops the clock; its arrival starts the twenty days again.
    engine.ok("foi", "seek-clarification", ref, "--note", "which financial years?", who=PIA)
    stopped = json.loads(engine.ok("show", ref, "--json", who=AUDREY))
    assert stopped["stage"] == "awaiting_clarification" and stopped["details"]["due"] is None
    refused = engine.refused("foi", "draft-response", ref, "--draft-ref", "D1", who=PIA)
    assert "the clock is stopped until the clarification arrives" in refused
    engine.ok("foi", "clarification-received", ref, who=PIA)

    # The draft goes to the other parties; the response is sent once both have agreed it.
    engine.ok("foi", "draft-response", ref, "--draft-ref", "PCC/FOI/881/d1", "--exemption", "s.43(2)", who=PIA)
    refused = engine.refused("foi", "send-response", ref, who=PIA)
    assert "takes no send-response" in refused, refused
    engine.ok("foi", "agree", ref, who=CY)
    engine.ok("foi", "agree", ref, who=GIL)
    sent = json.loads(engine.ok("foi", "send-response", ref, "--json", who=PIA))
    assert sent["status"] == "sent" and sent["details"]["on_time"] is True
    assert sent["details"]["exemptions"] == ["s.43(2)"]

    # The register: the request, and the share on time in the quarter it was received.
    report = register(engine)
    assert [r["reference"] for r in report["requests"]] == [ref]
    assert report["quarters"][0]["on_time"] == 1 and report["quarters"][0]["share_on_time"] == 1.0
    text = engine.ok("foi", "register", who=AUDREY)
    assert f"{ref}  PCC  received {today().isoformat()}" in text and "(100%)" in text

    # The same over HTTP: a request recorded once for one Idempotency-Key, the register as CSV.
    body = {"subject": "Board minutes 2026", "requester_ref": "PCC-FOI-882"}
    with http(engine, PIA) as client:
        first = client.post("/foi-requests", json=body, headers={"Idempotency-Key": "foi-882"})
        again = client.post("/foi-requests", json=body, headers={"Idempotency-Key": "foi-882"})
        bad = client.post("/foi-requests", json={**body, "received_on": "yesterday"})
    assert first.status_code == 201, first.text
    assert again.json()["reference"] == first.json()["reference"]
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    with http(engine, AUDREY) as client:
        rows = list(csv.DictReader(io.StringIO(client.get("/reports/foi", params={"format": "csv"}).text)))
    assert [r["reference"] for r in rows] == [ref, first.json()["reference"]]
    assert rows[0]["on_time"] == "True" and rows[0]["exemptions"] == "s.43(2)"
