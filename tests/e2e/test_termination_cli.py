"""Termination on the running engine, through the CLI and the JSON API: a notice recorded a few
working days late, a backdated one refused, an agreement every party signs, and then a party that has
left refused as a party (MOU, Termination; governance.md). Its own engine: PCC leaves it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from domain.calendar import WorkingDayCalendar
from domain.policy import Policy
from tests.e2e.conftest import Engine, running_engine

PAT, CY, GIL, DAN, JO = (
    "party_rep:PCC:pat",
    "party_rep:CCC:cy",
    "party_rep:CPCCG:gil",
    "lead_director:dan",
    "jcu_lead:jo",
)
AUDREY = "auditor:audrey"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with running_engine(tmp_path_factory.mktemp("termination")) as running:
        yield running


def today() -> date:
    return datetime.now(UTC).astimezone(ZoneInfo("Europe/London")).date()


def http(engine: Engine, who: str) -> httpx.Client:
    token = engine.token_of(who)
    return httpx.Client(base_url=f"{engine.web}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=60)


def events(engine: Engine) -> int:
    with http(engine, AUDREY) as client:
        lines = client.get("/audit/export").text.splitlines()
    return len([line for line in lines if line.strip() and json.loads(line)["event"] != "Refused"])


def test_notices_agreements_and_former_parties_on_the_running_engine(engine: Engine) -> None:
    for who in (PAT, CY, GIL, DAN, JO, AUDREY):
        engine.token_of(who)  # people are added first (their events are not the commands' own)
    calendar = WorkingDayCalendar(Policy.load())
    late = calendar.add_working_days(today(), -5)
    too_late = calendar.add_working_days(today(), -11)

    # A notice served five working days ago may be recorded now; one served eleven ago may not.
    before = events(engine)
    refused = engine.refused(
        "termination", "serve", "--letter-ref", "CCC/LEGAL/1", "--served-on", str(too_late), who=CY
    )
    assert refused.startswith(f"concordat: --served-on {too_late} is too long ago"), refused
    refused = engine.refused("termination", "serve", "--letter-ref", "CCC/LEGAL/1", "--served-on", "1900-01-01", who=CY)
    assert "before the partnership began on 2015-06-01" in refused
    assert events(engine) == before
    notice = engine.ok("termination", "serve", "--letter-ref", "CCC/LEGAL/1", "--served-on", str(late), who=CY)
    assert notice.startswith("TRM-")
    trm = notice.split()[0]
    refused = engine.refused("termination", "withdraw", trm, who=PAT)
    assert "allowed: party_rep:CCC" in refused

    # An open dispute in which PCC is awaited, before PCC leaves.
    dsp = engine.ok("dispute", "raise", "--against", "PCC,CPCCG", "--subject", "Overspend", who=CY).strip()
    engine.ok("dispute", "resolve", dsp, "--outcome", "mediation", who=DAN)
    engine.token_of("mediator:meg")  # the mediator is a person of the directory with the mediator role
    engine.ok("dispute", "nominate", dsp, "--mediator", "meg", who=DAN)

    # PCC leaves today by everyone's agreement: no notice, no notice period.
    proposed = engine.ok(
        "termination",
        "propose",
        "--leaving",
        "PCC",
        "--effective",
        str(today()),
        "--agreement-ref",
        "MOU/PCC-EXIT",
        who=CY,
    )
    agr = proposed.split()[0]
    assert proposed.strip() == f"{agr} PCC leaves the partnership on {today()}: signed by CCC; awaiting PCC, CPCCG"
    engine.ok("termination", "agree", agr, who=PAT)
    assert f"{agr} took_effect" in engine.ok("termination", "agree", agr, who=GIL)
    rows = json.loads(engine.ok("list", "--json", who=AUDREY))
    row = next(r for r in rows if r["reference"] == agr)
    assert (row["case_kind"], row["status"]) == ("agreement", "took_effect")
    partnership = engine.ok("partnership", who=AUDREY)
    assert "members   CCC, CPCCG" in partnership and "left      PCC on" in partnership

    # PCC is no party to new cases, and takes no part in the open dispute: one line, nothing written.
    left = f"PCC left the partnership on {today()} ({agr})"
    before = events(engine)
    line = engine.refused(
        "proposal",
        "start",
        "--title",
        "Speech therapy",
        "--kind",
        "pathway_change",
        "--value",
        "400000",
        "--parties",
        "PCC,CCC",
        who=JO,
    )
    assert line.startswith("concordat: --parties: " + left), line
    assert left in engine.refused("dispute", "agree", dsp, who=PAT)
    assert left in engine.refused("termination", "serve", "--letter-ref", "PCC/2", who=PAT)
    with http(engine, PAT) as pat:
        answer = pat.post(f"/cases/{dsp}/agree", json={})
        assert answer.status_code == 403 and left in answer.json()["detail"], answer.text
        answer = pat.post("/disputes", json={"against": "CCC", "subject": "x"})
        assert answer.status_code == 403 and left in answer.json()["detail"], answer.text
    with http(engine, JO) as jo:
        body = {"title": "Speech therapy", "kind": "pathway_change", "value": "400000", "parties": ["PCC", "CCC"]}
        answer = jo.post("/proposals", json=body)
        assert answer.status_code == 403 and left in answer.json()["detail"], answer.text
    assert events(engine) == before
    with http(engine, AUDREY) as audrey:
        refusals = audrey.get("/audit/refusals", params={"limit": 1000}).json()
    assert sum(1 for r in refusals if left in r["reason"]) >= 6, refusals[-3:]
    # The dispute goes on between the members.
    engine.ok("dispute", "agree", dsp, who=CY)
    assert "appoint" in engine.ok("dispute", "agree", dsp, who=GIL)
