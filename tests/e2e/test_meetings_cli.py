"""Meetings, the forward plan and call-in at the command line, against `concordat up` (real Temporal,
a real store) with a policy that turns them on: the board's next meeting scheduled from the policy
and its agenda published; a board decision refused without a meeting and at one not in session, and
taken by written procedure; PCC's key decision refused before its 28 clear days, then taken under
special urgency; its decision held for the call-in period and called in by scrutiny; the decision
notice on the public page with nobody signed in. Refusals are one line, exit 1, and on the log."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Engine, _env, free_port, running_engine
from tests.web.test_public_pages import public_policy

JO, DAN, SAM, CAT = "jcu_lead:jo", "lead_director:dan", "secretary:board:sam", "secretary:cmet:cat"
PAT, PIA, SUE = "secretary:programme_board:pat", "secretary:pcc_decision:pia", "secretary:pcc_scrutiny:sue"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    tmp = tmp_path_factory.mktemp("meetings")
    env = _env(tmp, free_port())
    env["CONCORDAT_POLICY_FILE"] = str(public_policy(Path(tmp)))
    with running_engine(tmp, env) as running:
        yield running


def test_meetings_key_decisions_and_call_in_from_the_command_line(engine: Engine) -> None:
    ref = engine.ok(
        "proposal",
        "start",
        "--title",
        "Community nursing for children",
        "--kind",
        "service_commissioning",
        "--value",
        "600000",
        "--parties",
        "PCC",
        who=JO,
    ).strip()
    engine.ok("decide", ref, "--stage", "jcu", "--outcome", "refer", who=DAN)

    meeting = json.loads(engine.ok("meeting", "schedule", "--forum", "board", "--json", who=SAM))
    mtg = meeting["reference"]
    assert meeting["called"] is False  # the policy's next date for the board
    agenda = json.loads(engine.ok("meeting", "agenda", mtg, "--json", who=SAM))["agenda"]
    assert [(i["item"], i["case"]) for i in agenda] == [(1, ref)]
    assert "secretary:board does" in engine.refused("meeting", "schedule", "--forum", "board", who=CAT)

    minutes = ("--minutes-ref", "BRD-WP-1")
    line = engine.refused("decide", ref, "--stage", "board", "--outcome", "recommend", *minutes, who=SAM)
    assert line.startswith("concordat: --meeting: a decision of board is taken at one of its meetings")
    line = engine.refused(
        "decide", ref, "--stage", "board", "--outcome", "recommend", *minutes, "--meeting", mtg, who=SAM
    )
    assert "is not in session" in line
    engine.ok("decide", ref, "--stage", "board", "--outcome", "recommend", *minutes, "--written-procedure", who=SAM)
    engine.ok("decide", ref, "--stage", "programme_board", "--outcome", "recommend", "--minutes-ref", "PB-1", who=PAT)

    entry = json.loads(engine.ok("forward-plan", "add", ref, "--forum", "pcc_decision", "--json", who=PIA))
    assert entry["key"] is True
    pcc = ("decide", ref, "--stage", "pcc_decision", "--outcome", "approve", "--minutes-ref", "CAB-1")
    assert "28 clear days" in engine.refused(*pcc, who=PIA)
    engine.ok(
        "forward-plan",
        "urgency",
        ref,
        "--forum",
        "pcc_decision",
        "--agreed-by",
        "cllr_chair",
        "--reason",
        "the service stops otherwise",
        who=PIA,
    )
    held = json.loads(engine.ok(*pcc, "--json", who=PIA))
    assert held["status"] == "open"
    assert "needs 2 scrutiny members" in engine.refused(
        "call-in", ref, "--stage", "pcc_decision", "--members", "cllr_a", "--reason", "too fast", who=SUE
    )
    engine.ok("call-in", ref, "--stage", "pcc_decision", "--members", "cllr_a,cllr_b", "--reason", "too fast", who=SUE)

    with urllib.request.urlopen(f"{engine.web}/api/v1/public/decisions", timeout=30) as answer:  # nobody signed in
        notices = json.loads(answer.read())["notices"]
    assert [(n["case"], n["called_in"]) for n in notices] == [(ref, True)]
    refused = json.loads(engine.ok("audit", "refusals", "--json", who="auditor:audrey"))
    assert {"NotAllowedError", "MeetingRequiredError", "KeyDecisionNoticeError"} <= {r["rule"] for r in refused}
