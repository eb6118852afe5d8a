"""Idempotency keys on the running engine are scoped to the person and the route: another person's
key gives them nothing of the first request, authorisation runs before any replay, and the same key
with another body is a 422 that writes nothing (as payment APIs do). Starts and case commands both,
over HTTP and on the CLI's `--command-id`."""

from __future__ import annotations

import json

from tests.api.conftest import Api, problem
from tests.api.test_api import PROPOSAL

DISPUTE = {"against": ["CCC"], "subject": "Share of the overspend", "description": "in full"}
REFER = {"stage": "jcu", "outcome": "refer", "minutes_ref": "JCU/2026/20", "note": "to the board"}


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def history(api: Api, ref: str) -> list[dict[str, object]]:
    return api.as_("audrey").get(f"/cases/{ref}/history").json()


def test_another_persons_key_gives_them_a_command_of_their_own_not_the_first_answer(api: Api) -> None:
    proposal = api.as_("jo").post("/proposals", json=PROPOSAL, headers=key("idem-shared"))
    assert proposal.status_code == 201, proposal.text
    before = api.events()
    dispute = api.as_("pat").post("/disputes", json=DISPUTE, headers=key("idem-shared"))
    assert dispute.status_code == 201, dispute.text
    ref = dispute.json()["reference"]
    assert ref.startswith("DSP-") and ref != proposal.json()["reference"]
    assert api.events() > before  # recorded, with pat as its author
    assert [(h["event"], h["actor_id"]) for h in history(api, ref)] == [("Raised", "pat")]
    # The same person's key on another route is another command too.
    other = api.as_("jo").post("/proposals", json={**PROPOSAL, "title": "Another"}, headers=key("idem-dispute"))
    assert other.status_code == 201 and other.json()["reference"] != proposal.json()["reference"]


def test_a_copied_key_is_no_way_past_authorisation(api: Api) -> None:
    ref = api.as_("jo").post("/proposals", json=PROPOSAL, headers=key("idem-start-jo")).json()["reference"]
    done = api.as_("dan").post(f"/cases/{ref}/decisions", json=REFER, headers=key("idem-d-dan"))
    assert done.status_code == 200, done.text
    recorded = str(history(api, ref)[-1]["command_id"])
    assert recorded.startswith("k1:") and "idem-d-dan" not in recorded  # the key itself is never recorded
    before, since = api.events(), api.last_refusal()
    board = {"stage": "board", "outcome": "recommend", "minutes_ref": "MIN-2026-01"}
    for copied in ("idem-d-dan", recorded):
        for who in ("audrey", "jo", "pat"):
            # The decision the case awaits: for the board's secretary only, whatever key comes with it.
            problem(api.as_(who).post(f"/cases/{ref}/decisions", json=board, headers=key(copied)), 403)
            # The very request the key was first used for: no replay of dan's answer, and no word of
            # how the case moved on either: they could never have given it (authorisation first).
            refused = problem(api.as_(who).post(f"/cases/{ref}/decisions", json=REFER, headers=key(copied)), 403)
            assert "may not" in refused, refused
    # The person who could have given it, with a key of their own, learns that the case moved on.
    moved_on = problem(api.as_("dan").post(f"/cases/{ref}/decisions", json=REFER, headers=key("idem-d-dan-2")), 409)
    assert "awaiting board, not jcu" in moved_on
    problem(api.as_("audrey").post("/proposals", json=PROPOSAL, headers=key("idem-start-jo")), 403)
    assert api.events() == before
    refused = api.refusals(since)
    seen = {(r["actor"].rpartition(":")[2], r["command_id"], r["rule"]) for r in refused}
    assert {("audrey", "idem-d-dan", "NotAllowedError"), ("pat", "idem-d-dan", "NotAllowedError")} <= seen, seen
    # The CLI's --command-id is the same key under the same rule.
    api.engine.token_of("auditor:audrey")  # signing the CLI in writes to the directory: before counting
    before = api.events()
    line = api.engine.refused(
        "decide",
        ref,
        "--stage",
        "board",
        "--outcome",
        "recommend",
        "--minutes-ref",
        "MIN-2026-01",
        "--command-id",
        "idem-d-dan",
        who="auditor:audrey",
    )
    assert "may not" in line or "not allowed" in line, line
    assert api.events() == before


def test_the_same_key_with_another_body_is_422_and_with_the_same_body_the_first_answer(api: Api) -> None:
    jo, dan = api.as_("jo"), api.as_("dan")
    first = jo.post("/proposals", json=PROPOSAL, headers=key("idem-body"))
    assert first.status_code == 201, first.text
    before = api.events()
    again = jo.post("/proposals", json=PROPOSAL, headers=key("idem-body"))
    assert (again.status_code, again.json()) == (201, first.json())
    changed = problem(jo.post("/proposals", json={**PROPOSAL, "value": "1"}, headers=key("idem-body")), 422)
    assert changed.startswith("Idempotency-Key 'idem-body' was used for a different request"), changed
    assert api.events() == before

    ref = first.json()["reference"]
    decided = dan.post(f"/cases/{ref}/decisions", json=REFER, headers=key("idem-d"))
    assert decided.status_code == 200, decided.text
    before = api.events()
    replay = dan.post(f"/cases/{ref}/decisions", json=REFER, headers=key("idem-d"))
    assert (replay.status_code, replay.json()) == (200, decided.json())
    other = problem(dan.post(f"/cases/{ref}/decisions", json={**REFER, "note": "x"}, headers=key("idem-d")), 422)
    assert "was used for a different request" in other
    withdraw = jo.post(f"/cases/{ref}/withdraw", json={"note": "a"}, headers=key("idem-w"))
    assert withdraw.status_code == 200, withdraw.text
    assert "different request" in problem(
        jo.post(f"/cases/{ref}/withdraw", json={"note": "b"}, headers=key("idem-w")), 422
    )
    assert jo.post(f"/cases/{ref}/withdraw", json={"note": "a"}, headers=key("idem-w")).json() == withdraw.json()
    assert api.events() == before + 1  # the withdrawal, once
    # The CLI repeats the same way: the same key and options, the same case; other options, refused.
    cli = ("proposal", "start", "--title", "CLI repeat", "--kind", "procurement", "--value", "1000", "--parties", "PCC")
    opened = api.engine.ok(*cli, "--command-id", "idem-cli", who="jcu_lead:jo").strip()
    assert api.engine.ok(*cli, "--command-id", "idem-cli", who="jcu_lead:jo").strip() == opened
    count = api.events()
    line = api.engine.refused(*cli[:-1], "CCC", "--command-id", "idem-cli", who="jcu_lead:jo")
    assert "was used for a different request" in line, line
    assert api.events() == count


def test_a_replay_needs_the_role_the_command_was_given_in(api: Api) -> None:
    api.engine.ok("user", "add", "idem-dl", "--role", "lead_director", "--role", "auditor", who="admin:root")
    api.tokens["idem-dl"] = json.loads(api.engine.ok("token", "create", "idem-dl", "--json", who="admin:root"))["token"]
    ref = api.as_("jo").post("/proposals", json=PROPOSAL).json()["reference"]
    client = api.as_("idem-dl")
    done = client.post(f"/cases/{ref}/decisions", json=REFER, headers=key("idem-revoked"))
    assert done.status_code == 200, done.text
    assert client.post(f"/cases/{ref}/decisions", json=REFER, headers=key("idem-revoked")).json() == done.json()
    api.engine.ok("user", "revoke", "idem-dl", "--role", "lead_director", who="admin:root")
    before = api.events()
    problem(client.post(f"/cases/{ref}/decisions", json=REFER, headers=key("idem-revoked")), 403)
    assert api.events() == before
