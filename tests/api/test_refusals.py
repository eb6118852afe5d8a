"""The API's refusals on the refusal log, on the running engine (`concordat up`): every 401 (with the
token's id, never its secret), every 403 of the tier, the rules' refusals made in the tier and in the
worker (each once), the pages' refusals through the `web` door, the auditor's route, and a stateful
run of random people giving random commands after which the log holds one entry per refusal."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, multiple, rule, run_state_machine_as_test

from domain.idempotency import scoped_command_id
from tests.api.conftest import PASSWORD, Api, problem

PROPOSAL = {"title": "Respite care", "kind": "pathway_change", "value": "400000", "parties": ["PCC", "CPCCG"]}


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


def forged_token() -> tuple[str, str, str]:
    """(token id, secret, whole token) of a well-formed token nobody was given."""
    token_id, secret = secrets.token_hex(6), f"forged-{secrets.token_urlsafe(24)}"
    return token_id, secret, f"cdt_{token_id}.{secret}"


def data_files_holding(api: Api, needles: list[str]) -> list[tuple[str, str]]:
    """(file, needle) for each file under the engine's data directory whose bytes hold a needle (the
    store and its WAL, Temporal's database, the logs)."""
    root = Path(api.engine.env["CONCORDAT_DATA_DIR"])
    found = []
    for path in (p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [(str(path), n) for n in needles if n.encode() in data]
    return found


def only(entries: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [e for e in entries if all(e[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, entries)
    return found[0]


# --- each kind of refusal ------------------------------------------------------------------------


def test_every_401_is_recorded_with_the_tokens_id_and_never_its_secret(api: Api) -> None:
    mark = api.last_refusal()
    jo_token_id = api.tokens["jo"][len("cdt_") :].split(".")[0]
    unknown_id, unknown_secret, unknown = forged_token()
    wrong_secret = f"wrong-{secrets.token_urlsafe(24)}"
    malformed = f"not-a-token-{secrets.token_urlsafe(24)}"
    api.engine.ok("user", "add", "revoked-r", "--role", "jcu_lead", who="admin:root")
    issued = json.loads(api.engine.ok("token", "create", "revoked-r", "--json", who="admin:root"))
    api.engine.ok("token", "revoke", issued["id"], who="admin:root")
    revoked_secret = issued["token"].split(".", 1)[1]

    anon = api.anonymous
    problem(anon.get("/cases"), 401)
    problem(anon.get("/cases", headers={"Authorization": f"Bearer {malformed}"}), 401)
    problem(anon.get("/cases", headers={"Authorization": f"Bearer {unknown}"}), 401)
    problem(anon.get("/cases", headers={"Authorization": f"Bearer cdt_{jo_token_id}.{wrong_secret}"}), 401)
    problem(anon.post("/proposals", json=PROPOSAL, headers={"Authorization": f"Bearer {issued['token']}"}), 401)
    problem(anon.get("/me", headers={"Authorization": "Basic am86eA=="}), 401)

    entries = api.refusals(mark)
    assert [(e["door"], e["rule"], e["proven"]) for e in entries] == [("api", "AuthenticationError", False)] * 6
    assert [(e["actor"], e["command"]) for e in entries] == [
        ("unproven:no bearer token", "list_cases"),
        ("unproven:a malformed token", "list_cases"),
        (f"unproven:token {unknown_id}", "list_cases"),
        (f"unproven:token {jo_token_id}", "list_cases"),
        (f"unproven:token {issued['id']}", "start_proposal"),
        ("unproven:no bearer token", "me"),
    ]
    assert all(e["command_id"] == "" for e in entries)  # an unproven caller's key is not taken
    secrets_sent = [unknown_secret, wrong_secret, malformed, revoked_secret, api.tokens["jo"].split(".", 1)[1]]
    assert not any(secret in json.dumps(entries) for secret in secrets_sent)
    assert data_files_holding(api, secrets_sent) == []  # not in the store (nor its WAL), Temporal's, or a log


def test_every_403_of_the_tier_is_recorded_with_the_person_proven_and_once_per_command_id(api: Api) -> None:
    mark = api.last_refusal()
    k = key()
    for _ in range(2):  # the same refused command again: one refusal on the record
        problem(api.as_("sam").post("/proposals", json=PROPOSAL, headers={"Idempotency-Key": k}), 403)
    role = {"X-Concordat-Role": "lead_director"}
    assert "does not hold the role 'lead_director'" in problem(api.as_("multi").get("/cases", headers=role), 403)
    as_auditor = {"X-Concordat-Role": "auditor"}
    problem(api.as_("multi").post("/proposals", json=PROPOSAL, headers=as_auditor), 403)
    problem(api.as_("dan").get("/audit/refusals"), 403)
    problem(api.as_("multi").get("/audit/refusals", headers={"X-Concordat-Role": "jcu_lead"}), 403)
    assert api.as_("multi").get("/audit/refusals", params={"since": mark}).status_code == 200  # holds auditor

    entries = api.refusals(mark)
    assert len(entries) == 5 and {(e["door"], e["proven"]) for e in entries} == {("api", True)}
    sam = only(entries, actor="secretary:board:sam")
    assert (sam["command"], sam["rule"], sam["command_id"]) == ("start_proposal", "NotAllowedError", k)
    assert "it is for jcu_lead" in sam["reason"]
    # Not held, the role named is not recorded as theirs: they are recorded in the roles they hold.
    assert only(entries, actor="jcu_lead|auditor:multi")["command"] == "list_cases"
    assert only(entries, actor="auditor:multi")["reason"].startswith("role auditor may not start a proposal")
    assert only(entries, actor="lead_director:dan")["command"] == "audit_refusals"
    assert (
        only(entries, actor="jcu_lead:multi")["reason"]
        == "the refusal log is for auditors; multi may not read it as jcu_lead"
    )


def test_rule_refusals_are_recorded_once_whether_the_tier_or_the_worker_refused(api: Api) -> None:
    ref = api.as_("jo").post("/proposals", json=PROPOSAL).json()["reference"]
    mark = api.last_refusal()
    wrong_outcome, stale, closed, notice = key(), key(), key(), key()
    dan = api.as_("dan")
    problem(dan.post(f"/cases/{ref}/decisions", json={"stage": "jcu", "outcome": "recommend"}), 422)  # without a key
    problem(dan.post(f"/cases/{ref}/decisions", json={"stage": "jcu", "outcome": "approve"}, headers={"Idempotency-Key": wrong_outcome}), 422)  # fmt: skip
    dan.post(f"/cases/{ref}/decisions", json={"stage": "jcu", "outcome": "refer"}).raise_for_status()
    problem(dan.post(f"/cases/{ref}/decisions", json={"stage": "jcu", "outcome": "refer"}, headers={"Idempotency-Key": stale}), 409)  # fmt: skip
    api.as_("jo").post(f"/cases/{ref}/withdraw", json={"note": "superseded"}).raise_for_status()
    problem(api.as_("jo").post(f"/cases/{ref}/withdraw", json={}, headers={"Idempotency-Key": closed}), 409)
    early = {"letter_ref": "L/9", "effective": "2026-12-01"}
    problem(api.as_("gil").post("/terminations", json=early, headers={"Idempotency-Key": notice}), 422)
    # Not refusals: bad input, and nothing there.
    problem(dan.post(f"/cases/{ref}/decisions", json={"stage": "jcu"}), 422)
    problem(api.as_("jo").post("/proposals", json={**PROPOSAL, "value": "lots"}), 422)
    problem(dan.post("/cases/PRO-2099-0009/decisions", json={"stage": "jcu", "outcome": "refer"}), 404)

    keyless, *entries = api.refusals(mark)
    assert (keyless["rule"], keyless["actor"]) == ("OutcomeNotAllowedError", "lead_director:dan")
    assert keyless["command_id"]  # the id the API made for the command; recorded by the worker, not again
    # The worker's refusals carry the command id the store records (scoped to the person, route and
    # request: domain/idempotency.py); the tier's, the key as given.
    by_worker_id = scoped_command_id("dan", f"{ref}:decide", wrong_outcome, {"stage": "jcu", "outcome": "approve"})
    stale_id = scoped_command_id("dan", f"{ref}:decide", stale, {"stage": "jcu", "outcome": "refer"})
    assert [e["command_id"] for e in entries] == [by_worker_id, stale_id, closed, notice]
    by_worker, moved_on, by_tier, too_short = entries
    assert (by_worker["rule"], by_worker["actor"], by_worker["reference"]) == ("OutcomeNotAllowedError", "lead_director:dan", ref)  # fmt: skip
    assert (moved_on["rule"], moved_on["command"]) == ("WrongStageError", "decide")
    assert (by_tier["rule"], by_tier["command"], by_tier["actor"]) == ("CaseClosedError", "withdraw", "jcu_lead:jo")
    assert "is withdrawn; it takes no more commands" in by_tier["reason"]
    assert (too_short["rule"], too_short["command"], too_short["actor"]) == ("NoticeTooShortError", "serve_notice", "party_rep:CPCCG:gil")  # fmt: skip
    assert {e["door"] for e in entries} == {"api"} and all(e["proven"] for e in entries)


def sign_in_to_pages(api: Api, who: str) -> httpx.Client:
    pages = httpx.Client(base_url=api.engine.web, timeout=60)
    token = re.search(r'name="csrf_token" value="([^"]+)"', pages.get("/sign-in").text)
    assert token
    signed = pages.post("/sign-in", data={"csrf_token": token.group(1), "user_id": who, "password": PASSWORD})
    assert (signed.status_code, signed.headers.get("location")) == (303, "/"), signed.text
    return pages


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def test_the_pages_refusals_come_through_the_web_door_once(api: Api) -> None:
    ref = api.as_("jo").post("/proposals", json=PROPOSAL).json()["reference"]
    mark = api.last_refusal()
    dan, jo = sign_in_to_pages(api, "dan"), sign_in_to_pages(api, "jo")
    try:
        form = {"csrf_token": csrf_of(dan.get(f"/cases/{ref}")), "stage": "jcu", "outcome": "approve"}
        assert dan.post(f"/cases/{ref}/decide", data={**form, "command_id": "web-1"}).status_code == 422
        assert dan.post(f"/cases/{ref}/decide", data={**form, "outcome": "recommend"}).status_code == 422  # no id
        api.as_("jo").post(f"/cases/{ref}/withdraw", json={}).raise_for_status()
        form = {"csrf_token": csrf_of(jo.get("/start")), "note": "again", "command_id": "web-2"}
        assert jo.post(f"/cases/{ref}/withdraw", data=form).status_code == 409
    finally:
        dan.close()
        jo.close()
    first, keyless, closed = api.refusals(mark)
    assert (first["door"], first["command_id"], first["rule"], first["actor"]) == (
        "web",
        scoped_command_id("dan", f"{ref}:decide", "web-1", {"stage": "jcu", "outcome": "approve"}),
        "OutcomeNotAllowedError",
        "lead_director:dan",
    )  # by the worker, and not again by the tier
    assert (keyless["door"], keyless["rule"]) == ("web", "OutcomeNotAllowedError") and keyless["command_id"]
    assert (closed["door"], closed["command_id"], closed["rule"], closed["actor"]) == (
        "web",
        "web-2",
        "CaseClosedError",
        "jcu_lead:jo",
    )  # by the tier


# --- a stateful run ------------------------------------------------------------------------------

# Who gives the commands: people whose roles may or may not, and callers with no valid token.
RUN_PEOPLE = ["jo", "dan", "sam", "prue", "pia", "cara", "audrey", "pat", "multi"]
NO_TOKEN, UNKNOWN_TOKEN, REVOKED_TOKEN = "(no token)", "(unknown token)", "(revoked token)"
STAGES = ["jcu", "board", "programme_board", "pcc_decision", "cmet", "governing_body", "nowhere"]
OUTCOMES = ["refer", "approve", "reject", "recommend", "defer", "agree", "shrug"]
# Which answers are refusals. 401: no valid token. 403: a role that may not. 409: the case has moved on
# (closed, another stage, already decided). 422 *from a well-formed request*: a rule refused it (an
# outcome the stage does not allow, decided by the domain in the worker). A request that does not
# parse (422 from the request's own shape) is bad input, and 404 (no such case) is nothing there:
# neither is a refusal of a person, neither is recorded. 200/201: accepted, nothing recorded.
REFUSED = {401, 403, 409, 422}
ACCEPTED = {200, 201}
NOT_FOUND = 404


@dataclass
class Sent:
    who: str
    status: int
    command: str
    reference: str
    key: str
    claimed: str  # what a caller without a valid token is recorded as
    well_formed: bool = True
    body: Any = None

    @property
    def scoped(self) -> str:
        """The command id the store records for this key (domain/idempotency.py): what a refusal by
        the worker carries; a refusal by the tier carries the key as given."""
        return scoped_command_id(self.who, f"{self.reference}:{self.command}", self.key, self.body or {})


def test_a_stateful_run_leaves_exactly_one_refusal_per_refused_request(api: Api) -> None:
    api.engine.ok("user", "add", "gone", "--role", "jcu_lead", who="admin:root")
    revoked = json.loads(api.engine.ok("token", "create", "gone", "--json", who="admin:root"))
    api.engine.ok("token", "revoke", revoked["id"], who="admin:root")
    statuses: Counter[int] = Counter()

    class Run(RuleBasedStateMachine):
        cases = Bundle("cases")

        def __init__(self) -> None:
            super().__init__()
            self.mark = api.last_refusal()
            self.sent: list[Sent] = []

        def send(
            self, who: str, command: str, reference: str, path: str, body: Any, well_formed: bool = True
        ) -> httpx.Response:
            k, claimed = key(), ""
            headers = {"Idempotency-Key": k}
            if who in RUN_PEOPLE:
                client = api.as_(who)
            else:
                client = api.anonymous
                if who == NO_TOKEN:
                    claimed = "unproven:no bearer token"
                elif who == UNKNOWN_TOKEN:
                    token_id, _, token = forged_token()
                    headers["Authorization"] = f"Bearer {token}"
                    claimed = f"unproven:token {token_id}"
                else:
                    headers["Authorization"] = f"Bearer {revoked['token']}"
                    claimed = f"unproven:token {revoked['id']}"
            answer = client.post(path, json=body, headers=headers)
            assert answer.status_code in REFUSED | ACCEPTED | {NOT_FOUND}, (path, answer.status_code, answer.text)
            self.sent.append(Sent(who, answer.status_code, command, reference, k, claimed, well_formed, body))
            statuses[answer.status_code] += 1
            return answer

        @initialize(target=cases)
        def first_case(self) -> str:
            answer = api.as_("jo").post("/proposals", json=PROPOSAL)
            assert answer.status_code == 201, answer.text
            return str(answer.json()["reference"])

        @rule(target=cases, who=st.sampled_from([*RUN_PEOPLE, NO_TOKEN, UNKNOWN_TOKEN, REVOKED_TOKEN]))
        def start(self, who: str) -> Any:
            answer = self.send(who, "start_proposal", "", "/proposals", PROPOSAL)
            return str(answer.json()["reference"]) if answer.status_code == 201 else multiple()

        @rule(
            who=st.sampled_from([*RUN_PEOPLE, NO_TOKEN, UNKNOWN_TOKEN, REVOKED_TOKEN]),
            case=st.one_of(cases, st.just("PRO-2099-0009")),
            stage=st.sampled_from(STAGES),
            outcome=st.sampled_from(OUTCOMES),
        )
        def decide(self, who: str, case: str, stage: str, outcome: str) -> None:
            self.send(who, "decide", case, f"/cases/{case}/decisions", {"stage": stage, "outcome": outcome})

        @rule(who=st.sampled_from([*RUN_PEOPLE, NO_TOKEN]), case=cases)
        def withdraw(self, who: str, case: str) -> None:
            self.send(who, "withdraw", case, f"/cases/{case}/withdraw", {"note": "no longer needed"})

        @rule(who=st.sampled_from(RUN_PEOPLE), case=cases)
        def malformed(self, who: str, case: str) -> None:
            """A request that does not parse (no outcome): bad input, not a refusal."""
            self.send(who, "decide", case, f"/cases/{case}/decisions", {"stage": "jcu"}, well_formed=False)

        def teardown(self) -> None:
            entries = api.refusals(self.mark)
            refused = [s for s in self.sent if s.status in REFUSED and s.well_formed]
            assert len(entries) == len(refused), (entries, refused)
            proven = {s.key: s for s in refused if s.status != 401}
            given = {s.scoped: k for k, s in proven.items()}
            recorded = Counter(given.get(e["command_id"], e["command_id"]) for e in entries if e["proven"])
            assert recorded == Counter(proven.keys()), (recorded, proven)
            for e in entries:
                assert e["door"] == "api"
                if e["proven"]:
                    s = proven[given.get(e["command_id"], e["command_id"])]
                    assert e["actor"].rsplit(":", 1)[1] == s.who and e["reference"] == s.reference, (e, s)
                    assert e["command"] == s.command, (e, s)
            assert Counter(e["actor"] for e in entries if not e["proven"]) == Counter(
                s.claimed for s in refused if s.status == 401
            )

    run_state_machine_as_test(
        Run,
        settings=settings(
            max_examples=20,
            stateful_step_count=15,
            deadline=None,
            database=None,
            derandomize=True,  # the same run each time: it is known to meet every kind of answer below
            phases=[Phase.explicit, Phase.generate],  # no shrinking: each step is a real request
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    assert set(statuses) >= {200, 201, 401, 403, 404, 409, 422}, statuses  # the run met every kind of answer
