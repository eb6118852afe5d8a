"""No input breaks in, stops the engine or fools a reader (issue 13, "done when"): every text field of
every command is fed NUL, control, ANSI-escape, bidi and zero-width characters, and a 10 MB string;
every amount 10^30, `true`, Arabic-Indic digits, NaN and 1e400; on SQLite and on PostgreSQL. Each is
refused with a 4xx naming the field, and nothing is written. Markup (`[/bold]`, `<script>`) is stored
as it was given and shown as text. A normal case started afterwards reaches the views: the projections
kept running."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Api, api_on, problem
from tests.api.test_api import PROPOSAL
from tests.conftest import new_database
from tests.e2e.conftest import _env, free_port, running_engine

REF = {"proposal": "PRO-2026-9001", "dispute": "DSP-2026-9001", "termination": "TRM-2026-9001"}
VARIATION = {
    "provider": "Hinchingbrooke",
    "contract_ref": "C-14",
    "reason": "contract_performance_notice",
    "value_change": -40000,
    "parties": "PCC,CCC",
    "effective": "2099-04-01",
}
# Each command over the API: who sends it, its route, a body that is good but for the field under test,
# and its text fields. (Case commands name a case that need not exist: the body is refused first.)
COMMANDS: list[tuple[str, str, dict[str, Any], list[str]]] = [
    ("jo", "/proposals", PROPOSAL, ["title", "kind"]),
    ("pat", "/disputes", {"against": ["CCC"], "subject": "S", "description": "D"}, ["subject", "description", "case"]),
    ("gil", "/terminations", {"letter_ref": "L/1", "year_end": True}, ["letter_ref"]),
    ("jo", "/variations", VARIATION, ["provider", "contract_ref", "reason", "title"]),
    ("jo", "/funding-changes", {"fund": "PH", "change": {"PCC": "-100"}}, ["fund", "title"]),
    ("jo", "/funds", {"name": "Better Care", "type": "pooled", "balance": 100}, ["name"]),
    (
        "dan",
        f"/cases/{REF['proposal']}/decisions",
        {"stage": "jcu", "outcome": "refer", "stage_outcome": "approve"},
        ["stage", "outcome", "minutes_ref", "note", "stage_outcome"],
    ),
    ("jo", f"/cases/{REF['proposal']}/withdraw", {}, ["note"]),
    ("dan", f"/cases/{REF['dispute']}/resolve", {"outcome": "resolved"}, ["note"]),
    ("pat", f"/cases/{REF['dispute']}/nominate", {"mediator": "mo"}, ["mediator", "note"]),
    ("cy", f"/cases/{REF['dispute']}/refuse", {}, ["note"]),
    ("dan", f"/cases/{REF['dispute']}/appoint", {"letter_ref": "A/1"}, ["letter_ref"]),
    ("mo", f"/cases/{REF['dispute']}/findings", {"findings": "F", "cost": 100}, ["findings"]),
    ("dan", f"/cases/{REF['dispute']}/extend", {}, ["note"]),
    ("jo", "/cases/VAR-2026-9001/inform-ce", {}, ["note"]),
]
REFUSED_TEXT = {
    "NUL": "a\x00b",
    "a control character": "a\x07b",
    "an ANSI escape": "\x1b[31mred\x1b[0m",
    "a C1 control (CSI)": "a\x9b31mb",
    "a bidi override": "abc\u202edcba",
    "a bidi isolate": "abc\u2066x\u2069",
    "only zero-width characters": "\u200b\u200d\ufeff",
    "only spaces and zero-width": " \u200b \u2060 ",
    "a line separator": "a\u2028b",
    "10 MB": "x" * 10_000_000,
}
# Raw JSON for the amount: some (1e400, NaN) are not values Python's json would send.
REFUSED_AMOUNTS = {
    "10^30": "1" + "0" * 30,
    "true": "true",
    "Arabic-Indic digits": json.dumps("١٢٣"),
    "a number beyond a float": "1e400",
    "NaN": "NaN",
    "more than the policy's maximum": "1000000001",
    "a string beyond it": json.dumps("£1,000,000,001"),
}
AMOUNTS = [
    ("jo", "/proposals", PROPOSAL, "value"),
    ("jo", "/variations", VARIATION, "value_change"),
    ("jo", "/funds", {"name": "Better Care", "type": "pooled", "balance": 100}, "balance"),
    ("mo", f"/cases/{REF['dispute']}/findings", {"findings": "F", "cost": 100}, "cost"),
]
MARKUP = "Budget [/bold] review [link=https://evil.example]x[/link] <script>alert(1)</script> [conceal]y"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp: Path = tmp_path_factory.mktemp(f"limits-{request.param}")
    env = _env(tmp, free_port())
    if request.param == "postgres":
        env["CONCORDAT_DATABASE_URL"] = new_database(request.getfixturevalue("postgres_server"))
    with running_engine(tmp, env) as engine, api_on(engine) as api:
        yield api


def _post_raw(api: Api, who: str, path: str, body: dict[str, Any], field: str, raw: str) -> Any:
    """POST `body` with `field` set to the JSON text `raw`, as sent (not re-encoded)."""
    text = json.dumps({k: v for k, v in body.items() if k != field})
    text = text[:-1] + (", " if len(text) > 2 else "") + f'"{field}": {raw}' + "}"
    return api.as_(who).post(path, content=text.encode(), headers={"Content-Type": "application/json"})


def test_every_text_field_refuses_what_could_break_a_store_or_fool_a_reader(store_api: Api) -> None:
    api = store_api
    before, since = api.events(), api.last_refusal()
    for who, path, body, fields in COMMANDS:
        for field in fields:
            for what, bad in REFUSED_TEXT.items():
                answer = api.as_(who).post(path, json={**body, field: bad})
                detail = problem(answer, 422)
                assert detail.startswith(field), (path, field, what, detail)
                assert len(detail) < 300, (path, field, what)  # one line, never the value echoed whole
    for who, path, body, field in AMOUNTS:
        for what, raw in REFUSED_AMOUNTS.items():
            answer = _post_raw(api, who, path, body, field, raw)
            detail = problem(answer, 422)
            assert field in detail, (path, field, what, detail)
    assert api.events() == before  # nothing written
    assert api.refusals(since) == []  # bad input is the request's own mistake, not a rule's refusal
    api.engine.token_of("jcu_lead:jo")  # signing the CLI in writes to the directory: before counting
    before = api.events()

    # The same rules hold on the command line, naming the option.
    line = api.engine.refused(
        "proposal",
        "start",
        "--title",
        "a\x07b",
        "--kind",
        "pathway_change",
        "--value",
        "1",
        "--parties",
        "PCC",
        who="jcu_lead:jo",
    )
    assert line.startswith("concordat: --title:") and "control character" in line, line
    for amount in ("١٢٣", "1" + "0" * 30):
        line = api.engine.refused(
            "proposal",
            "start",
            "--title",
            "T",
            "--kind",
            "pathway_change",
            "--value",
            amount,
            "--parties",
            "PCC",
            who="jcu_lead:jo",
        )
        assert "value" in line and "\x1b" not in line, line
    assert api.events() == before

    # Afterwards, a normal case reaches the views: nothing stopped the projections.
    ref = api.as_("jo").post("/proposals", json=PROPOSAL).json()["reference"]
    listed = api.as_("jo").get("/cases", params={"limit": 500}).json()
    assert ref in [row["reference"] for row in listed["items"]] and listed["lag_events"] == 0, listed


def test_markup_is_stored_as_given_and_shown_as_text(store_api: Api) -> None:
    api = store_api
    answer = api.as_("jo").post("/proposals", json={**PROPOSAL, "title": MARKUP})
    assert answer.status_code == 201, answer.text
    ref = answer.json()["reference"]
    note = "First line [/bold]\n\tsecond <b>line</b>\r\nthird"
    decided = api.as_("dan").post(f"/cases/{ref}/decisions", json={"stage": "jcu", "outcome": "refer", "note": note})
    assert decided.status_code == 200, decided.text
    assert api.as_("jo").get(f"/cases/{ref}").json()["title"] == MARKUP
    notes = [h["changes"].get("note") for h in api.as_("audrey").get(f"/cases/{ref}/history").json()]
    assert "First line [/bold]\n\tsecond <b>line</b>\nthird" in notes  # kept, line breaks made one kind
    for command in (("show", ref), ("history", ref), ("list",)):
        shown = api.engine.ok(*command, who="jcu_lead:jo")
        assert "[/bold]" in shown and "\x1b" not in shown, command
    assert "<script>alert(1)</script>" in api.engine.ok("show", ref, who="jcu_lead:jo")
    listed = api.as_("jo").get("/cases", params={"limit": 500}).json()
    assert MARKUP in [row["title"] for row in listed["items"]]
