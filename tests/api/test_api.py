"""Every route of `/api/v1` on the running engine: success, 401, 403 for each role that may not act,
404, 422 with a problem body, and a repeated Idempotency-Key recording once."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.api.conftest import PEOPLE, Api, problem

PROPOSAL = {
    "title": "Speech and language therapy",
    "kind": "pathway_change",
    "value": "400000",
    "parties": ["PCC", "CPCCG"],
}
READS = [
    "/me",
    "/cases",
    "/cases/PRO-2026-0001",
    "/cases/PRO-2026-0001/history",
    "/decisions",
    "/partnership",
    "/funds/PH",
    "/reports/public-health?year=2026",
    "/reports/cycles",
    "/reports/risks",
    "/audit/verify",
    "/audit/heads",
    "/audit/export",
]
WRITES = [
    "/proposals",
    "/disputes",
    "/terminations",
    "/agreements",
    "/cases/TRM-2026-0001/consent",
    "/variations",
    "/funding-changes",
    "/funds",
    "/cases/PRO-2026-0001/decisions",
    "/cases/PRO-2026-0001/withdraw",
    "/cases/DSP-2026-0001/resolve",
    "/cases/DSP-2026-0001/nominate",
    "/cases/DSP-2026-0001/agree",
    "/cases/DSP-2026-0001/refuse",
    "/cases/DSP-2026-0001/object",
    "/cases/DSP-2026-0001/appoint",
    "/cases/DSP-2026-0001/findings",
    "/cases/VAR-2026-0001/inform-ce",
]


def others(*allowed: str) -> list[str]:
    return [p for p in PEOPLE if p not in allowed]


def test_the_openapi_document_is_served_and_names_every_route(api: Api) -> None:
    doc = api.anonymous.get("/openapi.json")
    assert doc.status_code == 200
    paths = doc.json()["paths"]
    for route in [*READS, *WRITES]:
        templated = route.split("?")[0].replace("PRO-2026-0001", "{ref}").replace("DSP-2026-0001", "{ref}")
        templated = (
            templated.replace("TRM-2026-0001", "{ref}").replace("VAR-2026-0001", "{ref}").replace("/PH", "/{name}")
        )
        assert "/api/v1" + templated in paths, templated
    assert "Problem" in doc.json()["components"]["schemas"]
    assert doc.json()["components"]["securitySchemes"]["token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from `concordat token create ID`.",
    }


def test_without_a_valid_token_every_route_answers_401_and_writes_nothing(api: Api) -> None:
    before = api.events()
    bad = {"Authorization": "Bearer cdt_000000000000.forged"}
    for route in READS:
        assert "Bearer" in problem(api.anonymous.get(route), 401)
        problem(api.anonymous.get(route, headers=bad), 401)
    for route in WRITES:
        problem(api.anonymous.post(route, json={}), 401)
        problem(api.anonymous.post(route, json=PROPOSAL, headers=bad), 401)
        problem(api.anonymous.post(route, json=PROPOSAL, headers={"Authorization": "Basic am86eA=="}), 401)
    assert api.events() == before


def test_a_proposal_through_the_api_with_403s_404s_422s_409s_and_replays(api: Api) -> None:
    jo = api.as_("jo")
    before = api.events()
    for who in others("jo", "multi"):
        assert "it is for jcu_lead" in problem(api.as_(who).post("/proposals", json=PROPOSAL), 403)
    for body, field in [
        ({**PROPOSAL, "value": "lots"}, "value"),
        ({**PROPOSAL, "kind": "party"}, "kind"),
        ({k: v for k, v in PROPOSAL.items() if k != "title"}, "title"),
        ({**PROPOSAL, "actor": "dan"}, "actor"),
        ({**PROPOSAL, "parties": ["NHS"]}, "NHS"),
    ]:
        assert field in problem(jo.post("/proposals", json=body), 422)
    assert api.events() == before

    first = jo.post("/proposals", json=PROPOSAL, headers={"Idempotency-Key": "start-1"})
    assert first.status_code == 201, first.text
    ref = first.json()["reference"]
    assert first.headers["location"] == f"/api/v1/cases/{ref}"
    after_start = api.events()
    again = jo.post("/proposals", json=PROPOSAL, headers={"Idempotency-Key": "start-1"})
    assert (again.status_code, again.json()["reference"]) == (201, ref)
    assert api.events() == after_start

    decision = {"stage": "jcu", "outcome": "refer", "minutes_ref": "JCU/2026/11", "note": "to the board"}
    for who in others("dan"):
        assert "it is for lead_director" in problem(api.as_(who).post(f"/cases/{ref}/decisions", json=decision), 403)
    assert "no case has the reference" in problem(
        api.as_("dan").post("/cases/PRO-2099-0009/decisions", json=decision), 404
    )
    assert "outcome 'approve' is not allowed" in problem(
        api.as_("dan").post(f"/cases/{ref}/decisions", json={**decision, "outcome": "approve"}), 422
    )
    problem(api.as_("dan").post(f"/cases/{ref}/decisions", json={"stage": "jcu"}), 422)
    assert api.events() == after_start

    done = api.as_("dan").post(f"/cases/{ref}/decisions", json=decision, headers={"Idempotency-Key": "d-1"})
    assert done.status_code == 200 and done.json()["stage"] == "board"
    after_decision = api.events()
    replay = api.as_("dan").post(f"/cases/{ref}/decisions", json=decision, headers={"Idempotency-Key": "d-1"})
    assert replay.json()["version"] == done.json()["version"]
    assert api.events() == after_decision
    stale = problem(api.as_("dan").post(f"/cases/{ref}/decisions", json=decision), 409)
    assert f"{ref} is awaiting board, not jcu; decision already recorded: jcu: refer by lead_director:dan at " in stale

    case = api.as_("sam").get(f"/cases/{ref}").json()
    assert case["your_actions"] == [
        {
            "action": "decide",
            "stage": "board",
            "role": "secretary:board",
            "outcomes": ["recommend", "reject", "defer"],
            "stage_outcomes": [],
        }
    ]
    assert api.as_("audrey").get(f"/cases/{ref}").json()["your_actions"] == []
    history = api.as_("audrey").get(f"/cases/{ref}/history").json()
    assert [(h["event"], h["actor_id"], h["actor_role"]) for h in history][-1] == ("Decided", "dan", "lead_director")
    assert history[-1]["command_id"].startswith("k1:") and history[-1]["hash"]  # scoped: domain/idempotency.py
    then = api.as_("audrey").get(f"/cases/{ref}", params={"version": 1}).json()
    assert (then["stage"], then["version"]) == ("jcu", 1)
    as_of = api.as_("audrey").get(f"/cases/{ref}", params={"as_of": "2000-01-01T00:00"})
    assert "did not exist yet" in problem(as_of, 404)
    problem(api.as_("audrey").get(f"/cases/{ref}", params={"as_of": "yesterday"}), 422)
    problem(api.as_("audrey").get("/cases/not-a-ref"), 422)
    assert "no case has the reference" in problem(api.as_("audrey").get("/cases/PRO-2099-0009"), 404)

    for who in others("jo", "multi"):
        problem(api.as_(who).post(f"/cases/{ref}/withdraw", json={"note": "no"}), 403)
    withdrawn = jo.post(f"/cases/{ref}/withdraw", json={"note": "superseded"}, headers={"Idempotency-Key": "w-1"})
    assert withdrawn.json()["status"] == "withdrawn"
    assert "is withdrawn; it takes no more commands" in problem(jo.post(f"/cases/{ref}/withdraw"), 409)


def test_a_person_with_two_roles_acts_in_the_one_the_command_needs_or_the_one_they_name(api: Api) -> None:
    multi = api.as_("multi")
    started = multi.post("/proposals", json=PROPOSAL)
    assert started.status_code == 201 and started.json()["case"]["started_by"] == {"id": "multi", "role": "jcu_lead"}
    assert "does not hold the role 'lead_director'" in problem(
        multi.post("/proposals", json=PROPOSAL, headers={"X-Concordat-Role": "lead_director"}), 403
    )
    assert "role auditor may not start a proposal; allowed: jcu_lead" in problem(
        multi.post("/proposals", json=PROPOSAL, headers={"X-Concordat-Role": "auditor"}), 403
    )
    assert multi.get("/me").json() == {"id": "multi", "roles": ["jcu_lead", "auditor"]}


def test_a_dispute_through_mediation_over_the_api(api: Api) -> None:
    body = {"against": ["CCC"], "subject": "Share of the overspend", "description": "in full", "case": None}
    for who in others("pat", "cy", "gil"):
        assert "it is for party_rep" in problem(api.as_(who).post("/disputes", json=body), 403)
    assert "no case has the reference" in problem(
        api.as_("pat").post("/disputes", json={**body, "case": "PRO-2099-0001"}), 404
    )
    ref = api.as_("pat").post("/disputes", json=body).json()["reference"]

    for who in others("dan"):
        problem(api.as_(who).post(f"/cases/{ref}/resolve", json={"outcome": "mediation"}), 403)
    problem(api.as_("dan").post(f"/cases/{ref}/resolve", json={"outcome": "shrug"}), 422)
    api.as_("dan").post(f"/cases/{ref}/resolve", json={"outcome": "mediation"}).raise_for_status()
    problem(api.as_("sam").post(f"/cases/{ref}/nominate", json={"mediator": "mo"}), 403)
    api.as_("dan").post(f"/cases/{ref}/nominate", json={"mediator": "mo"}).raise_for_status()
    assert "it is for party_rep:PCC, party_rep:CCC" in problem(api.as_("gil").post(f"/cases/{ref}/agree", json={}), 403)
    agreed = api.as_("pat").post(f"/cases/{ref}/agree", json={}, headers={"Idempotency-Key": "agree-pat"})
    assert agreed.status_code == 200, agreed.text
    before = api.events()
    api.as_("pat").post(f"/cases/{ref}/agree", json={}, headers={"Idempotency-Key": "agree-pat"}).raise_for_status()
    assert api.events() == before
    api.as_("cy").post(f"/cases/{ref}/agree", json={}).raise_for_status()
    problem(api.as_("dan").post(f"/cases/{ref}/appoint", json={}), 422)  # in writing: a letter is required
    api.as_("dan").post(f"/cases/{ref}/appoint", json={"letter_ref": "JCU/MED/1"}).raise_for_status()
    problem(api.as_("dan").post(f"/cases/{ref}/findings", json={"findings": "x", "cost": "100"}), 403)
    problem(api.as_("mo").post(f"/cases/{ref}/findings", json={"findings": "x", "cost": "a lot"}), 422)
    done = api.as_("mo").post(f"/cases/{ref}/findings", json={"findings": "CCC bears 60%", "cost": "£1,200.01"})
    assert done.status_code == 200, done.text
    shares = done.json()["details"]["cost_shares"]
    assert sum(shares.values()) == 120_001 and max(shares.values()) - min(shares.values()) <= 1
    # Once it is closed: one who could have refused learns so (409); one who never could is refused as such.
    assert "takes no more commands" in problem(api.as_("cy").post(f"/cases/{ref}/refuse", json={}), 409)
    assert "may not" in problem(api.as_("mo").post(f"/cases/{ref}/refuse", json={}), 403)


def test_a_mediator_is_objected_to_withdraws_and_is_replaced_over_the_api(api: Api) -> None:
    body = {"against": ["CCC"], "subject": "Share of the therapy overspend"}
    ref = api.as_("pat").post("/disputes", json=body).json()["reference"]
    dan = api.as_("dan")
    dan.post(f"/cases/{ref}/resolve", json={"outcome": "mediation"}).raise_for_status()
    # The nominee must be a person of the directory who holds the mediator role; the refusal is on the record.
    mark = api.last_refusal()
    assert "pia does not hold the mediator role" in problem(dan.post(f"/cases/{ref}/nominate", json={"mediator": "pia"}), 422)  # fmt: skip
    refusal = api.refusals(mark)[-1]
    assert (refusal["rule"], refusal["actor"], refusal["door"]) == (
        "MediatorNotEligibleError",
        "lead_director:dan",
        "api",
    )
    # A party objects that the nominee is not independent, and says why.
    dan.post(f"/cases/{ref}/nominate", json={"mediator": "meg"}).raise_for_status()
    problem(api.as_("cy").post(f"/cases/{ref}/object", json={"reason": ""}), 422)
    assert "it is for party_rep:PCC, party_rep:CCC" in problem(api.as_("gil").post(f"/cases/{ref}/object", json={"reason": "x"}), 403)  # fmt: skip
    objected = api.as_("cy").post(f"/cases/{ref}/object", json={"reason": "Meg advised PCC in 2025"})
    assert objected.status_code == 200, objected.text
    assert objected.json()["details"]["objections"][0]["reason"] == "Meg advised PCC in 2025"
    assert "CCC objected to meg" in problem(dan.post(f"/cases/{ref}/nominate", json={"mediator": "meg"}), 422)

    def appoint(mediator: str, letter: str) -> None:
        dan.post(f"/cases/{ref}/nominate", json={"mediator": mediator}).raise_for_status()
        for party in ("pat", "cy"):
            api.as_(party).post(f"/cases/{ref}/agree", json={}).raise_for_status()
        dan.post(f"/cases/{ref}/appoint", json={"letter_ref": letter}).raise_for_status()

    appoint("mo", "JCU/MED/1")
    # The mediator may withdraw; only the appointed one.
    assert "only the appointed mediator (mo)" in problem(api.as_("meg").post(f"/cases/{ref}/withdraw", json={}), 403)
    withdrew = api.as_("mo").post(f"/cases/{ref}/withdraw", json={"note": "A conflict came to light"})
    assert withdrew.status_code == 200, withdrew.text
    assert (withdrew.json()["stage"], withdrew.json()["details"]["mediator"]) == ("mediator_selection", None)
    # No dead end: another is selected by agreement, appointed in writing, and records binding findings.
    appoint("max", "JCU/MED/2")
    done = api.as_("max").post(f"/cases/{ref}/findings", json={"findings": "CCC bears 60%", "cost": "£10.01"})
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["stage"]) == ("findings_recorded", "")
    assert [m["id"] for m in done.json()["details"]["former_mediators"]] == ["mo"]

    early = problem(api.as_("gil").post("/terminations", json={"letter_ref": "L/1", "effective": "2026-12-01"}), 422)
    assert "the earliest allowed date is" in early
    problem(api.as_("jo").post("/terminations", json={"letter_ref": "L/1"}), 403)
    notice = api.as_("gil").post("/terminations", json={"letter_ref": "L/1", "year_end": True})
    assert notice.status_code == 201, notice.text
    trm = notice.json()["reference"]
    assert api.as_("audrey").get("/partnership").json()["pending_notices"][0]["reference"] == trm
    # Mutual consent is an agreement of its own, signed by every party; once in force nobody undoes it.
    problem(api.as_("jo").post("/agreements", json={"effective": "2099-01-01", "agreement_ref": "A/1"}), 403)
    problem(api.as_("pat").post("/agreements", json={"effective": "soon", "agreement_ref": "A/1"}), 422)
    agreed = api.as_("pat").post(
        "/agreements", json={"leaving": "CCC", "effective": "2099-03-31", "agreement_ref": "MOU/CCC-EXIT/1"}
    )
    assert agreed.status_code == 201, agreed.text
    agr = agreed.json()["reference"]
    assert agr.startswith("AGR-") and agreed.json()["case"]["details"]["awaiting"] == ["CCC", "CPCCG"]
    problem(api.as_("audrey").post(f"/cases/{agr}/agree", json={}), 403)
    api.as_("cy").post(f"/cases/{agr}/agree", json={}).raise_for_status()
    assert api.as_("gil").post(f"/cases/{agr}/agree", json={}).json()["status"] == "in_force"
    assert "no one party can undo it" in problem(api.as_("cy").post(f"/cases/{agr}/refuse", json={}), 409)
    assert api.as_("audrey").get("/partnership").json()["agreements"][0]["reference"] == agr
    # The consent route of earlier releases signs one agreement to end the partnership on that date:
    # the first consent proposes it, each later one signs it, and the last puts it in force.
    consents = [
        api.as_(who).post(f"/cases/{trm}/consent", json={"effective": "2099-06-30"}) for who in ("pat", "cy", "gil")
    ]
    assert [c.status_code for c in consents] == [201, 200, 200], [c.text for c in consents]
    ending = consents[0].json()["reference"]
    assert ending.startswith("AGR-") and ending != agr
    assert [c.json()["reference"] for c in consents[1:]] == [ending, ending]
    assert consents[-1].json()["status"] == "in_force"
    problem(api.as_("pat").post("/cases/TRM-2099-9999/consent", json={"effective": "2099-06-30"}), 404)
    problem(api.as_("pat").post(f"/cases/{trm}/withdraw", json={}), 403)
    assert api.as_("gil").post(f"/cases/{trm}/withdraw", json={"note": "settled"}).json()["status"] == "withdrawn"

    variation = {
        "provider": "Hinchingbrooke",
        "contract_ref": "C-14",
        "reason": "contract_performance_notice",
        "value_change": -40000,
        "parties": "PCC,CCC",
        "effective": "2099-04-01",
    }
    problem(api.as_("sam").post("/variations", json=variation), 403)
    assert "reason 'whim' is not known" in problem(
        api.as_("jo").post("/variations", json={**variation, "reason": "whim"}), 422
    )
    var = api.as_("jo").post("/variations", json=variation).json()["reference"]
    api.as_("dan").post(f"/cases/{var}/decisions", json={"stage": "jcu", "outcome": "refer"}).raise_for_status()
    problem(
        api.as_("sam").post(
            f"/cases/{var}/decisions", json={"stage": "board", "outcome": "approve", "minutes_ref": "MIN-2026-01"}
        ),
        422,
    )
    api.as_("sam").post(
        f"/cases/{var}/decisions", json={"stage": "board", "outcome": "recommend", "minutes_ref": "MIN-2026-01"}
    ).raise_for_status()
    assert "Chief Executive was informed" in problem(
        api.as_("dan").post(f"/cases/{var}/decisions", json={"stage": "jcu_decision", "outcome": "approve"}), 409
    )
    problem(api.as_("jo").post(f"/cases/{var}/inform-ce", json={"note": "x"}), 403)
    api.as_("dan").post(f"/cases/{var}/inform-ce", json={"note": "briefed"}).raise_for_status()
    api.as_("dan").post(
        f"/cases/{var}/decisions", json={"stage": "jcu_decision", "outcome": "approve"}
    ).raise_for_status()

    # A fund opens when the Programme Board agrees (ToR 4.2): proposing it is a case.
    fund_body = {"name": "PH", "type": "pooled", "ring_fenced": True, "contribution": {"PCC": "60000", "CCC": 40000}}
    problem(api.as_("sam").post("/funds", json=fund_body), 403)
    problem(api.as_("jo").post("/funds", json={**fund_body, "type": "shared"}), 422)
    assert "names each party's contribution" in problem(
        api.as_("jo").post("/funds", json={"name": "PH", "type": "pooled", "ring_fenced": True, "balance": 1}), 422
    )
    proposed = api.as_("jo").post("/funds", json=fund_body)
    assert proposed.status_code == 201 and proposed.json()["case"]["stage"] == "board"
    fnd = proposed.json()["reference"]
    assert fnd.startswith("FND-") and proposed.json()["case"]["details"]["pounds"]["balance"] == "£100,000.00"
    assert "no fund is named 'PH'" in problem(api.as_("audrey").get("/funds/PH"), 404)
    for who, stage, outcome in [
        ("sam", "board", "propose"),
        ("phil", "consultation", "support"),
        ("prue", "programme_board", "agree"),
    ]:
        api.as_(who).post(
            f"/cases/{fnd}/decisions", json={"stage": stage, "outcome": outcome, "minutes_ref": "MIN-2026-01"}
        ).raise_for_status()
    opened = api.as_("audrey").get("/funds/PH").json()
    assert (opened["balance_pence"], opened["balance"], opened["ring_fenced"]) == (10_000_000, "£100,000.00", True)
    change = {"fund": "PH", "change": {"PCC": "-30000", "CCC": 5000}}  # ring-fenced: the fund says so
    assert "holds ring-fenced public-health money" in problem(
        api.as_("jo").post("/funding-changes", json={**change, "public_health": False}), 422
    )
    problem(api.as_("sam").post("/funding-changes", json=change), 403)
    assert "no fund is named 'Nope'" in problem(
        api.as_("jo").post("/funding-changes", json={**change, "fund": "Nope"}), 404
    )
    fun = api.as_("jo").post("/funding-changes", json=change).json()["reference"]
    api.as_("sam").post(
        f"/cases/{fun}/decisions", json={"stage": "board", "outcome": "propose", "minutes_ref": "MIN-2026-01"}
    ).raise_for_status()
    api.as_("phil").post(
        f"/cases/{fun}/decisions", json={"stage": "consultation", "outcome": "support"}
    ).raise_for_status()
    problem(
        api.as_("prue").post(
            f"/cases/{fun}/decisions",
            json={"stage": "programme_board", "outcome": "approve", "minutes_ref": "MIN-2026-01"},
        ),
        422,
    )
    api.as_("prue").post(
        f"/cases/{fun}/decisions", json={"stage": "programme_board", "outcome": "agree", "minutes_ref": "MIN-2026-01"}
    ).raise_for_status()
    api.as_("pia").post(
        f"/cases/{fun}/decisions", json={"stage": "pcc_decision", "outcome": "approve", "minutes_ref": "MIN-2026-01"}
    ).raise_for_status()
    api.as_("cal").post(
        f"/cases/{fun}/decisions", json={"stage": "ccc_decision", "outcome": "approve", "minutes_ref": "MIN-2026-01"}
    ).raise_for_status()
    assert api.as_("audrey").get("/funds/PH").json()["balance_pence"] == 7_500_000
    # An overspend is refused when it is proposed: nothing is started.
    assert "would overspend it by £24,999.00" in problem(
        api.as_("jo").post("/funding-changes", json={"fund": "PH", "change": {"PCC": "-99999"}}), 422
    )

    today = datetime.now(ZoneInfo("Europe/London")).date()
    year = today.year if today.month >= 4 else today.year - 1
    quarter = (today.month - 4) % 12 // 3 + 1
    report = api.as_("audrey").get("/reports/public-health", params={"year": year}).json()
    got = {p["party"]: p["quarters"][quarter - 1] for p in report["parties"]}
    assert {p: (q["contributions_pence"], q["changes_pence"], q["balance_pence"]) for p, q in got.items()} == {
        "PCC": (6_000_000, -3_000_000, 3_000_000),
        "CCC": (4_000_000, 500_000, 4_500_000),
        "CPCCG": (0, 0, 0),
    }
    assert (got["PCC"]["balance"], got["CCC"]["changes"]) == ("£30,000.00", "£5,000.00")
    csv = api.as_("audrey").get("/reports/public-health", params={"year": year, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert f"Q{quarter}" in csv.text and ",PCC,60000.00,-30000.00,30000.00" in csv.text
    problem(api.as_("audrey").get("/reports/public-health", params={"year": 1066}), 422)
    assert "no fund is named" in problem(api.as_("audrey").get("/funds/Nope"), 404)


def test_reads_filters_paging_and_the_auditors_routes(api: Api) -> None:
    audrey = api.as_("audrey")
    everything = audrey.get("/cases", params={"limit": 500}).json()
    assert everything["total"] == len(everything["items"]) >= 5
    proposals = audrey.get("/cases", params={"kind": "proposal"}).json()["items"]
    assert proposals and {r["case_kind"] for r in proposals} == {"proposal"}
    ccc = audrey.get("/cases", params={"party": "CCC"}).json()["items"]
    assert ccc and all("CCC" in r["parties"].split(",") for r in ccc)
    open_ = audrey.get("/cases", params={"open": "true"}).json()["items"]
    assert all(r["status"] == "open" for r in open_)
    page = audrey.get("/cases", params={"limit": 2, "offset": 1}).json()
    assert [r["reference"] for r in page["items"]] == [r["reference"] for r in everything["items"][1:3]]
    problem(audrey.get("/cases", params={"limit": 0}), 422)
    problem(audrey.get("/cases", params={"offset": 10**24}), 422)  # found by schemathesis: a 500 once
    problem(audrey.get("/cases/PRO-2026-0001", params={"version": 10**24}), 422)
    assert audrey.get("/cases", params={"overdue": "true"}).json()["items"] == []

    register = audrey.get("/decisions").json()["items"]
    assert any(d["outcome"] == "refer" and d["actor_id"] == "dan" for d in register)
    verified = audrey.get("/audit/verify").json()
    assert verified["clean"] and verified["checked"] > 5
    heads = audrey.get("/audit/heads").json()
    assert any(h["reference"].startswith("user:") for h in heads)  # access changes are chained too
    export = audrey.get("/audit/export", params={"format": "csv", "reference": "PRO-2026-0001"})
    assert export.headers["content-type"].startswith("text/csv")
    assert export.text.splitlines()[0].startswith("reference,originator_id,version,event")
    problem(audrey.get("/audit/export", params={"format": "xml"}), 422)
    assert "no case has the reference" in problem(
        audrey.get("/audit/verify", params={"reference": "PRO-2099-0001"}), 404
    )


@pytest.mark.parametrize("when", ["revoked role", "revoked token"])
def test_a_revoked_role_or_token_stops_working_at_once(api: Api, when: str) -> None:
    who = f"late-{when.split()[1]}"
    api.engine.ok("user", "add", who, "--role", "jcu_lead", who="admin:root")
    token = json.loads(api.engine.ok("token", "create", who, "--json", who="admin:root"))
    api.tokens[who] = token["token"]
    client = api.as_(who)
    assert client.post("/proposals", json=PROPOSAL).status_code == 201
    if when == "revoked role":
        api.engine.ok("user", "revoke", who, "--role", "jcu_lead", who="admin:root")
        problem(client.post("/proposals", json=PROPOSAL), 401)  # no roles left: the token no longer signs in
    else:
        api.engine.ok("token", "revoke", token["id"], who="admin:root")
        problem(client.post("/proposals", json=PROPOSAL), 401)


def test_a_secretary_on_the_api_and_one_on_the_cli_decide_at_once_and_exactly_one_wins(api: Api) -> None:
    ref = api.as_("jo").post("/proposals", json=PROPOSAL).json()["reference"]
    api.as_("dan").post(f"/cases/{ref}/decisions", json={"stage": "jcu", "outcome": "refer"}).raise_for_status()
    api.engine.token_of("secretary:board:sue")  # Sue is added and signs in before the race
    before = api.events()
    with ThreadPoolExecutor(2) as pool:
        by_api = pool.submit(
            api.as_("sam").post,
            f"/cases/{ref}/decisions",
            json={"stage": "board", "outcome": "recommend", "minutes_ref": "MIN-2026-01"},
        )
        by_cli = pool.submit(
            api.engine.run,
            "decide",
            ref,
            "--stage",
            "board",
            "--outcome",
            "reject",
            "--minutes-ref",
            "MIN-2026-01",
            who="secretary:board:sue",
        )
        http, cli = by_api.result(), by_cli.result()
    assert (http.status_code == 200) != (cli.returncode == 0), (http.text, cli.stderr)
    loser = cli.stderr if http.status_code == 200 else problem(http, 409)
    assert "decision already recorded: board:" in loser
    assert api.events() == before + 1  # one decision, not two


def test_the_review_report_and_risk_registers_over_the_api(api: Api) -> None:
    assert api.as_("audrey").get("/reports/cycles").json() == []
    risks = api.as_("audrey").get("/reports/risks", params={"all": "true"})
    assert risks.status_code == 200 and isinstance(risks.json(), list)
    problem(api.as_("audrey").get("/reports/risks", params={"all": "maybe"}), 422)
