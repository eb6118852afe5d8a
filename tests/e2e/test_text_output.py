"""Everything shown is text, never markup: case text that rich would read as markup, and characters a
terminal would act on, print as inert text in `list`, `show` and `history`; CSV cells a spreadsheet
would run as formulas are neutralised (OWASP "CSV Injection") in every export."""

from __future__ import annotations

import csv
import dataclasses
import io
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from concordat import bootstrap, render
from concordat.cli import _fail as fail
from concordat.cli import app as cli
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from tests.people import token_for

LEAD, DAN = Actor.parse("jcu_lead:jo"), Actor.parse("lead_director:dan")
MARKUP = [
    "Budget [/bold] review",
    "[conceal]hidden[/conceal]",
    "[link=https://evil.example]click[/link]",
    "[draft]",
    "[bold red]loud[/]",
    ":warning: emoji code",
]
# Written straight into the store: what the command boundary may refuse today must still print inert
# if an older release stored it.
HOSTILE = "Safe\x1b[2J\x1b]8;;https://evil.example\x07link\x1b]8;;\x07 \u202eevil\u202c\rmore\x07\x00end"


@pytest.fixture
def cli_env(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CONCORDAT_DATA_DIR", str(sqlite_settings.data_dir))
    monkeypatch.setenv("CONCORDAT_DATABASE_URL", "")
    app = bootstrap.open_cases(sqlite_settings)
    monkeypatch.setenv("CONCORDAT_TOKEN", token_for(app, "auditor:audrey"))  # signed in as Audrey
    app.close()
    return sqlite_settings


def start(app: CaseService, title: str, note: str = "", minutes_ref: str = "") -> str:
    ref = app.start_proposal(
        actor=LEAD,
        command_id=str(uuid.uuid4()),
        title=title,
        kind="procurement",
        value_pence=1_000,
        parties=["PCC"],
        public_health=False,
    ).reference
    app.decide(
        ref, actor=DAN, stage="jcu", outcome="refer", note=note, minutes_ref=minutes_ref, command_id=str(uuid.uuid4())
    )
    return ref


def store_hostile(app: CaseService, template: str, reference: str) -> None:
    """A new case titled HOSTILE, and a third event of `template` (a decision) noted HOSTILE."""
    events = [
        app.mapper.to_domain_event(n)
        for n in app.recorder.select_notifications(start=1, limit=1000)
        if n.topic.endswith(("Proposal.Started", "StagedCase.Decided"))
    ]
    first = next(e for e in events if getattr(e, "reference", None) == template)
    decided = next(e for e in events if e.originator_id == first.originator_id and e.originator_version == 2)
    app.recorder.insert_events(
        [
            app.mapper.to_stored_event(
                dataclasses.replace(first, originator_id=uuid.uuid4(), reference=reference, title=HOSTILE)
            ),
            app.mapper.to_stored_event(
                dataclasses.replace(decided, originator_version=3, note=HOSTILE, minutes_ref=HOSTILE)
            ),
        ]
    )


def run_views(settings: Settings, app: CaseService) -> None:
    newest = app.max_notification_id()
    for runner in bootstrap.projection_runners(settings):
        with runner:
            runner.wait(newest, timeout=10)


def invoke(*args: str) -> str:
    done = CliRunner().invoke(cli, list(args))
    assert done.exit_code == 0, (args, done.output, done.exception)
    return done.stdout


def assert_inert(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output and "\x00" not in output and "\r" not in output
    assert "\u202e" not in output and "\u202c" not in output


def test_markup_in_case_text_prints_literally_in_list_show_and_history(cli_env: Settings) -> None:
    app = bootstrap.open_cases(cli_env)
    refs = [start(app, title, note=f"note {title}", minutes_ref=f"[i]{n}[/i]") for n, title in enumerate(MARKUP)]
    run_views(cli_env, app)

    listed = invoke("list")
    for title in MARKUP:
        assert title in listed, title
    for n, (ref, title) in enumerate(zip(refs, MARKUP, strict=True)):
        shown = invoke("show", ref)
        assert f"{ref}  {title}" in shown
        assert f"minutes [i]{n}[/i]" in shown and f"note {title}" in shown
        assert f"title={title}" in invoke("history", ref).replace("\n", "")
    assert "⚠" not in listed  # emoji codes stay codes


def test_escape_sequences_control_and_bidi_characters_never_reach_the_terminal(cli_env: Settings) -> None:
    app = bootstrap.open_cases(cli_env)
    template = start(app, "Template")
    store_hostile(app, template, "PRO-2026-0777")
    run_views(cli_env, app)
    for output in (invoke("list"), invoke("show", template), invoke("history", template)):
        assert_inert(output)
        assert "Safelink evil" in output.replace("\n", "")


def test_inert_removes_whole_escape_sequences_and_keeps_ordinary_text() -> None:
    assert render.inert("a\x1b[31mred\x1b[0m b") == "ared b"
    assert render.inert("x\x1b]8;;https://e.example\x1b\\y") == "xy"
    assert (
        render.inert("\u05e9\u05dc\u05d5\u05dd caf\u00e9 \u2014 \U0001f600\ttab\nline")
        == "\u05e9\u05dc\u05d5\u05dd caf\u00e9 \u2014 \U0001f600 tab\nline"
    )


@pytest.mark.parametrize("cell", ['=HYPERLINK("https://evil.example")', "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_a_csv_cell_a_spreadsheet_would_run_is_prefixed_with_a_quote(cell: str) -> None:
    out = io.StringIO()
    render.export(
        iter(
            [
                {
                    "reference": cell,
                    "originator_id": "id",
                    "version": 1,
                    "event": "Started",
                    "recorded_at": "2026-01-01",
                    "actor_id": cell,
                    "actor_role": "r",
                    "command_id": cell,
                    "workflow_id": "",
                    "policy_hash": "",
                    "prev_hash": "",
                    "hash": "",
                    "fields": {},
                }
            ]
        ),
        "csv",
        out,
    )
    row = list(csv.DictReader(io.StringIO(out.getvalue())))[0]
    assert row["reference"] == row["actor_id"] == row["command_id"] == "'" + cell
    assert row["version"] == "1"


def test_numbers_stay_numbers_in_the_public_health_csv(capsys: pytest.CaptureFixture[str]) -> None:
    """A party's name that reads as a formula is neutralised; a reduction stays a number (-20.00)."""
    quarter = {"quarter": "Q1", "contributions_pence": 0, "changes_pence": -2000, "balance_pence": -2000}
    line = {"party": "=cmd|' /C calc'!A0", "opening_balance_pence": 0, "quarters": [quarter]}
    report = {"financial_year": "2026-27", "quarters": {"Q1": "Apr-Jun"}, "parties": [line], "total": line}
    render.csv_out(report)
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[1][3] == "'=cmd|' /C calc'!A0" and rows[1][5] == "-20.00"


def test_the_audit_export_on_the_command_line_neutralises_formulas(cli_env: Settings, tmp_path: Path) -> None:
    app = bootstrap.open_cases(cli_env)
    app.start_proposal(
        actor=LEAD,
        command_id='=HYPERLINK("https://evil.example","x")',
        title="Ordinary",
        kind="procurement",
        value_pence=1_000,
        parties=["PCC"],
        public_health=False,
    )
    rows = list(csv.DictReader(io.StringIO(invoke("audit", "export", "--format", "csv"))))
    keys = [r["command_id"] for r in rows if r["command_id"].lstrip("'").startswith("=")]
    assert keys and all(k.startswith("'=HYPERLINK") for k in keys)


def test_a_refusal_line_is_printed_inert(capsys: pytest.CaptureFixture[str]) -> None:
    """Today's refusals quote input with repr(); the boundary does not rely on every message doing so."""
    with pytest.raises(SystemExit) as done:
        fail("no case has the reference PRO-\x1b[2J\u202eevil", 1)
    assert done.value.code == 1
    said = capsys.readouterr().err
    assert_inert(said)
    assert said == "concordat: no case has the reference PRO-evil\n"
