"""The public record without signing in (FastAPI's TestClient on a real SQLite store): the meetings
calendar and its iCalendar feed, an agenda, the forward plan, decision notices and the decisions
register, in HTML and as JSON, with items exempt from publication left out everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar

from concordat import bootstrap
from concordat.settings import Settings
from concordat.web.app import create_app
from domain.application import CaseService
from domain.forward_plans import ForwardPlanService
from domain.meetings import MeetingService
from tests.domain.support import DAN, PAT, PCC_SEC, SAM, T0, cid, decide, start
from tests.domain.test_meetings import PRESENT, Clock
from tests.policies import without_council_procedure_text

SECRET = "Closure of the Riverside unit"


def public_policy(tmp_path: Path) -> Path:
    """The board deciding at meetings and PCC's key decisions and call-in on (CCC's off)."""
    text = without_council_procedure_text()
    text = text.replace("decisions_at_meetings = false", "decisions_at_meetings = true")
    text = text.replace("[key_decisions]\nforums = []", '[key_decisions]\nforums = ["pcc_decision"]')
    text = text.replace("[call_in]\nforums = []", '[call_in]\nforums = ["pcc_decision"]')
    path = tmp_path / "governance.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = Settings(data_dir=tmp_path / "data", policy_file=public_policy(tmp_path))
    policy = bootstrap.load_policy(settings)
    bootstrap.open_cases(settings, policy).close()
    clock = Clock(T0)
    app = CaseService(bootstrap.store_env(settings), policy=policy, clock=clock)
    meetings, plan = MeetingService(app), ForwardPlanService(app)
    shown = start(app, title="Community paediatrics pathway").reference
    hidden = start(app, title=SECRET).reference
    for ref in (shown, hidden):
        decide(app, ref, DAN, "jcu", "refer")
    mtg = meetings.schedule(actor=SAM, forum="board", command_id=cid())["reference"]
    meetings.publish_agenda(mtg, actor=SAM, exempt=[hidden], command_id=cid())
    clock.at = datetime(2027, 1, 12, 10, tzinfo=UTC)
    meetings.open(mtg, actor=SAM, chair="cllr_ada", attendance=PRESENT, command_id=cid())
    decide(app, shown, SAM, "board", "recommend", meeting=mtg)
    decide(app, hidden, SAM, "board", "recommend", meeting=mtg)
    decide(app, shown, PAT, "programme_board", "recommend")
    # A PCC-only case, under the key-decision threshold, decided by PCC: its notice is published.
    council = start(
        app,
        title="Speech therapy for under-fives",
        kind="service_commissioning",
        value_pence=30_000_000,
        parties=["PCC"],
    ).reference
    decide(app, council, DAN, "jcu", "refer")
    decide(app, council, SAM, "board", "recommend", written_procedure=True)
    decide(app, council, PAT, "programme_board", "recommend")
    plan.add(actor=PCC_SEC, case=council, forum="pcc_decision", significant_effect=False, command_id=cid())
    decide(app, council, PCC_SEC, "pcc_decision", "approve")
    app.close()
    with TestClient(create_app(settings)) as client:
        yield client, {"shown": shown, "hidden": hidden, "meeting": mtg, "council": council}


def test_the_public_pages_need_no_sign_in_and_leave_out_exempt_items(site: tuple[TestClient, dict[str, str]]) -> None:
    client, refs = site
    for path in [
        "/public",
        "/public/meetings",
        f"/public/meetings/{refs['meeting']}",
        "/public/forward-plan",
        "/public/decisions",
    ]:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 200, path
        assert SECRET not in answer.text and refs["hidden"] not in answer.text, path
    agenda = client.get(f"/public/meetings/{refs['meeting']}").text
    assert refs["shown"] in agenda
    decisions = client.get("/public/decisions").text
    assert refs["council"] in decisions


def test_the_same_data_as_json(site: tuple[TestClient, dict[str, str]]) -> None:
    client, refs = site
    meetings = client.get("/api/v1/public/meetings").json()
    assert [(m["reference"], [i["case"] for i in m["agenda"]]) for m in meetings] == [
        (refs["meeting"], [refs["shown"]])
    ]
    assert "attendance" not in meetings[0] and "interests" not in meetings[0]
    plan = client.get("/api/v1/public/forward-plan").json()
    assert [e["case"] for e in plan] == [refs["council"]]
    decisions = client.get("/api/v1/public/decisions").json()
    assert [(n["case"], n["outcome"]) for n in decisions["notices"]] == [(refs["council"], "approve")]
    register = {(r["case"], r["forum"], r["meeting"], r["written_procedure"]) for r in decisions["register"]}
    assert register == {
        (refs["shown"], "board", refs["meeting"], False),
        (refs["council"], "board", "", True),
        (refs["council"], "pcc_decision", "", False),
    }
    assert client.get("/api/v1/public/meetings/MTG-2099-0001").status_code == 404


def test_the_meetings_calendar_is_an_icalendar_feed(site: tuple[TestClient, dict[str, str]]) -> None:
    client, refs = site
    answer = client.get("/public/meetings.ics")
    assert answer.headers["content-type"].startswith("text/calendar")
    events = Calendar.from_ical(answer.content).walk("VEVENT")
    assert [(str(e["uid"]), e["dtstart"].dt.isoformat()) for e in events] == [
        (f"{refs['meeting']}@concordat", "2027-01-12")
    ]
    assert refs["hidden"] not in answer.text
