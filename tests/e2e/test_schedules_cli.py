"""`concordat schedules` and `concordat cycles` on the running engine: the worker created the policy's
schedules when it started; an administrator pauses and resumes one (recorded); anyone else is refused
in one line, the refusal recorded and the schedule left as it was."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from tests.e2e.conftest import Engine


def test_schedules_are_listed_paused_and_resumed_by_an_administrator_only(engine: Engine) -> None:
    rows = json.loads(engine.ok("schedules", "--json", who="auditor:audrey"))
    byname = {r["name"]: r for r in rows}
    assert byname["work_plan_review_ccc"]["created"] and len(byname["work_plan_review_ccc"]["next"]) == 3
    assert not byname["parties_quarterly_report"]["paused"]
    text = engine.ok("schedules", who="auditor:audrey")
    assert "parties_quarterly_report" in text and "active" in text

    line = engine.refused("schedules", "pause", "parties_quarterly_report", "--reason", "x", who="jcu_lead:jo")
    assert "admin" in line
    refusals = json.loads(engine.ok("audit", "refusals", "--json", who="auditor:audrey"))
    assert any(
        r["command"] == "schedules pause" and r["actor"] == "jcu_lead:jo" and r["rule"] == "NotAllowedError"
        for r in refusals
    ), refusals
    assert not {r["name"]: r for r in json.loads(engine.ok("schedules", "--json", who="auditor:audrey"))}[
        "parties_quarterly_report"
    ]["paused"]

    bad = engine.refused("schedules", "pause", "no_such", "--reason", "x", who="admin:root")
    assert "no schedule is named 'no_such'" in bad

    engine.ok("schedules", "pause", "parties_quarterly_report", "--reason", "Board in recess", who="admin:root")
    row = {r["name"]: r for r in json.loads(engine.ok("schedules", "--json", who="auditor:audrey"))}[
        "parties_quarterly_report"
    ]
    assert row["paused"] and "Board in recess" in row["note"]
    engine.ok("schedules", "resume", "parties_quarterly_report", "--reason", "Board back", who="admin:root")
    row = {r["name"]: r for r in json.loads(engine.ok("schedules", "--json", who="auditor:audrey"))}[
        "parties_quarterly_report"
    ]
    assert not row["paused"]
    assert engine.ok("cycles", "list", who="auditor:audrey").strip() == "no review or report cases yet"


def test_the_risk_register_from_the_command_line(engine: Engine) -> None:
    later = "2099-01-01"
    out = engine.ok(
        "risk", "add", "--title", "Provider capacity", "--owner", "jcu_lead", "--likelihood", "3",
        "--impact", "4", "--mitigation", "Second framework", "--review-on", later, who="jcu_lead:jo",
    )  # fmt: skip
    ref = out.split()[0]
    assert ref.startswith("RSK-") and "score 12" in out
    line = engine.refused("risk", "close", ref, "--reason", "x", who="party_rep:CCC:cy")
    assert "may not change the risk register" in line
    line = engine.refused("risk", "update", ref, "--likelihood", "9", who="jcu_lead:jo", code=2)
    assert "--likelihood" in line
    engine.ok("risk", "update", ref, "--likelihood", "5", "--note", "Lists grew", who="jcu_lead:jo")
    engine.ok("risk", "review", ref, "--note", "Held", "--next-review-on", later, who="lead_director:dan")
    (row,) = json.loads(engine.ok("risk", "register", "--json", who="auditor:audrey"))
    assert row["score"] == 20 and row["reviews"][0]["by"] == "lead_director:dan"
    engine.ok("risk", "close", ref, "--reason", "Contract let", who="jcu_lead:jo")
    assert json.loads(engine.ok("risk", "register", "--json", who="auditor:audrey")) == []
    history = engine.ok("history", ref, who="auditor:audrey")
    assert all(e in history for e in ("Added", "Updated", "Reviewed", "Closed")), history


def test_an_administrator_fires_a_schedule_by_hand_once_even_while_paused(engine: Engine) -> None:
    name = "parties_quarterly_report"
    line = engine.refused("schedules", "trigger", name, "--reason", "early", who="jcu_lead:jo")
    assert "admin" in line, line
    refusals = json.loads(engine.ok("audit", "refusals", "--json", who="auditor:audrey"))
    assert any(r["command"] == "schedules trigger" and r["actor"] == "jcu_lead:jo" for r in refusals), refusals

    bad = engine.refused("schedules", "trigger", "quarterly", who="admin:root")
    assert bad.startswith("concordat: no schedule is named 'quarterly'; schedules: work_plan_review_ccc, ") and (
        name in bad
    ), bad

    # Paused (the board in recess), the report is still wanted now: a firing by hand opens it.
    engine.ok("schedules", "pause", name, "--reason", "Board in recess", who="admin:root")
    fired = json.loads(
        engine.ok(
            "schedules", "trigger", name, "--reason", "Wanted early", "--command-id", "fire-1", "--json",
            who="admin:root",
        )
    )  # fmt: skip
    ref = fired["case"]
    assert ref.startswith("RPT-") and fired["paused"] and fired["history"][-1]["reason"] == "Wanted early"
    (case,) = [
        c for c in json.loads(engine.ok("cycles", "list", "--json", who="auditor:audrey")) if c["reference"] == ref
    ]
    assert case["details"]["owner"] == "jcu_lead" and set(case["details"]["figures"]) >= {"cases", "decisions"}

    # The same command again (a retry) fires nothing; a new one within the minute is refused.
    again = engine.ok(
        "schedules", "trigger", name, "--reason", "Wanted early", "--command-id", "fire-1", who="admin:root"
    )
    assert "fired by this command already" in again, again
    too_soon = engine.refused("schedules", "trigger", name, "--reason", "again", who="admin:root")
    assert "fired by hand" in too_soon and "would open the same report or review twice" in too_soon, too_soon
    reports = [
        c
        for c in json.loads(engine.ok("cycles", "list", "--json", who="auditor:audrey"))
        if c["details"]["schedule"] == name
    ]
    assert [c["reference"] for c in reports] == [ref]
    row = {r["name"]: r for r in json.loads(engine.ok("schedules", "--json", who="auditor:audrey"))}[name]
    assert row["paused"], "a firing by hand leaves the schedule paused"
    engine.ok("schedules", "resume", name, "--reason", "Board back", who="admin:root")

    # The report is the owner's to record done: the Lead Director is refused (not yet escalated), the
    # JCU lead records it over the API, and the case is closed.
    line = engine.refused("cycles", "done", ref, "--document-ref", "QR/1", who="lead_director:dan")
    assert "may not" in line and line.endswith("jcu_lead"), line
    token = engine.token_of("jcu_lead:jo")
    with httpx.Client(base_url=f"{engine.web}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
        done = api.post(f"/cases/{ref}/record-done", json={"document_ref": "BOARD/QR/1", "note": "Sent"})
    assert done.status_code == 200, done.text
    (case,) = [
        c for c in json.loads(engine.ok("cycles", "list", "--json", who="auditor:audrey")) if c["reference"] == ref
    ]
    assert case["status"] == "done" and case["details"]["done"]["document_ref"] == "BOARD/QR/1"


def test_a_firing_recorded_but_never_made_is_made_when_the_command_is_repeated(engine: Engine) -> None:
    # As when Temporal went away between the record and the firing: the trigger is on the record (with
    # its command id), and no firing followed.
    name = "annual_report"
    cases = bootstrap.open_cases(Settings(data_dir=Path(engine.env["CONCORDAT_DATA_DIR"])))
    recorded = cases.record_schedule_trigger(
        actor=Actor.parse("admin:root"), name=name, reason="Wanted early", command_id="lost-1"
    )
    assert recorded["fire"]
    before = [c for c in json.loads(engine.ok("cycles", "list", "--json", who="auditor:audrey"))]
    assert not [c for c in before if c["details"]["schedule"] == name]

    fired = engine.ok(
        "schedules", "trigger", name, "--reason", "Wanted early", "--command-id", "lost-1", who="admin:root"
    )
    assert fired.startswith(f"{name} fired: RPT-"), fired
    again = engine.ok(
        "schedules", "trigger", name, "--reason", "Wanted early", "--command-id", "lost-1", who="admin:root"
    )
    assert "fired by this command already" in again, again
    reports = [
        c
        for c in json.loads(engine.ok("cycles", "list", "--json", who="auditor:audrey"))
        if c["details"]["schedule"] == name
    ]
    assert len(reports) == 1, reports
