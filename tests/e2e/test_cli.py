"""End to end: the CLI against `concordat up` (the real Temporal dev server, worker and projection
runner as child processes) on free ports and a data dir of the test's own."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import Engine, _env


def test_a_proposal_goes_from_the_jcu_to_approval_and_reads_back(engine: Engine) -> None:
    ref = engine.ok(
        "proposal",
        "start",
        "--title",
        "Community paediatrics pathway",
        "--kind",
        "pathway_change",
        "--value",
        "180000",
        "--parties",
        "PCC,CCC,CPCCG",
        who="jcu_lead:jo",
    ).strip()
    assert ref.startswith("PRO-") and len(ref) == len("PRO-2026-0001")
    assert "at board" in engine.ok(
        "decide", ref, "--stage", "jcu", "--outcome", "refer", "--minutes-ref", "JCU-1", who="lead_director:dan"
    )
    engine.ok(
        "decide",
        ref,
        "--stage",
        "board",
        "--outcome",
        "recommend",
        "--minutes-ref",
        "MIN-2026-01",
        who="secretary:board:sam",
    )
    assert (
        "approve"
        not in engine.refused(  # the Programme Board never approves
            "decide",
            ref,
            "--stage",
            "programme_board",
            "--outcome",
            "approve",
            "--minutes-ref",
            "MIN-2026-01",
            who="secretary:programme_board:pat",
        ).split("allowed:")[1]
    )
    parallel = engine.ok(
        "decide",
        ref,
        "--stage",
        "programme_board",
        "--outcome",
        "recommend",
        "--minutes-ref",
        "MIN-2026-01",
        who="secretary:programme_board:pat",
    )
    assert "at pcc_decision, ccc_decision, cmet" in parallel
    engine.ok(
        "decide",
        ref,
        "--stage",
        "pcc_decision",
        "--outcome",
        "approve",
        "--minutes-ref",
        "MIN-2026-01",
        who="secretary:pcc_decision:pia",
    )
    engine.ok(
        "decide",
        ref,
        "--stage",
        "ccc_decision",
        "--outcome",
        "approve",
        "--minutes-ref",
        "MIN-2026-01",
        who="secretary:ccc_decision:cal",
    )
    engine.ok(
        "decide",
        ref,
        "--stage",
        "cmet",
        "--outcome",
        "recommend_approval",
        "--minutes-ref",
        "MIN-2026-01",
        who="secretary:cmet:cat",
    )
    out = engine.ok(
        "decide",
        ref,
        "--stage",
        "governing_body",
        "--outcome",
        "approve",
        "--minutes-ref",
        "GB-2",
        "--note",
        "Approved in full",
        "--json",
        who="secretary:governing_body:gus",
    )
    assert json.loads(out)["status"] == "approved"

    shown = json.loads(engine.ok("show", ref, "--json", who="auditor:audrey"))
    assert shown["status"] == "approved"
    assert [d["actor_role"] for d in shown["details"]["decisions"]] == [
        "lead_director",
        "secretary:board",
        "secretary:programme_board",
        "secretary:pcc_decision",
        "secretary:ccc_decision",
        "secretary:cmet",
        "secretary:governing_body",
    ]
    assert json.loads(out) == shown  # the command's --json and `show --json`: one document
    history = json.loads(engine.ok("history", ref, "--json", who="auditor:audrey"))
    assert [h["event"] for h in history] == ["Started"] + ["Decided"] * 7
    assert "Approved in full" in engine.ok("history", ref, who="auditor:audrey")

    listed = json.loads(engine.ok("list", "--json", who="auditor:audrey"))
    assert {"reference": ref, "status": "approved"}.items() <= next(r for r in listed if r["reference"] == ref).items()
    register = json.loads(engine.ok("decisions", "--json", "--case", ref, who="auditor:audrey"))
    assert [d["outcome"] for d in register] == [
        "approve",
        "recommend_approval",
        "approve",
        "approve",
        "recommend",
        "recommend",
        "refer",
    ]


def test_bad_input_gets_one_line_a_non_zero_exit_and_writes_nothing(engine: Engine) -> None:
    ref = engine.ok(
        "proposal",
        "start",
        "--title",
        "Autism assessment",
        "--kind",
        "procurement",
        "--value",
        "£300,000",
        "--parties",
        "PCC,CPCCG",
        who="jcu_lead:jo",
    ).strip()
    count = lambda: len(json.loads(engine.ok("history", ref, "--json", who="auditor:a")))  # noqa: E731
    assert "no case has the reference 'PRO-1999-0001'" in engine.refused(
        "decide", "PRO-1999-0001", "--stage", "jcu", "--outcome", "refer", who="lead_director:dan"
    )
    assert "awaiting jcu, not board" in engine.refused(
        "decide",
        ref,
        "--stage",
        "board",
        "--outcome",
        "recommend",
        "--minutes-ref",
        "MIN-2026-01",
        who="secretary:board:sam",
    )
    assert "role secretary:board may not decide at jcu" in engine.refused(
        "decide", ref, "--stage", "jcu", "--outcome", "refer", who="secretary:board:sam"
    )
    assert "allowed: refer, reject" in engine.refused(
        "decide", ref, "--stage", "jcu", "--outcome", "approve", who="lead_director:dan"
    )
    # Separation of duties, refused by the domain behind Temporal: the person who started it decides none of it.
    assert "separation of duties (no_self_approval): jo started " + ref in engine.refused(
        "decide", ref, "--stage", "jcu", "--outcome", "refer", who="lead_director:jo"
    )
    assert "not an amount in pounds" in engine.refused(
        "proposal",
        "start",
        "--title",
        "x",
        "--kind",
        "procurement",
        "--value",
        "lots",
        "--parties",
        "PCC",
        who="jcu_lead:jo",
    )
    assert "kind 'bridge' is not known" in engine.refused(
        "proposal", "start", "--title", "x", "--kind", "bridge", "--value", "1", "--parties", "PCC", who="jcu_lead:jo"
    )
    assert "you are not signed in" in engine.refused("show", ref)
    assert "No such option" in engine.refused("list", "--colour", who="auditor:a", code=2)
    assert count() == 1
    engine.ok("withdraw", ref, "--note", "re-scoped", who="jcu_lead:jo")
    assert "is withdrawn; it takes no more commands" in engine.refused(
        "decide", ref, "--stage", "jcu", "--outcome", "refer", who="lead_director:dan"
    )
    assert count() == 2


def test_a_repeated_command_id_records_once(engine: Engine) -> None:
    start = (
        "proposal",
        "start",
        "--title",
        "Repeat",
        "--kind",
        "procurement",
        "--value",
        "1000",
        "--parties",
        "PCC",
        "--command-id",
        "start-once",
    )
    ref = engine.ok(*start, who="jcu_lead:jo").strip()
    assert engine.ok(*start, who="jcu_lead:jo").strip() == ref
    decide = ("decide", ref, "--stage", "jcu", "--outcome", "approve", "--command-id", "decide-once")
    engine.ok(*decide, who="lead_director:dan")
    engine.ok(*decide, who="lead_director:dan")
    assert len(json.loads(engine.ok("history", ref, "--json", who="auditor:a"))) == 2


def test_a_dispute_goes_to_mediation_through_the_cli(engine: Engine) -> None:
    ref = engine.ok(
        "dispute", "raise", "--against", "CCC", "--subject", "Share of the therapy overspend", who="party_rep:PCC:pat"
    ).strip()
    assert ref.startswith("DSP-")
    assert "--against 'NHS': not members" in engine.refused(
        "dispute", "raise", "--against", "NHS", "--subject", "x", who="party_rep:PCC:pat"
    )
    engine.ok("dispute", "resolve", ref, "--outcome", "mediation", who="lead_director:dan")
    # The mediator is a person of the directory with the mediator role, and no party's.
    for person in ("mediator:mo", "mediator:meg", "mediator:rex", "party_rep:CPCCG:rex"):
        engine.token_of(person)  # an administrator added them (and granted rex both roles)
    nominate = ("dispute", "nominate", ref, "--mediator")
    assert "no user has the id 'zed'" in engine.refused(*nominate, "zed", who="lead_director:dan")
    assert "rex holds party_rep:CPCCG, a role of CPCCG" in engine.refused(*nominate, "rex", who="lead_director:dan")
    engine.ok(*nominate, "mediator:meg", who="lead_director:dan")  # the person meg
    assert "CPCCG is not a party waiting to agree" in engine.refused("dispute", "agree", ref, who="party_rep:CPCCG:gil")
    objected = json.loads(
        engine.ok(
            "dispute", "object", ref, "--reason", "Meg advised CCC on the contract", "--json", who="party_rep:CCC:cy"
        )
    )
    assert (objected["details"]["nominee"], objected["details"]["objections"][0]["nominee"]) == (None, "meg")
    engine.ok(*nominate, "mo", who="lead_director:dan")
    engine.ok("dispute", "agree", ref, who="party_rep:PCC:pat")
    engine.ok("dispute", "agree", ref, who="party_rep:CCC:cy")
    assert "letter-ref" in engine.refused("dispute", "appoint", ref, who="lead_director:dan", code=2)
    engine.ok("dispute", "appoint", ref, "--letter-ref", "JCU/MED/2026/01", who="lead_director:dan")
    assert "only the appointed mediator" in engine.refused(
        "dispute", "findings", ref, "--findings", "x", "--cost", "10", who="mediator:someone"
    )
    done = json.loads(
        engine.ok(
            "dispute",
            "findings",
            ref,
            "--findings",
            "CCC bears 60%",
            "--cost",
            "£1,200.01",
            "--json",
            who="mediator:mo",
        )
    )
    assert done["status"] == "findings_recorded"
    shown = json.loads(engine.ok("show", ref, "--json", who="auditor:a"))
    assert shown["details"]["cost_shares"] == {"PCC": 60001, "CCC": 60000}
    assert (shown["status"], shown["stage"]) == ("findings_recorded", "")  # the findings close the mediation
    events = [h["event"] for h in json.loads(engine.ok("history", ref, "--json", who="auditor:a"))]
    assert events == [
        "Raised",
        "DirectorDecided",
        "MediatorNominated",
        "MediatorObjected",
        "MediatorNominated",
        "MediatorAgreed",
        "MediatorAgreed",
        "MediatorAppointed",
        "FindingsRecorded",
    ]


def test_a_termination_notice_is_served_withdrawn_and_listed(engine: Engine) -> None:
    assert "the earliest allowed date is" in engine.refused(
        "termination", "serve", "--letter-ref", "CPCCG/1", "--effective", "2026-12-01", who="party_rep:CPCCG:gil"
    )
    assert "in the future" in engine.refused(
        "termination", "serve", "--letter-ref", "CPCCG/1", "--served-on", "2099-01-01", who="party_rep:CPCCG:gil"
    )
    out = engine.ok("termination", "serve", "--letter-ref", "CPCCG/LEGAL/9", "--year-end", who="party_rep:CPCCG:gil")
    ref, word, effective = out.split()
    assert ref.startswith("TRM-") and word == "effective" and effective.endswith("-03-31")
    listing = json.loads(engine.ok("partnership", "--json", who="auditor:a"))
    assert listing["pending_notices"][0]["reference"] == ref
    assert "allowed: party_rep:CPCCG" in engine.refused("termination", "withdraw", ref, who="party_rep:PCC:pat")
    engine.ok("termination", "withdraw", ref, "--note", "Settled", who="party_rep:CPCCG:gil")
    assert json.loads(engine.ok("partnership", "--json", who="auditor:a"))["pending_notices"] == []
    rows = json.loads(engine.ok("list", "--json", who="auditor:a"))
    assert {"reference": ref, "case_kind": "termination", "status": "withdrawn"}.items() <= next(
        r for r in rows if r["reference"] == ref
    ).items()


def test_a_variation_with_a_lever_waits_for_the_chief_executive(engine: Engine) -> None:
    ref = engine.ok(
        "variation",
        "start",
        "--provider",
        "Hinchingbrooke",
        "--contract-ref",
        "C-14",
        "--reason",
        "contract_performance_notice",
        "--value-change=-40000",
        "--parties",
        "PCC,CCC",
        "--effective",
        "2099-04-01",
        who="jcu_lead:jo",
    ).strip()
    assert ref.startswith("VAR-")
    assert "reason 'whim' is not known" in engine.refused(
        "variation",
        "start",
        "--provider",
        "P",
        "--contract-ref",
        "C",
        "--reason",
        "whim",
        "--value-change",
        "1",
        "--parties",
        "PCC",
        "--effective",
        "2099-04-01",
        who="jcu_lead:jo",
    )
    engine.ok("decide", ref, "--stage", "jcu", "--outcome", "refer", who="lead_director:dan")
    engine.ok(
        "decide",
        ref,
        "--stage",
        "board",
        "--outcome",
        "recommend",
        "--minutes-ref",
        "MIN-2026-01",
        who="secretary:board:sam",
    )
    assert "Chief Executive was informed" in engine.refused(
        "decide", ref, "--stage", "jcu_decision", "--outcome", "approve", who="lead_director:dan"
    )
    engine.ok("variation", "inform-ce", ref, "--note", "briefed", who="lead_director:dan")
    engine.ok("decide", ref, "--stage", "jcu_decision", "--outcome", "approve", who="lead_director:dan")
    assert "agreed; effective at" in engine.ok(
        "decide", ref, "--stage", "provider", "--outcome", "accepted", who="jcu_lead:jo"
    )


def test_a_ring_fenced_fund_opens_on_agreement_and_its_money_is_reported_by_quarter(engine: Engine) -> None:
    m = ("--minutes-ref", "MIN-2026-01")
    opening = engine.ok(
        "fund",
        "open",
        "--name",
        "PH pooled",
        "--type",
        "pooled",
        "--ring-fenced",
        "--contribution",
        "PCC=60000",
        "--contribution",
        "CCC=40000",
        who="jcu_lead:jo",
    ).strip()
    assert opening.startswith("FND-")
    assert "names each party's contribution" in engine.refused(
        "fund", "open", "--name", "X", "--type", "pooled", "--ring-fenced", "--balance", "1", who="jcu_lead:jo"
    )
    assert "no fund is named 'PH pooled'" in engine.refused("fund", "show", "PH pooled", who="auditor:a")
    # A board decision names its minutes.
    assert "--minutes-ref: a decision of board" in engine.refused(
        "decide", opening, "--stage", "board", "--outcome", "propose", who="secretary:board:sam"
    )
    engine.ok("decide", opening, "--stage", "board", "--outcome", "propose", *m, who="secretary:board:sam")
    engine.ok("decide", opening, "--stage", "consultation", "--outcome", "support", who="public_health:phil")
    out = engine.ok(
        "decide", opening, "--stage", "programme_board", "--outcome", "agree", *m, who="secretary:programme_board:pat"
    )
    assert "opened" in out
    shown = engine.ok("fund", "show", "PH pooled", who="auditor:a")
    assert "£100,000.00" in shown and "yes: public-health money" in shown and opening in shown
    ref = engine.ok(
        "funding", "start", "--fund", "PH pooled", "--change", "PCC=-30000", "--change", "CCC=5000", who="jcu_lead:jo"
    ).strip()  # no --public-health: the fund is ring-fenced
    assert "is not PARTY=POUNDS" in engine.refused(
        "funding", "start", "--fund", "PH pooled", "--change", "PCC", who="jcu_lead:jo"
    )
    assert "PCC -£30,000.00, CCC £5,000.00" in engine.ok("show", ref, who="auditor:a")
    engine.ok("decide", ref, "--stage", "board", "--outcome", "propose", *m, who="secretary:board:sam")
    assert "awaiting consultation, not programme_board" in engine.refused(
        "decide", ref, "--stage", "programme_board", "--outcome", "agree", *m, who="secretary:programme_board:pat"
    )
    engine.ok("decide", ref, "--stage", "consultation", "--outcome", "support", who="public_health:phil")
    engine.ok(
        "decide", ref, "--stage", "programme_board", "--outcome", "agree", *m, who="secretary:programme_board:pat"
    )
    engine.ok("decide", ref, "--stage", "pcc_decision", "--outcome", "approve", *m, who="secretary:pcc_decision:pia")
    engine.ok("decide", ref, "--stage", "ccc_decision", "--outcome", "approve", *m, who="secretary:ccc_decision:cal")
    assert json.loads(engine.ok("fund", "show", "PH pooled", "--json", who="auditor:a"))["balance_pence"] == 7_500_000
    assert "would overspend it by £24,999.00" in engine.refused(
        "funding", "start", "--fund", "PH pooled", "--change", "PCC=-99999", who="jcu_lead:jo"
    )
    today = datetime.now(ZoneInfo("Europe/London")).date()
    year = today.year if today.month >= 4 else today.year - 1
    quarter = (today.month - 4) % 12 // 3 + 1
    table = json.loads(engine.ok("report", "public-health", "--year", str(year), "--json", who="auditor:a"))
    pcc = next(p for p in table["parties"] if p["party"] == "PCC")["quarters"][quarter - 1]
    assert (pcc["contributions"], pcc["changes"], pcc["balance"]) == ("£60,000.00", "-£30,000.00", "£30,000.00")
    text = engine.ok("report", "public-health", "--year", str(year), who="auditor:a")
    assert "£30,000.00" in text and "pence" not in text
    csv_text = engine.ok("report", "public-health", "--year", str(year), "--csv", who="auditor:a")
    assert csv_text.splitlines()[0] == "financial_year,quarter,months,party,contributions_gbp,changes_gbp,balance_gbp"
    assert f",Q{quarter}," in csv_text and ",PCC,60000.00,-30000.00,30000.00" in csv_text
    assert "no fund is named 'Nope'" in engine.refused("fund", "show", "Nope", who="auditor:a")


def test_an_auditor_reads_everything_and_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    ref = engine.ok(
        "proposal",
        "start",
        "--title",
        "Audited",
        "--kind",
        "procurement",
        "--value",
        "1000",
        "--parties",
        "PCC",
        who="jcu_lead:jo",
    ).strip()
    engine.ok("decide", ref, "--stage", "jcu", "--outcome", "refer", who="lead_director:dan")
    for refused in (
        ("proposal", "start", "--title", "x", "--kind", "procurement", "--value", "1", "--parties", "PCC"),
        ("decide", ref, "--stage", "board", "--outcome", "recommend", "--minutes-ref", "MIN-2026-01"),
        ("withdraw", ref),
        ("dispute", "raise", "--against", "CCC", "--subject", "x"),
        ("termination", "serve", "--letter-ref", "x"),
        ("fund", "open", "--name", "Audit fund", "--type", "pooled", "--balance", "1"),
    ):
        assert "auditor" in engine.refused(*refused, who="auditor:audrey")
    for read in (
        ("show", ref),
        ("history", ref),
        ("list",),
        ("decisions",),
        ("partnership",),
        ("report", "public-health", "--year", "2026"),
        ("audit", "heads"),
    ):
        engine.ok(*read, who="auditor:audrey")
    verified = json.loads(engine.ok("audit", "verify", "--json", who="auditor:audrey"))
    assert verified["breaks"] == [] and verified["checked"] > 3
    heads = tmp_path / "heads.json"
    heads.write_text(engine.ok("audit", "heads", "--json", who="auditor:audrey"))
    assert "no break" in engine.ok("audit", "verify", ref, "--heads", str(heads), who="auditor:audrey")
    assert "not a heads file" in engine.refused(
        "audit", "verify", "--heads", str(tmp_path / "missing.json"), who="auditor:audrey"
    )
    lines = engine.ok("audit", "export", ref, "--format", "jsonl", who="auditor:audrey").splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["Started", "Decided"]
    assert json.loads(lines[1])["workflow_id"] == ref  # decided through its workflow
    csv_lines = engine.ok("audit", "export", ref, "--format", "csv", who="auditor:audrey").splitlines()
    assert csv_lines[0].startswith("reference,originator_id,version,event") and len(csv_lines) == 3
    first = json.loads(lines[0])["recorded_at"]
    then = json.loads(engine.ok("show", ref, "--as-of", first, "--json", who="auditor:audrey"))
    assert (then["version"], then["stage"]) == (1, "jcu")
    assert "did not exist yet" in engine.refused("show", ref, "--as-of", "2000-01-01T00:00", who="auditor:audrey")
    assert "is not a date and time" in engine.refused("show", ref, "--as-of", "yesterday", who="auditor:audrey")
    before = json.loads(engine.ok("list", "--json", who="auditor:audrey"))
    # Rebuilding the views is an operator's command: the auditor asks, an administrator runs it.
    assert "it is for an administrator" in engine.refused("audit", "replay", who="auditor:audrey")
    summary = json.loads(engine.ok("audit", "replay", "--json", who="admin:root"))
    assert summary["events"] > 0 and summary["views"] == ["case_list", "decisions", "public_health"]
    assert json.loads(engine.ok("list", "--json", who="auditor:audrey")) == before


def test_up_refuses_a_taken_port_and_says_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = _env(tmp_path, taken.getsockname()[1])
        done = subprocess.run(
            [sys.executable, "-m", "concordat", "up"], env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 1
    assert "is taken" in done.stderr


def test_ctrl_c_stops_everything_up_started(engine: Engine) -> None:
    pids = [int(line.split()[2]) for line in engine.lines if " pid " in line]
    assert len(pids) == 5  # temporal, worker, projections, outbox, web
    engine.process.send_signal(signal.SIGINT)
    assert engine.process.wait(timeout=60) == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
