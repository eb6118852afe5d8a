"""The doc-test format itself (tests/docs/transcripts.py): what a page says is parsed as a person reads
it, and only what is inherently variable is forgiven."""

from __future__ import annotations

from pathlib import Path

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
