"""A browser (Debian's chromium, driven by Playwright) against `concordat up`: sign in, start a
proposal, refer it as the Lead Director, record the board's decision as its secretary, see it on
the timeline, meet a refused form's error, and find no decision form as the auditor. Every page
visited passes axe-core with no serious or critical violation. The case page's screenshot is the
README's (`docs/screenshots/case-page.png`): the test writes it to a temporary directory, and over
the README's copy only when CONCORDAT_REFRESH_SCREENSHOTS=1, so a test run leaves the checkout as it
found it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.conftest import Engine, _env, free_port, running_engine

PASSWORD = "a long enough password"
PEOPLE = {
    "jo": "jcu_lead",
    "dan": "lead_director",
    "sam": "secretary:board",
    "audrey": "auditor",
    "pat": "party_rep:PCC",
}
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "case-page.png"
INSTALL = "install Debian's chromium (`apt-get install chromium`; .ci/run does this on CI)"


def chromium() -> str | None:
    return shutil.which("chromium") or next((p for p in ("/usr/bin/chromium",) if Path(p).exists()), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"no chromium on this CI machine: {INSTALL}", pytrace=False)
        pytest.skip(f"the browser tests need chromium: {INSTALL}")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """`concordat up` under the shipped policy, as a new user's: the board decides at its meetings or
    by written procedure."""
    tmp = tmp_path_factory.mktemp("browser")
    env = _env(tmp, free_port())
    del env["CONCORDAT_POLICY_FILE"]
    with running_engine(tmp, env) as engine:
        for who, role in PEOPLE.items():
            engine.ok("user", "add", who, "--role", role, "--password-stdin", stdin=PASSWORD + "\n", who="admin:root")
        yield engine


AXE = Axe()


def accessible(page: Page) -> None:
    """axe-core on the page as it is now: no serious or critical violation."""
    results = AXE.run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, f"{page.url}: " + "; ".join(f"{v['id']} ({v['impact']}): {v['help']}" for v in bad)


def signed_in(browser: Browser, site: Engine, who: str) -> Page:
    page = browser.new_context(base_url=site.web).new_page()
    page.goto("/")
    expect(page).to_have_title("Sign in – Concordat")
    accessible(page)
    page.get_by_label("User id").fill(who)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your work")).to_be_visible()
    accessible(page)
    return page


def screenshot_path(tmp_path: Path) -> Path:
    """The README's screenshot when asked to refresh it, else a file of this test's own."""
    if os.environ.get("CONCORDAT_REFRESH_SCREENSHOTS") == "1":
        return README_SCREENSHOT
    return tmp_path / README_SCREENSHOT.name


def test_a_proposal_from_the_browser_to_the_boards_decision(browser: Browser, site: Engine, tmp_path: Path) -> None:
    # A wrong password: one clear answer, no hint which half was wrong.
    page = browser.new_context(base_url=site.web).new_page()
    page.goto("/sign-in")
    page.get_by_label("User id").fill("jo")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("The user id or password is not right")
    accessible(page)

    jo = signed_in(browser, site, "jo")
    jo.get_by_role("link", name="Start a case").click()
    accessible(jo)
    jo.get_by_role("link", name="Start a proposal").click()
    accessible(jo)
    jo.get_by_label("Title").fill("Community paediatrics pathway")
    jo.get_by_label("Kind of proposal").select_option("pathway_change")
    jo.get_by_label("Annual value in pounds").fill("four hundred thousand")
    jo.get_by_label("PCC", exact=True).check()
    jo.get_by_label("CPCCG", exact=True).check()
    jo.get_by_role("button", name="Start proposal").click()
    # Refused by the rules: the error by the field and in the summary, what was typed kept.
    expect(jo.locator(".govuk-error-summary")).to_contain_text("value: not an amount in pounds")
    expect(jo.get_by_label("Title")).to_have_value("Community paediatrics pathway")
    expect(jo.get_by_label("CPCCG", exact=True)).to_be_checked()
    accessible(jo)
    jo.get_by_label("Annual value in pounds").fill("400000")
    jo.get_by_role("button", name="Start proposal").click()
    expect(jo.get_by_role("heading", name="Community paediatrics pathway")).to_be_visible()
    reference = jo.locator(".govuk-caption-l").inner_text()
    assert reference.startswith("PRO-")
    expect(jo.get_by_text("Record the jcu decision")).to_have_count(0)  # the JCU lead does not decide there
    accessible(jo)

    dan = signed_in(browser, site, "dan")
    expect(dan.get_by_role("link", name=f"{reference}: Community paediatrics pathway")).to_be_visible()
    dan.get_by_role("link", name=f"{reference}: Community paediatrics pathway").click()
    dan.get_by_label("refer", exact=True).check()
    dan.get_by_label("Minutes reference").fill("JCU/2026/11")
    dan.get_by_role("button", name="Record decision").click()
    expect(dan.get_by_role("alert")).to_contain_text("Recorded: decision")

    sam = signed_in(browser, site, "sam")
    sam.goto(f"/cases/{reference}")
    expect(sam.get_by_role("heading", name="Record the board decision")).to_be_visible()
    accessible(sam)
    sam.get_by_label("Minutes reference").fill("BOARD/2026/12")
    sam.get_by_role("button", name="Record decision").click()  # no outcome chosen
    expect(sam.locator(".govuk-error-summary")).to_contain_text("Choose an outcome")
    expect(sam.get_by_label("Minutes reference")).to_have_value("BOARD/2026/12")
    accessible(sam)
    sam.get_by_label("recommend", exact=True).check()
    sam.get_by_role("button", name="Record decision").click()  # the board meets: no meeting named
    expect(sam.locator(".govuk-error-summary")).to_contain_text("a decision of board is taken at one of its meetings")
    expect(sam.get_by_label("Minutes reference")).to_have_value("BOARD/2026/12")
    accessible(sam)
    sam.get_by_label("recommend", exact=True).check()
    sam.get_by_label("Taken by written procedure, without a meeting").check()
    sam.get_by_role("button", name="Record decision").click()
    expect(sam.get_by_role("alert")).to_contain_text("Recorded: decision")
    timeline = sam.locator(".app-timeline")
    expect(timeline.locator(".app-timeline__item").first).to_contain_text("sam (secretary:board) at board")
    expect(timeline).to_contain_text("Minutes: BOARD/2026/12")
    expect(timeline).to_contain_text("dan (lead_director) at jcu")
    accessible(sam)
    shot = screenshot_path(tmp_path)
    shot.parent.mkdir(parents=True, exist_ok=True)
    sam.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")

    audrey = signed_in(browser, site, "audrey")
    audrey.goto(f"/cases/{reference}")
    expect(audrey.get_by_role("heading", name="Community paediatrics pathway")).to_be_visible()
    expect(audrey.get_by_role("button", name="Record decision")).to_have_count(0)
    for link, heading in [("Cases", "Cases"), ("Decisions register", "Decisions register"), ("Audit", "Audit")]:
        audrey.get_by_role("link", name=link, exact=True).click()
        expect(audrey.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        accessible(audrey)
    expect(audrey.locator("body")).to_contain_text("Intact")
    audrey.get_by_role("button", name="Sign out").click()
    expect(audrey).to_have_title("Sign in – Concordat")


def test_a_party_raises_a_dispute_from_the_browser(browser: Browser, site: Engine) -> None:
    pat = signed_in(browser, site, "pat")
    pat.get_by_role("link", name="Start a case").click()
    expect(pat.get_by_role("link", name="Start a proposal")).to_have_count(0)  # not for a party's representative
    pat.get_by_role("link", name="Raise a dispute").click()
    accessible(pat)
    pat.get_by_label("What the dispute is about").fill("Share of the therapy overspend")
    pat.get_by_role("button", name="Raise a dispute").click()  # against nobody
    expect(pat.locator(".govuk-error-summary")).to_contain_text("Choose the parties the concern is against")
    expect(pat.get_by_label("What the dispute is about")).to_have_value("Share of the therapy overspend")
    accessible(pat)
    pat.get_by_label("CCC", exact=True).check()
    pat.get_by_role("button", name="Raise a dispute").click()
    expect(pat.get_by_role("alert")).to_contain_text("Recorded: start")
    expect(pat.locator(".govuk-caption-l")).to_contain_text("DSP-")
    expect(pat.locator(".app-timeline")).to_contain_text("pat (party_rep:PCC)")
    accessible(pat)


def test_the_pages_and_the_api_docs_run_under_the_content_security_policy(browser: Browser, site: Engine) -> None:
    """The policy allows this site's own scripts and styles only: Swagger UI (vendored) still renders
    the API's operations, and no page the browser loads reports a blocked script, style or image."""
    page = browser.new_context(base_url=site.web).new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto("/api/v1/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=15_000)
    expect(page.get_by_text("/api/v1/cases").first).to_be_visible()
    page.goto("/sign-in")
    expect(page).to_have_title("Sign in – Concordat")
    assert not blocked, blocked
    assert all(url.startswith(site.web) or url.startswith("data:") for url in requests), requests
