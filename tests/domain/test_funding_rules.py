"""Funds and in-year funding changes (ToR 2.6, 4.1; Cabinet report 4.5.1)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.actor import Actor
from domain.application import CaseService
from domain.case import Rules
from domain.errors import (
    CaseNotFoundError,
    FundWouldOverspendError,
    InvalidInputError,
    NotAllowedError,
    OutcomeNotAllowedError,
)
from domain.funding import financial_quarter
from domain.policy import Policy
from tests.domain.support import (
    CAT,
    CCC_SEC,
    GUS,
    LEAD,
    MINUTES,
    PAT,
    PCC_SEC,
    PHIL,
    SAM,
    T0,
    approve_through,
    cid,
    open_agreed_fund,
)
from tests.policies import WITHOUT_COUNCIL_PROCEDURE

HC = Actor.parse("secretary:health_committee:hal")
DPH = Actor.parse("secretary:peterborough_dph:pip")


def open_fund(app: CaseService, name: str = "Children's pooled fund", balance: int = 10_000_000, **kw: object) -> None:
    open_agreed_fund(app, name.replace("'", ""), balance=balance, **kw)  # type: ignore[arg-type]


def start(app: CaseService, **fields: object):
    values = {"fund": "Childrens pooled fund", "changes": {"PCC": -2_000_000, "CCC": 500_000}, **fields}
    return app.start_funding_change(actor=LEAD, fields=values, command_id=cid())


def decide(app: CaseService, ref: str, actor: Actor, stage: str, outcome: str):
    fields = {"stage": stage, "outcome": outcome, "minutes_ref": MINUTES}
    return app.act(ref, actor=actor, action="decide", fields=fields, command_id=cid())


BODIES = {
    "pcc_decision": (PCC_SEC, "approve"),
    "ccc_decision": (CCC_SEC, "approve"),
    "cmet": (CAT, "recommend_approval"),
    "governing_body": (GUS, "approve"),
}


def agreed_by_every_party(app: CaseService, ref: str):
    """The Programme Board agrees; then each party whose budget changes approves through its own body."""
    s = decide(app, ref, PAT, "programme_board", "agree")
    while s.status == "open":
        stage = s.stage.split(",")[0]
        actor, outcome = BODIES[stage]
        s = decide(app, ref, actor, stage, outcome)
    return s


def test_the_board_proposes_the_programme_board_agrees_and_each_partys_body_approves(app: CaseService) -> None:
    open_fund(app)
    f = start(app)
    assert (f.reference, f.stage) == ("FUN-2026-0001", "board")
    assert decide(app, f.reference, SAM, "board", "propose").stage == "programme_board"
    with pytest.raises(OutcomeNotAllowedError, match="allowed: agree, refuse, send_back"):
        decide(app, f.reference, PAT, "programme_board", "approve")  # it agrees; the parties approve
    assert decide(app, f.reference, PAT, "programme_board", "agree").stage == "pcc_decision,ccc_decision"
    decide(app, f.reference, PCC_SEC, "pcc_decision", "approve")
    assert app.fund_view("Childrens pooled fund", actor=LEAD)["balance_pence"] == 10_000_000  # not yet
    done = decide(app, f.reference, CCC_SEC, "ccc_decision", "approve")
    assert done.status == "approved"
    assert app.fund_view("Childrens pooled fund", actor=LEAD)["balance_pence"] == 10_000_000 - 1_500_000


def test_ring_fenced_money_needs_a_public_health_consultation_first(app: CaseService) -> None:
    open_fund(app, ring_fenced=True, balance=None, contributions={"PCC": 6_000_000, "CCC": 4_000_000})
    f = start(app, public_health_service=True)  # no --public-health: the fund says it is ring-fenced
    assert f.details["public_health"] is True
    assert decide(app, f.reference, SAM, "board", "propose").stage == "consultation"
    # A public-health service: each council's Director of Public Health decides for its council.
    assert decide(app, f.reference, PHIL, "consultation", "support").stage == "health_committee,peterborough_dph"
    assert decide(app, f.reference, HC, "health_committee", "approve").status == "open"
    assert decide(app, f.reference, DPH, "peterborough_dph", "approve").status == "approved"


def test_a_change_to_a_ring_fenced_fund_is_consulted_on_though_nobody_ticked_public_health(app: CaseService) -> None:
    """Issue 14: a change to a ring-fenced fund went through with no consultation because the
    person starting it did not pass --public-health. The fund decides, not the tick-box."""
    open_fund(app, ring_fenced=True, balance=None, contributions={"PCC": 6_000_000, "CCC": 4_000_000})
    f = start(app)
    assert decide(app, f.reference, SAM, "board", "propose").stage == "consultation"
    assert app.fund_view("Childrens pooled fund", actor=LEAD)["ring_fenced"] is True


def test_a_public_health_flag_that_disagrees_with_the_fund_is_refused_and_nothing_is_written(app: CaseService) -> None:
    open_fund(app)  # not ring-fenced
    with pytest.raises(InvalidInputError, match="holds no ring-fenced public-health money"):
        start(app, public_health=True)
    open_fund(app, name="Ring", ring_fenced=True, balance=None, contributions={"PCC": 100})
    with pytest.raises(InvalidInputError, match="Ring holds ring-fenced public-health money"):
        start(app, fund="Ring", changes={"PCC": 10}, public_health=False)
    assert list(app.references(("FUN",))) == []
    # Saying what the fund says is accepted (the option as an assertion).
    assert start(app, fund="Ring", changes={"PCC": 10}, public_health=True).details["public_health"] is True


def test_a_fund_opens_only_when_the_programme_board_agrees(app: CaseService) -> None:
    case = app.open_fund(
        actor=LEAD,
        fields={"name": "Aligned CAMHS", "type": "aligned", "contributions": {"PCC": 300_000, "CPCCG": 200_000}},
        command_id=cid(),
    )
    assert (case.reference, case.stage) == ("FND-2026-0001", "board")
    with pytest.raises(CaseNotFoundError, match="no fund is named 'Aligned CAMHS'"):
        app.fund_view("Aligned CAMHS", actor=LEAD)
    assert decide(app, case.reference, SAM, "board", "propose").stage == "programme_board"  # not ring-fenced
    with pytest.raises(CaseNotFoundError):
        app.fund_view("Aligned CAMHS", actor=LEAD)
    assert decide(app, case.reference, PAT, "programme_board", "agree").status == "opened"
    fund = app.fund_view("Aligned CAMHS", actor=LEAD)
    assert (fund["balance_pence"], fund["contributions"], fund["opened"]["case"]) == (
        500_000,
        {"PCC": 300_000, "CPCCG": 200_000},
        "FND-2026-0001",
    )


def test_a_fund_the_programme_board_refuses_never_opens(app: CaseService) -> None:
    case = app.open_fund(
        actor=LEAD, fields={"name": "Pooled", "type": "pooled", "contributions": {"PCC": 100}}, command_id=cid()
    )
    decide(app, case.reference, SAM, "board", "propose")
    assert decide(app, case.reference, PAT, "programme_board", "refuse").status == "refused"
    with pytest.raises(CaseNotFoundError):
        app.fund_view("Pooled", actor=LEAD)


def test_a_ring_fenced_fund_is_consulted_on_before_the_programme_board_agrees(app: CaseService) -> None:
    fields = {"name": "PH", "type": "pooled", "ring_fenced": True, "contributions": {"CCC": 100}}
    case = app.open_fund(actor=LEAD, fields=fields, command_id=cid())
    assert decide(app, case.reference, SAM, "board", "propose").stage == "consultation"
    assert decide(app, case.reference, PHIL, "consultation", "support").stage == "programme_board"


def test_opening_a_fund_is_refused_for_bad_contributions_a_taken_name_or_a_role_that_may_not(app: CaseService) -> None:
    def open_(actor: Actor = LEAD, **fields: object):
        return app.open_fund(actor=actor, fields={"name": "F", "type": "pooled", **fields}, command_id=cid())

    with pytest.raises(InvalidInputError, match="a ring-fenced fund names each party's contribution"):
        open_(ring_fenced=True, balance_pence=100)
    with pytest.raises(InvalidInputError, match="'NHS': not members"):
        open_(contributions={"NHS": 100})
    with pytest.raises(InvalidInputError, match="contributions.PCC: Input should be greater than or equal to 0"):
        open_(contributions={"PCC": -1})
    with pytest.raises(InvalidInputError, match=r"--balance £2.00 is not the sum of the contributions \(£1.00\)"):
        open_(contributions={"PCC": 100}, balance_pence=200)
    with pytest.raises(NotAllowedError, match="role secretary:board may not open a fund"):
        open_(actor=SAM, contributions={"PCC": 100})
    assert list(app.references(("FND",))) == []
    first, second = open_(contributions={"PCC": 100}), open_(contributions={"CCC": 100})
    approve_through(app, first.reference)
    with pytest.raises(InvalidInputError, match="a fund named 'F' exists already"):
        open_(contributions={"PCC": 100})
    decide(app, second.reference, SAM, "board", "propose")
    with pytest.raises(InvalidInputError, match="a fund named 'F' was opened meanwhile"):
        decide(app, second.reference, PAT, "programme_board", "agree")
    assert app.fund_view("F", actor=LEAD)["contributions"] == {"PCC": 100}


def test_an_overspend_is_refused_when_the_change_is_proposed(app: CaseService) -> None:
    open_fund(app, balance=1_000_000)
    with pytest.raises(
        FundWouldOverspendError,
        match=r"balance of £10,000.00; the change of -£15,000.00 would overspend it by £5,000.00",
    ):
        start(app)
    assert list(app.references(("FUN",))) == []


def test_an_overspend_is_refused_at_every_stage_after_but_a_rejection_is_recorded(app: CaseService) -> None:
    open_fund(app, balance=2_000_000)
    first, second = start(app), start(app)  # each affordable alone (-£15,000 of £20,000); not both
    decide(app, first.reference, SAM, "board", "propose")
    decide(app, second.reference, SAM, "board", "propose")
    assert agreed_by_every_party(app, first.reference).status == "approved"
    with pytest.raises(
        FundWouldOverspendError, match="has a balance of £5,000.00; the change of -£15,000.00 in FUN-2026-0002"
    ):
        decide(app, second.reference, PAT, "programme_board", "agree")
    assert app.state(second.reference).stage == "programme_board"  # nothing written
    # The board may still defer, and the Programme Board may still refuse it: nothing is spent.
    third = start(app, changes={"PCC": -400_000})
    assert decide(app, second.reference, PAT, "programme_board", "refuse").status == "rejected"
    assert decide(app, third.reference, SAM, "board", "defer").stage == "board"


def test_an_overspend_is_refused_naming_fund_balance_and_shortfall_and_nothing_is_written(app: CaseService) -> None:
    open_fund(app, balance=2_000_000)
    first, second = start(app), start(app)  # -£15,000 each from £20,000: either, not both
    for f in (first, second):
        decide(app, f.reference, SAM, "board", "propose")
        decide(app, f.reference, PAT, "programme_board", "agree")
        decide(app, f.reference, PCC_SEC, "pcc_decision", "approve")
    assert decide(app, first.reference, CCC_SEC, "ccc_decision", "approve").status == "approved"
    with pytest.raises(
        FundWouldOverspendError,
        match=r"fund Childrens pooled fund \(pooled\) has a balance of £5,000.00; the change of "
        r"-£15,000.00 in FUN-2026-0002 would overspend it by £10,000.00",
    ):
        decide(app, second.reference, CCC_SEC, "ccc_decision", "approve")
    assert app.state(second.reference).stage == "ccc_decision"  # the approval that would overspend is refused whole
    assert app.fund_view("Childrens pooled fund", actor=LEAD)["balance_pence"] == 500_000


def test_a_change_to_an_unknown_fund_or_party_is_refused(app: CaseService) -> None:
    with pytest.raises(CaseNotFoundError, match="no fund is named 'Nope'"):
        start(app, fund="Nope")
    open_fund(app)
    with pytest.raises(InvalidInputError, match="--change 'NHS': not members"):
        start(app, changes={"NHS": 1})
    with pytest.raises(InvalidInputError, match="a fund named 'Childrens pooled fund' exists already"):
        open_fund(app)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 4, 1), (2026, 1)),
        (date(2026, 6, 30), (2026, 1)),
        (date(2026, 7, 1), (2026, 2)),
        (date(2026, 12, 31), (2026, 3)),
        (date(2027, 1, 1), (2026, 4)),
        (date(2027, 3, 31), (2026, 4)),
    ],
)
def test_uk_financial_quarters_start_in_april(policy: Policy, day: date, expected: tuple[int, int]) -> None:
    assert financial_quarter(Rules.from_policy(policy), day) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    balance=st.integers(0, 5_000_000),
    changes=st.lists(
        st.dictionaries(st.sampled_from(["PCC", "CCC", "CPCCG"]), st.integers(-3_000_000, 3_000_000), min_size=1),
        max_size=8,
    ),
)
def test_a_funds_balance_is_never_negative_after_any_accepted_sequence(balance: int, changes: list) -> None:
    app = CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=WITHOUT_COUNCIL_PROCEDURE, clock=lambda: T0)
    open_fund(app, balance=balance)
    expected = balance
    for change in changes:
        if not any(change.values()):
            continue
        try:
            f = start(app, changes=change)
        except FundWouldOverspendError:
            assert expected + sum(change.values()) < 0
            continue
        decide(app, f.reference, SAM, "board", "propose")
        try:
            agreed_by_every_party(app, f.reference)
        except FundWouldOverspendError:
            assert expected + sum(change.values()) < 0
            continue
        expected += sum(change.values())
        assert app.fund_view("Childrens pooled fund", actor=LEAD)["balance_pence"] == expected >= 0


def test_financial_quarter_boundaries_follow_london_dates(policy: Policy) -> None:
    rules = Rules.from_policy(policy)
    # 23:30 UTC on 31 March 2027 is already 1 April in London (BST): Q1 of 2027.
    assert financial_quarter(rules, rules.calendar.local_date(datetime(2027, 3, 31, 23, 30, tzinfo=UTC))) == (2027, 1)
