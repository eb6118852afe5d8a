"""Forum decisions carry minutes (issue 14, item 5): a decision of a forum names the minutes that
record it, unless the policy exempts the forum; a policy without `[minutes]` asks for none."""

from __future__ import annotations

import tomllib

import pytest

from domain.application import CaseService
from domain.errors import MinutesRequiredError
from domain.policy import Policy
from tests.domain.support import DAN, PHIL, SAM, T0, decide, start
from tests.policies import WITHOUT_COUNCIL_PROCEDURE


def test_a_board_decision_without_minutes_is_refused_and_nothing_is_written(app: CaseService) -> None:
    case = start(app, value_pence=90_000_000, public_health=True)
    decide(app, case.reference, DAN, "jcu", "refer", minutes_ref="")  # the JCU is exempt: an officer decides
    before = app.state(case.reference).version
    with pytest.raises(MinutesRequiredError, match=r"--minutes-ref: a decision of board .* names the minutes"):
        decide(app, case.reference, SAM, "board", "recommend", minutes_ref="")
    assert app.state(case.reference).version == before
    assert decide(app, case.reference, SAM, "board", "recommend", minutes_ref="CCHJCB-2027-01").stage == (
        "programme_board"
    )
    assert app.state(case.reference).details["decisions"][-1]["minutes_ref"] == "CCHJCB-2027-01"


def test_an_exempt_forum_decides_without_minutes(app: CaseService) -> None:
    policy = app.policy
    assert policy.minutes.exempt == ["jcu", "public_health", "provider"]
    case = start(app, value_pence=90_000_000, public_health=True)
    decide(app, case.reference, DAN, "jcu", "refer", minutes_ref="")
    decide(app, case.reference, SAM, "board", "recommend")
    decide(app, case.reference, PHIL.__class__.parse("secretary:programme_board:pat"), "programme_board", "recommend")
    assert decide(app, case.reference, PHIL, "public_health", "sign_off", minutes_ref="").status == "open"


def test_a_policy_without_the_minutes_table_asks_for_none() -> None:
    raw = WITHOUT_COUNCIL_PROCEDURE.source_text
    data = tomllib.loads(raw)
    assert "minutes" in data
    start_ = raw.index("[minutes]")
    end = raw.index("\n[", start_ + 1)
    old = Policy.from_bytes((raw[:start_] + raw[end + 1 :]).encode("utf-8"))
    assert not old.minutes.needed_at("board")
    app = CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=old, clock=lambda: T0)
    case = start(app, value_pence=90_000_000)
    decide(app, case.reference, DAN, "jcu", "refer", minutes_ref="")
    assert decide(app, case.reference, SAM, "board", "recommend", minutes_ref="").stage == "programme_board"


def test_the_policy_check_names_an_exempt_forum_that_is_not_one() -> None:
    raw = Policy.load().source_text.replace('exempt = ["jcu", "public_health", "provider"]', 'exempt = ["jcu", "pub"]')
    policy, problems = Policy.check_bytes(raw.encode("utf-8"))
    assert any("'pub' is not a forum" in p for p in problems), problems
