"""`CaseService.record_interruption`: a workflow that ended outside the engine goes on the case's record
once per command id (the engine derives it from the run that ended), for every kind of case, and
changes nothing of the case but its version. On SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor

AUDREY = Actor.parse("auditor:audrey")
CLOSED_AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def test_an_interruption_is_recorded_once_and_changes_nothing_of_the_case(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    proposal = app.start_proposal(
        actor=Actor.parse("jcu_lead:jo"),
        command_id="p",
        title="Watched",
        kind="procurement",
        value_pence=100_000,
        parties=["PCC"],
        public_health=False,
    ).reference
    dispute = app.raise_dispute(
        actor=Actor.parse("party_rep:PCC:pat"), fields={"against": ["CCC"], "subject": "Also watched"}, command_id="d"
    ).reference
    for reference in (proposal, dispute):
        before = app.state(reference)
        for _ in range(2):  # noticed by two sweeps (or two workers): one event
            after = app.record_interruption(
                reference,
                how="terminated",
                workflow_status="TERMINATED",
                reason="from the UI",
                identity="temporal-cli:mallory@host",
                run_id="run-1",
                closed_at=CLOSED_AT,
                command_id=f"{reference}:workflow-ended:run-1",
            )
        assert after.version == before.version + 1
        assert {**asdict(app.state(reference)), "version": before.version} == asdict(before)
        entries = app.history(reference, actor=AUDREY)
        assert [e.event for e in entries].count("WorkflowInterrupted") == 1
        last = entries[-1]
        assert (last.event, last.actor_role, last.actor_id) == ("WorkflowInterrupted", "system", "concordat")
        assert last.changes["how"] == "terminated" and last.changes["closed_at"] == CLOSED_AT
        assert last.prev_hash == entries[-2].hash  # on the case's hash chain like every event

    # Another run ended later: a second record.
    app.record_interruption(
        proposal,
        how="canceled",
        workflow_status="CANCELED",
        run_id="run-2",
        command_id=f"{proposal}:workflow-ended:run-2",
    )
    assert [e.event for e in app.history(proposal, actor=AUDREY)].count("WorkflowInterrupted") == 2
    app.close()
    reopened = bootstrap.open_cases(settings)  # and it loads back from the store (and its snapshots)
    assert [e.event for e in reopened.history(proposal, actor=AUDREY)].count("WorkflowInterrupted") == 2
    assert reopened.state(proposal).stage == "jcu"
