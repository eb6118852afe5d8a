"""The policies the tests run under.

The shipped policy (`domain/governance.toml`) keeps the councils' procedure: the board decides at its
meetings (or by written procedure), a council body's key decision waits 28 clear days on the forward
plan, and a council body's decision may be called in. Those rules have their own tests, on the shipped
policy (tests/domain/test_shipped_procedure.py, test_meetings*.py, test_forward_plan.py,
test_call_in.py, tests/e2e/test_meetings_cli.py, the meetings walk-through).

A test of something else — a route, a deadline, a refusal, the store, the API — would otherwise have
to hold a meeting, publish a forward plan and wait out a call-in before every decision. It runs under
`WITHOUT_COUNCIL_PROCEDURE`: the shipped text with those three switches turned off, and nothing else
changed. It is a policy file of its own (its own content hash), as an operator's would be."""

from __future__ import annotations

from pathlib import Path

from domain.policy import Policy

# Each switch as shipped, and as it is turned off: the text must hold each exactly once, so a change
# to the shipped file that moves one fails here rather than leaving a switch on unnoticed.
SWITCHES = (
    ("decisions_at_meetings = true\n", "decisions_at_meetings = false\n"),
    ('[key_decisions]\nforums = ["pcc_decision", "ccc_decision"]\n', "[key_decisions]\nforums = []\n"),
    ('[call_in]\nforums = ["pcc_decision", "ccc_decision"]\n', "[call_in]\nforums = []\n"),
)


def shipped_text() -> str:
    return Policy.load().source_text


def without_council_procedure_text() -> str:
    text = shipped_text()
    for on, off in SWITCHES:
        assert text.count(on) == 1, f"the shipped policy should hold {on!r} once"
        text = text.replace(on, off)
    return text


WITHOUT_COUNCIL_PROCEDURE = Policy.from_bytes(
    without_council_procedure_text().encode("utf-8"), "governance.toml without the councils' procedure (tests)"
)


def write_without_council_procedure(folder: Path) -> Path:
    """The policy as a file, for a process started with CONCORDAT_POLICY_FILE."""
    path = folder / "policy-without-council-procedure.toml"
    path.write_text(without_council_procedure_text(), encoding="utf-8")
    return path
