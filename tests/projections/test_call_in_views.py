"""A decision held for its call-in period is open in the case list until it takes effect; then the
list shows it approved (the real projection runner, on SQLite and PostgreSQL)."""

from __future__ import annotations

from concordat import bootstrap
from concordat.settings import Settings
from domain.application import CaseService
from tests.domain.support import DAN, PAT, PCC_SEC, SAM, T0, cid, decide, start
from tests.domain.test_call_in import UNTIL, call_in_policy
from tests.projections.test_views import run_views, snapshot


def test_the_case_list_follows_a_held_decision_until_it_takes_effect(settings: Settings) -> None:
    policy = call_in_policy()
    bootstrap.open_cases(settings, policy).close()
    app = CaseService(bootstrap.store_env(settings), policy=policy, clock=lambda: T0)
    try:
        ref = start(app, kind="service_commissioning", value_pence=30_000_000, parties=["PCC"]).reference
        for actor, stage, outcome in [
            (DAN, "jcu", "refer"),
            (SAM, "board", "recommend"),
            (PAT, "programme_board", "recommend"),
            (PCC_SEC, "pcc_decision", "approve"),
        ]:
            decide(app, ref, actor, stage, outcome)
        run_views(settings, app)
        row = next(r for r in snapshot(settings)[0] if r["reference"] == ref)
        assert (row["status"], row["stage"]) == ("open", "pcc_decision")
        timer = next(t.name for t in app.state(ref).timers if t.name.startswith("callin:"))
        app.fire_timer(ref, timer=timer, command_id=cid(), at=UNTIL)
        run_views(settings, app)
        row = next(r for r in snapshot(settings)[0] if r["reference"] == ref)
        assert (row["status"], row["stage"]) == ("approved", "")
    finally:
        app.close()
