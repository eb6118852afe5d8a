"""The domain refuses what no door should have let through (defence in depth): text with NUL, control,
bidi or only invisible characters, text over its limit, malformed ids, amounts beyond the policy's
maximum; and what each type publishes as its pattern is exactly what it accepts."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from domain.actor import Actor
from domain.application import CaseService
from domain.errors import InvalidInputError
from domain.values import (
    TEXT_MAX,
    TITLE_MAX,
    Note,
    Title,
    amount_as_text,
    check_pounds_text,
    pounds_pattern,
    text_pattern,
)

LEAD, DAN = Actor.parse("jcu_lead:jo"), Actor.parse("lead_director:dan")
PAT = Actor.parse("party_rep:PCC:pat")
BAD_TEXT = {
    "NUL": "a\x00b",
    "bell": "a\x07b",
    "ANSI escape": "\x1b[31mred",
    "C1 CSI": "a\x9bb",
    "bidi override": "a\u202eb",
    "bidi isolate": "a\u2067b",
    "only zero-width": "\u200b\ufeff\u2060",
    "only spaces": "   ",
    "line separator": "a\u2028b",
    "lone surrogate": "a\ud800b",
}


class Line(BaseModel):
    text: Title


class Multi(BaseModel):
    text: Note = ""


def start(app: CaseService, title: str, value_pence: int = 100) -> object:
    return app.start_proposal(
        actor=LEAD,
        title=title,
        kind="procurement",
        value_pence=value_pence,
        parties=["PCC"],
        public_health=False,
        command_id=f"start-{hash((title, value_pence))}",
    )


@pytest.mark.parametrize("what", BAD_TEXT)
def test_every_text_of_every_command_refuses_what_could_break_a_store_or_fool_a_reader(
    app: CaseService, what: str
) -> None:
    bad = BAD_TEXT[what]
    ref = start(app, "A proposal").reference  # type: ignore[attr-defined]
    before = app.recorder.max_notification_id()
    with pytest.raises(InvalidInputError, match="^title: "):
        start(app, bad)
    for action, fields in [
        ("decide", {"stage": "jcu", "outcome": "refer", "note": bad}),
        ("decide", {"stage": "jcu", "outcome": "refer", "minutes_ref": bad}),
        ("decide", {"stage": bad, "outcome": "refer"}),
        ("withdraw", {"note": bad}),
    ]:
        with pytest.raises(InvalidInputError):
            app.act(ref, actor=DAN if action == "decide" else LEAD, action=action, fields=fields, command_id="c")
    for fields in [
        {"against": ["CCC"], "subject": bad},
        {"against": ["CCC"], "subject": "S", "description": bad},
        {"against": [bad], "subject": "S"},
    ]:
        with pytest.raises(InvalidInputError):
            app.raise_dispute(actor=PAT, fields=fields, command_id="d")
    with pytest.raises(InvalidInputError):
        app.serve_notice(actor=PAT, fields={"letter_ref": bad}, command_id="n")
    assert app.recorder.max_notification_id() == before  # nothing written


def test_a_note_keeps_its_lines_and_a_title_is_one_line_of_at_most_its_limit() -> None:
    assert Multi(text="one\r\ntwo\tthree").text == "one\ntwo\tthree"
    assert Line(text="Cafe\u0301 [/bold] <script>").text == "Café [/bold] <script>"  # NFC, kept as text
    with pytest.raises(ValidationError, match="one line"):
        Line(text="one\ntwo")
    with pytest.raises(ValidationError, match=f"at most {TITLE_MAX}"):
        Line(text="x" * (TITLE_MAX + 1))
    with pytest.raises(ValidationError, match=f"at most {TEXT_MAX}"):
        Multi(text="x" * 10_000_000)


@given(st.text(max_size=20))
def test_the_published_pattern_is_exactly_what_a_title_accepts(text: str) -> None:
    published = re.fullmatch(text_pattern(multiline=False), text) is not None  # (no surrogates: st.text has none)
    try:
        Line(text=text)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == published


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "true/false is not an amount"),
        ("١٢٣", "not an amount in pounds"),
        (float("nan"), "not whole pounds"),
        (float("inf"), "not whole pounds"),
        (1.5, "not whole pounds"),
        ("1e3", "not an amount in pounds"),
    ],
)
def test_an_amount_is_a_number_or_ascii_digits(value: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        amount_as_text(value, field="value")


def test_an_amount_beyond_the_policys_maximum_is_refused_by_the_domain(app: CaseService) -> None:
    most = app.policy.limits.max_value_pounds
    start(app, "At the limit", value_pence=most * 100)
    before = app.recorder.max_notification_id()
    for pence in (most * 100 + 1, 10**32):
        with pytest.raises(InvalidInputError, match="policy's maximum"):
            start(app, "Beyond", value_pence=pence)
    with pytest.raises(InvalidInputError, match="policy's maximum"):
        app.open_fund(actor=LEAD, fields={"name": "F", "type": "pooled", "balance_pence": 10**30}, command_id="f")
    assert app.recorder.max_notification_id() == before
    assert re.fullmatch(pounds_pattern(most, signed=False), "999,999,999.99")
    with pytest.raises(InvalidInputError, match="policy's maximum"):
        check_pounds_text("1,000,000,000,000", most, field="value", signed=False)
