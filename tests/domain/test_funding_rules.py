"""Funds and in-year funding changes (ToR 2.6, 4.1; Cabinet report 4.5.1)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.actor import Actor
from domain.application import CaseService
from domain.case import Rules
from domain.errors import CaseNotFoundError, FundWouldOverspendError, InvalidInputError, OutcomeNotAllowedError
from domain.funding import financial_quarter
from domain.policy import Policy
from tests.domain.support import CAT, CCC_SEC, GUS, LEAD, PAT, PCC_SEC, PHIL, SAM, T0, cid

HC = Actor.parse("secretary:health_committee:hal")
DPH = Actor.parse("secretary:peterborough_dph:pip")


def open_fund(app: CaseService, name: str = "Children's pooled fund", balance: int = 10_000_000) -> None:
    app.open_fund(
        actor=LEAD, fields={"name": name.replace("'", ""), "type": "pooled", "balance_pence": balance}, command_id=cid()
    )


def start(app: CaseService, **fields: object):
    values = {"fund": "Childrens pooled fund", "changes": {"PCC": -2_000_000, "CCC": 500_000}, **fields}
    return app.start_funding_change(actor=LEAD, fields=values, command_id=cid())


def decide(app: CaseService, ref: str, actor: Actor, stage: str, outcome: str):
    return app.act(ref, actor=actor, action="decide", fields={"stage": stage, "outcome": outcome}, command_id=cid())


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
    open_fund(app)
    f = start(app, public_health=True, public_health_service=True)
    assert decide(app, f.reference, SAM, "board", "propose").stage == "consultation"
    # A public-health service: each council's Director of Public Health decides for its council.
    assert decide(app, f.reference, PHIL, "consultation", "support").stage == "health_committee,peterborough_dph"
    assert decide(app, f.reference, HC, "health_committee", "approve").status == "open"
    assert decide(app, f.reference, DPH, "peterborough_dph", "approve").status == "approved"


def test_an_overspend_is_refused_naming_fund_balance_and_shortfall_and_nothing_is_written(app: CaseService) -> None:
    open_fund(app, balance=1_000_000)
    f = start(app)
    decide(app, f.reference, SAM, "board", "propose")
    with pytest.raises(
        FundWouldOverspendError,
        match=r"fund Childrens pooled fund \(pooled\) has a balance of £10,000.00; the change of "
        r"-£15,000.00 in FUN-2026-0001 would overspend it by £5,000.00",
    ):
        agreed_by_every_party(app, f.reference)
    assert app.state(f.reference).stage == "ccc_decision"  # the approval that would overspend is refused whole


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
    app = CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=Policy.load(), clock=lambda: T0)
    open_fund(app, balance=balance)
    expected = balance
    for change in changes:
        if not any(change.values()):
            continue
        f = start(app, changes=change)
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
