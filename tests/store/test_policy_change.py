"""The policy file changes while cases are open: running cases keep the policy (hash) they started
with, new cases take the new one, and the history records which was in force for every event."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from tests.policies import without_council_procedure_text

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
LEAD, DAN = Actor.parse("jcu_lead:jo"), Actor.parse("lead_director:dan")
SAM, AUDREY = Actor.parse("secretary:board:sam"), Actor.parse("auditor:audrey")


def start(app, command_id: str) -> str:  # noqa: ANN001
    return app.start_proposal(
        actor=LEAD,
        command_id=command_id,
        title="t",
        kind="pathway_change",
        value_pence=40_000_000,
        parties=["PCC", "CPCCG"],
        public_health=False,
        at=T0,
    ).reference


def to_programme_board(app, ref: str) -> datetime:  # noqa: ANN001
    app.decide(ref, actor=DAN, stage="jcu", outcome="refer", command_id=f"{ref}-r", at=T0)
    return app.decide(
        ref, actor=SAM, stage="board", outcome="recommend", minutes_ref="MIN-2026-01", command_id=f"{ref}-b", at=T0
    ).deadline


def test_running_cases_keep_their_policy_and_new_cases_take_the_new_one(settings: Settings, tmp_path: Path) -> None:
    old_app = bootstrap.open_cases(settings)
    running = start(old_app, "old")
    shipped = without_council_procedure_text()  # the shipped text, the councils' procedure off (tests/policies.py)
    changed = tmp_path / "policy.toml"
    old = 'forum = "programme_board"\ndeadline = { working_days = 20 }'
    assert old in shipped
    changed.write_text(shipped.replace(old, 'forum = "programme_board"\ndeadline = { working_days = 5 }'))
    new_app = bootstrap.open_cases(settings.model_copy(update={"policy_file": changed}))
    assert new_app.policy.content_hash != old_app.policy.content_hash
    fresh = start(new_app, "new")
    # Both cases move on under the new file; each by its own policy.
    assert to_programme_board(new_app, running) == datetime(2026, 12, 22, 17, 0, tzinfo=UTC)  # 20 working days
    assert to_programme_board(new_app, fresh) == datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # 5 working days
    old_hashes = {h.policy_hash for h in new_app.history(running, actor=AUDREY)}
    new_hashes = {h.policy_hash for h in new_app.history(fresh, actor=AUDREY)}
    assert old_hashes == {old_app.policy.content_hash}
    assert new_hashes == {new_app.policy.content_hash}
    assert new_app.state(running).policy_hash == old_app.policy.content_hash
