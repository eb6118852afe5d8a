"""Routes are data: a governance officer changes the route by editing the policy file, checks it
with line-numbered errors, and a case keeps the route it started under."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from domain.actor import Actor
from domain.application import CaseService
from domain.policy import Policy
from tests.domain.support import DAN, PAT, SAM, T0, decide, start
from tests.policies import WITHOUT_COUNCIL_PROCEDURE, without_council_procedure_text

SHIPPED = without_council_procedure_text()  # the shipped text, the councils' procedure off (tests/policies.py)
LEGACY = (resources.files("tests") / "domain" / "fixtures" / "governance-2026-11.toml").read_bytes()


def problems(text: str) -> list[str]:
    return Policy.check_bytes(text.encode(), "policy.toml")[1]


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_a_new_stage_and_forum_are_an_edit_of_the_policy_file_and_need_no_code() -> None:
    # The partnership adds a finance panel between the board and the Programme Board.
    edited = (
        SHIPPED.replace(
            'outcomes.recommend = { to = "programme_board" }\noutcomes.reject = { to = "rejected" }\n'
            "outcomes.defer = { times = 1, stays = true }\n\n# MOU Schedule 1 (a), (b)",
            'outcomes.recommend = { to = "finance_review" }\noutcomes.reject = { to = "rejected" }\n'
            "outcomes.defer = { times = 1, stays = true }\n\n"
            '[routes.proposal.stages.finance_review]\ntitle = "Finance panel"\nforum = "finance_panel"\n'
            'deadline = { working_days = 5 }\noutcomes.assured = { to = "programme_board" }\n'
            'outcomes.not_assured = { to = "board" }\n\n# MOU Schedule 1 (a), (b)',
        )
        + '\n[forums.finance_panel]\nname = "Finance panel"\ndecided_by = "secretary:finance_panel"\n'
    )
    assert edited != SHIPPED
    policy = Policy.from_bytes(edited.encode(), "edited")
    app = CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=policy, clock=lambda: T0)
    ref = start(app, kind="service_commissioning", value_pence=90_000_000).reference
    decide(app, ref, DAN, "jcu", "refer")
    s = decide(app, ref, SAM, "board", "recommend")
    assert s.stage == "finance_review"
    assert s.awaiting[0]["decided_by"] == "secretary:finance_panel"
    assert [step["stage"] for step in s.route][:4] == ["jcu", "board", "finance_review", "programme_board"]
    s = decide(app, ref, Actor.parse("secretary:finance_panel:fay"), "finance_review", "assured")
    assert s.stage == "programme_board"
    assert decide(app, ref, PAT, "programme_board", "recommend").stage == "pcc_decision,ccc_decision,cmet"


def test_the_shipped_policy_has_no_problems() -> None:
    assert problems(SHIPPED) == []


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        # A stage nothing leads to.
        (
            'outcomes.refer = { routes = [{ when = "major_redesign", to = "impact_assessment" }], to = "board" }',
            'outcomes.refer = { to = "board" }',
            "[routes.proposal.stages.impact_assessment]",
            "routes.proposal.stages.impact_assessment: stage 'impact_assessment' is unreachable",
        ),
        # A stage no role may act at.
        (
            'decided_by = "secretary:cmet"',
            'decided_by = "secretary:nowhere"',
            "[routes.proposal.stages.cmet]",
            "no role may act at stage 'cmet'",
        ),
        # A join that can never complete: one branch never reaches it.
        (
            'outcomes.approve = { to = "parties", result = "approved" }\noutcomes.reject = { to = "parties", '
            'result = "rejected" }\n\n[routes.proposal.stages.ccc_decision]',
            'outcomes.approve = { to = "approved" }\noutcomes.reject = { to = "rejected" }\n\n'
            "[routes.proposal.stages.ccc_decision]",
            "[routes.proposal.stages.pcc_decision]",
            "branch 'pcc_decision' of the fork",
        ),
        # An outcome leading nowhere known.
        (
            'outcomes.send_back = { to = "board" }\noutcomes.decline = { to = "declined" }',
            'outcomes.send_back = { to = "bored" }\noutcomes.decline = { to = "declined" }',
            'outcomes.send_back = { to = "bored" }',
            "'bored' is not a stage, an end or a join",
        ),
        # A field of the wrong shape.
        (
            "deadline = { working_days = 15 }\noutcomes.recommend_approval",
            "deadline = { working_days = -15 }\noutcomes.recommend_approval",
            "deadline = { working_days = -15 }",
            "routes.proposal.stages.cmet.deadline.working_days",
        ),
    ],
)
def test_policy_check_names_the_line_and_the_field(old: str, new: str, needle: str, message: str) -> None:
    assert old in SHIPPED
    edited = SHIPPED.replace(old, new, 1)
    found = problems(edited)
    assert any(message in p for p in found), found
    hit = next(p for p in found if message in p)
    if "decided_by" in old:
        return  # the forum's line is elsewhere; the message names the stage
    assert hit.startswith(f"policy.toml:{line_of(edited, needle)}:"), (hit, line_of(edited, needle))


def test_a_policy_written_before_routes_were_data_runs_the_routes_of_its_time() -> None:
    old = Policy.from_bytes(LEGACY, "governance-2026-11.toml")
    assert sorted(old.routes) == ["funding", "proposal", "variation"]
    app = CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=old, clock=lambda: T0)
    ref = start(app).reference  # a £180k pathway for all three parties
    decide(app, ref, DAN, "jcu", "refer")
    assert decide(app, ref, SAM, "board", "recommend").stage == "cmet"  # then: the board sent it to CMET


def test_a_case_keeps_the_route_it_started_under(tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "store.db")}
    before = CaseService(env, policy=Policy.from_bytes(LEGACY, "old"), clock=lambda: T0)
    old_case = start(before).reference
    decide(before, old_case, DAN, "jcu", "refer")
    # The partnership adopts today's policy; the running case goes on under the one it started with.
    app = CaseService(env, policy=WITHOUT_COUNCIL_PROCEDURE, clock=lambda: T0)
    new_case = start(app).reference
    assert decide(app, old_case, SAM, "board", "recommend").stage == "cmet"
    decide(app, new_case, DAN, "jcu", "refer")
    assert decide(app, new_case, SAM, "board", "recommend").stage == "programme_board"
    assert app.state(old_case).policy_hash != app.state(new_case).policy_hash
