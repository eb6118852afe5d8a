"""The doc-test format itself (tests/docs/transcripts.py): what a page says is parsed as a person reads
it, and only what is inherently variable is forgiven."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from domain.policy import Policy
from tests.docs.clocked import Start, clock_of
from tests.docs.transcripts import Command, Result, matches, normalise, parse

PAGE = """# A page

<!-- doc-test: people jo=jcu_lead pat=party_rep:PCC,secretary:programme_board -->

```sh
concordat up   # shown, not run
```

```console
$ echo one \\
    two
one two
jo$ concordat show PRO-2026-0001
PRO-2026-0001  Community paediatrics service
deadline       Tue 12 Jan 2027 17:00
…
```
"""


def test_a_page_is_read_as_a_person_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "page.md"
    path.write_text(PAGE)
    page = parse(path)
    assert page.people == {"jo": ["jcu_lead"], "pat": ["party_rep:PCC", "secretary:programme_board"]}
    assert [(c.who, c.text) for c in page.commands] == [
        ("", "echo one \\\n    two"),
        ("jo", "concordat show PRO-2026-0001"),
    ]
    assert page.commands[0].expected == ["one two"]
    assert page.commands[1].expected[-1] == "…"


def test_dates_references_and_ids_are_forgiven_and_nothing_else() -> None:
    shown = normalise("PRO-2026-0001 open at board; deadline Tue 12 Jan 2027 17:00; token 35eea3655e54")
    assert matches(shown, normalise("PRO-2027-0001 open at board; deadline Mon 08 Feb 2027 17:00; token 0d4e61c2a9b7"))
    assert not matches(
        shown, normalise("PRO-2027-0001 open at cmet; deadline Mon 08 Feb 2027 17:00; token 0d4e61c2a9b7")
    )
    assert not matches(
        shown, normalise("PRO-2027-0002 open at board; deadline Tue 12 Jan 2027 17:00; token 35eea3655e54")
    )


def test_an_ellipsis_stands_for_text_or_lines_only_where_it_is() -> None:
    assert matches(["a … c", "…", "z"], ["a b c", "x", "y", "z"])
    assert matches(["a", "…"], ["a"])
    assert not matches(["a … c", "z"], ["a b c", "x", "z"])
    assert not matches(["a"], ["a", "b"])


def test_a_refusal_must_exit_non_zero_and_anything_else_zero() -> None:
    refusal = Command("dan", "concordat decide X", ["concordat: no"], 1, (0, 0))
    assert Result(refusal, 1, "concordat: no\n").ok
    assert not Result(refusal, 0, "concordat: no\n").ok
    done = Command("dan", "concordat show X", ["X"], 1, (0, 0))
    assert Result(done, 0, "X\n").ok and not Result(done, 2, "X\n").ok


CLOCKED_PAGE = """# Weeks

<!-- doc-test: clock 8 days before the next board meeting at 09:00 -->

```console
$ concordat up
…
```

<!-- doc-test: time passes 8 days -->

```console
$ concordat meeting show MTG-2027-0001
```

<!-- doc-test: time passes 21 days to 17:30 -->

```console
$ concordat show PRO-2027-0001
```
"""


def test_a_page_that_takes_weeks_says_when_it_starts_and_when_days_pass(tmp_path: Path) -> None:
    path = tmp_path / "page.md"
    path.write_text(CLOCKED_PAGE)
    page = parse(path)
    clock = clock_of(page)
    assert clock is not None
    assert (clock.start.days, clock.start.forum, clock.start.clock) == (8, "board", dt.time(9))
    first, meeting, later = page.commands
    assert clock.before(first, 0) == []
    assert [(p.days, p.clock) for p in clock.before(meeting, first.line)] == [(8, None)]
    assert [(p.days, p.clock) for p in clock.before(later, meeting.line)] == [(21, dt.time(17, 30))]
    # A page without the directive runs against a plain `concordat up`; so does one that quotes it.
    assert clock_of(parse(_written(tmp_path / "plain.md", PAGE))) is None
    quoted = "- `<!-- doc-test: clock 8 days before the next board meeting at 09:00 -->` starts a page's clock\n"
    assert clock_of(parse(_written(tmp_path / "quoted.md", quoted))) is None


def test_a_page_starts_before_the_forums_next_meeting_by_the_policys_dates() -> None:
    """The board meets on the second Tuesday of every other month from January 2026: seen from 3
    December 2026 the first meeting more than eight days away is 12 January 2027, so the page starts
    on Monday 4 January at 09:00 London time (GMT); seen from 5 January, the March meeting's."""
    start = Start(8, "board", dt.time(9))
    policy = Policy.load()
    assert start.instant(dt.date(2026, 12, 3), policy) == dt.datetime(2027, 1, 4, 9, tzinfo=dt.UTC)
    assert start.instant(dt.date(2027, 1, 5), policy) == dt.datetime(2027, 3, 1, 9, tzinfo=dt.UTC)
    # In summer time the same wall-clock hour is an hour earlier in UTC.
    assert start.instant(dt.date(2027, 6, 1), policy) == dt.datetime(2027, 7, 5, 8, tzinfo=dt.UTC)


def _written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
