"""`concordat policy check` and `concordat policy show`: governance officers own the routes. Run as
a person would, in a process of its own; no engine is needed to check or read a policy file."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

SHIPPED = resources.files("domain").joinpath("governance.toml").read_text("utf-8")


def concordat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "concordat", *args], capture_output=True, text=True, timeout=60)


def test_the_shipped_policy_checks_clean(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(SHIPPED)
    done = concordat("policy", "check", str(path))
    assert done.returncode == 0, done.stderr
    assert "valid; routes: fund, funding, proposal, variation" in done.stdout
    assert json.loads(concordat("policy", "check", str(path), "--json").stdout)["valid"] is True


def test_a_broken_route_is_refused_with_its_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    # The board's recommendation now leads nowhere: the Programme Board and every party's body after it
    # can no longer be reached.
    broken = SHIPPED.replace(
        'outcomes.recommend = { to = "programme_board" }', 'outcomes.recommend = { to = "programme-board" }'
    )
    path.write_text(broken)
    done = concordat("policy", "check", str(path))
    assert done.returncode == 1
    line = next(n for n, text in enumerate(broken.splitlines(), 1) if 'to = "programme-board"' in text)
    assert done.stderr.splitlines() == [
        f"{path}:{line}: routes.proposal.stages.board.outcomes.recommend.to: 'programme-board' is not a stage, "
        "an end or a join of this route"
    ]
    assert "Traceback" not in done.stderr
    missing = concordat("policy", "check", str(tmp_path / "nope.toml"))
    assert (missing.returncode, missing.stderr.count("\n")) == (2, 1)


def test_policy_show_prints_each_route_readably() -> None:
    done = concordat("policy", "show", "--kind", "proposal")
    assert done.returncode == 0, done.stderr
    assert "programme_board (Programme Board): secretary:programme_board decides" in done.stdout
    assert "recommend → public_health if ring_fenced; otherwise [pcc_decision ∥ ccc_decision ∥ cmet]" in done.stdout
    assert "join parties: when every branch has approved → approved; a refusal → not_agreed" in done.stdout
    shown = json.loads(concordat("policy", "show", "--json").stdout)
    assert sorted(shown) == ["fund", "funding", "proposal", "variation"]
    unknown = concordat("policy", "show", "--kind", "pigeon")
    assert unknown.returncode == 1 and "the policy has no such route" in unknown.stderr


def test_separation_of_duties_is_shown_and_checked(tmp_path: Path) -> None:
    done = concordat("policy", "show", "--kind", "variation")
    assert done.returncode == 0, done.stderr
    assert (
        "  separation: one stage per person (no person decides at two stages of a case); "
        "except among the stages of jcu\n" in done.stdout
    )
    assert "  separation: no self-approval (who started a case decides none of its stages); except at provider\n" in (
        done.stdout
    )
    # A file without the table: both rules, no exceptions.
    table = SHIPPED[SHIPPED.index("[separation]") : SHIPPED.index("# Board meetings")]
    path = tmp_path / "old.toml"
    path.write_text(SHIPPED.replace(table, ""))
    shown = concordat("policy", "show", "--kind", "proposal", "--file", str(path))
    assert "  separation: one stage per person (no person decides at two stages of a case)\n" in shown.stdout
    assert "  separation: no self-approval (who started a case decides none of its stages)\n" in shown.stdout
    # A forum that does not exist, named with its line.
    broken = SHIPPED.replace(
        'one_stage_per_person = { allow_for = ["jcu"] }', 'one_stage_per_person = { allow_for = ["jcuu"] }'
    )
    path.write_text(broken)
    checked = concordat("policy", "check", str(path))
    line = next(n for n, text in enumerate(broken.splitlines(), 1) if '"jcuu"' in text)
    assert checked.returncode == 1
    assert checked.stderr.splitlines() == [
        f"{path}:{line}: separation.one_stage_per_person.allow_for: 'jcuu' is not a forum"
    ]
