"""The public record in a browser (Debian's chromium, driven by Playwright) against `concordat up`,
nobody signed in: the meetings calendar, an agenda with an exempt item left out, the forward plan and
the decision notices and register. Every page passes axe-core with no serious or critical violation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.test_browser import accessible, browser  # noqa: F401 - the module's browser fixture
from tests.e2e.conftest import Engine, _env, free_port, running_engine
from tests.web.test_public_pages import public_policy

JO, DAN, SAM = "jcu_lead:jo", "lead_director:dan", "secretary:board:sam"
PAT, PIA = "secretary:programme_board:pat", "secretary:pcc_decision:pia"
SECRET = "Closure of the Riverside unit"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("public")
    env = _env(tmp, free_port())
    env["CONCORDAT_POLICY_FILE"] = str(public_policy(Path(tmp)))
    with running_engine(tmp, env) as engine:

        def start(title: str, *more: str) -> str:
            return engine.ok("proposal", "start", "--title", title, *more, who=JO).strip()

        shown = start(
            "Community paediatrics pathway", "--kind", "pathway_change", "--value", "180000", "--parties", "PCC,CCC"
        )
        hidden = start(SECRET, "--kind", "pathway_change", "--value", "180000", "--parties", "PCC,CCC")
        council = start(
            "Speech therapy for under-fives", "--kind", "service_commissioning", "--value", "300000", "--parties", "PCC"
        )
        for ref in (shown, hidden, council):
            engine.ok("decide", ref, "--stage", "jcu", "--outcome", "refer", who=DAN)
        mtg = json.loads(engine.ok("meeting", "schedule", "--forum", "board", "--json", who=SAM))["reference"]
        engine.ok("meeting", "agenda", mtg, "--case", shown, "--case", hidden, "--exempt", hidden, who=SAM)
        board = ("--stage", "board", "--outcome", "recommend", "--minutes-ref", "BRD-WP-1", "--written-procedure")
        engine.ok("decide", council, *board, who=SAM)
        engine.ok(
            "decide", council, "--stage", "programme_board", "--outcome", "recommend", "--minutes-ref", "PB-1", who=PAT
        )
        engine.ok("forward-plan", "add", council, "--forum", "pcc_decision", who=PIA)
        engine.ok(
            "decide", council, "--stage", "pcc_decision", "--outcome", "approve", "--minutes-ref", "CAB-1", who=PIA
        )
        yield engine, {"shown": shown, "hidden": hidden, "council": council, "meeting": mtg}


def test_the_public_pages_pass_axe_and_show_no_exempt_item(
    browser: Browser,  # noqa: F811 - the fixture imported above
    site: tuple[Engine, dict[str, str]],
) -> None:
    engine, refs = site
    page = browser.new_context(base_url=engine.web).new_page()
    page.goto("/public")
    expect(page).to_have_title("Public record – Concordat")
    accessible(page)
    page.get_by_role("link", name="Meetings calendar").click()
    expect(page.get_by_role("heading", name="Meetings calendar")).to_be_visible()
    accessible(page)
    page.get_by_role("link", name=refs["meeting"]).click()
    expect(page.get_by_role("heading", name="Agenda")).to_be_visible()
    expect(page.get_by_text(refs["shown"])).to_be_visible()
    assert SECRET not in page.content() and refs["hidden"] not in page.content()
    accessible(page)
    page.get_by_role("link", name="Forward plan").click()
    expect(page.get_by_role("cell", name=refs["council"])).to_be_visible()
    accessible(page)
    page.get_by_role("link", name="Decision notices and register").click()
    expect(page.get_by_role("heading", name="Decision notices", exact=True)).to_be_visible()
    expect(page.get_by_text(f"{refs['council']}: Speech therapy for under-fives").first).to_be_visible()
    assert SECRET not in page.content()
    accessible(page)
