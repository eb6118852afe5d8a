"""CaseWorkflow running disputes, notices, variations and funding changes on Temporal's time-skipping
test server, with the real worker, activities and application on a fresh SQLite store. Six months
pass in about a second."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from tests import proving
from tests.domain.support import MINUTES, open_agreed_fund
from tests.people import ensure
from workers.activities import case_state
from workflows.case import CaseWorkflow
from workflows.contracts import ActInput, ActorRef, CaseInput, CaseState

AUDITOR = Actor.parse("auditor:audrey")
HISTORIES = Path(__file__).parent / "histories"


def ref(text: str) -> ActorRef:
    a = Actor.parse(text)
    return ActorRef(id=a.id, role=a.role)


@dataclass
class Timeline:
    env: WorkflowEnvironment
    app: CaseService
    task_queue: str

    async def send(self, handle: WorkflowHandle[Any, Any], act: ActInput, command_id: str | None = None) -> CaseState:
        """A command as the CLI sends it: signed, at the test server's (skipped) time."""
        return await proving.send(handle, act, command_id=command_id, at=await self.env.get_current_time())

    async def start(self, workflow: Any, state: Any) -> WorkflowHandle:
        return await self.env.client.start_workflow(
            workflow.run,
            CaseInput(reference=state.reference, state=case_state(state)),
            id=state.reference,
            task_queue=self.task_queue,
        )

    async def today(self) -> date:
        return self.app.rules.calendar.local_date(await self.env.get_current_time())

    async def serve(self, **fields: Any) -> WorkflowHandle:
        state = self.app.serve_notice(
            actor=Actor.parse("party_rep:CCC:cy"),
            command_id=str(uuid.uuid4()),
            fields={"letter_ref": "CCC/2026/17", **fields},
            at=await self.env.get_current_time(),
        )
        return await self.start(CaseWorkflow, state)

    async def sleep_until(self, when: Any) -> None:
        await self.env.sleep(when - await self.env.get_current_time())

    async def keep(self, handle: WorkflowHandle, name: str) -> None:
        """With CONCORDAT_RECORD_HISTORIES=1, store this run's history for test_replay.py."""
        if os.environ.get("CONCORDAT_RECORD_HISTORIES") == "1":
            (HISTORIES / f"{name}.json").write_text((await handle.fetch_history()).to_json())

    def events(self, reference: str) -> list[str]:
        return [h.event for h in self.app.history(reference, actor=AUDITOR)]

    def midnight(self, day: date) -> str:
        """The instant a date takes effect: its start in Europe/London, as stored (UTC)."""
        return self.app.rules.calendar.at(day, time(0, 0)).isoformat()

    def members(self) -> list[str]:
        return self.app.partnership_view(actor=AUDITOR)["members"]


@pytest.fixture
async def timeline(time_skipping_env: WorkflowEnvironment, sqlite_settings: Settings) -> AsyncIterator[Timeline]:
    app = bootstrap.open_cases(sqlite_settings)
    queue = f"tq-{uuid.uuid4()}"
    parts = bootstrap.build_worker(time_skipping_env.client, app, queue, command_key=proving.TEST_COMMAND_KEY)
    async with parts.worker:
        yield Timeline(time_skipping_env, app, queue)
    parts.executor.shutdown()


async def test_a_notice_matures_six_months_on_and_not_a_day_before(timeline: Timeline) -> None:
    handle = await timeline.serve()
    view = timeline.app.state(handle.id)
    effective = date.fromisoformat(view.details["effective"])
    mature_at = view.timers[-1].at
    await timeline.sleep_until(mature_at - timedelta(days=1))
    assert (await handle.query(CaseWorkflow.state)).status == "pending"
    assert timeline.members() == ["PCC", "CCC", "CPCCG"]
    assert timeline.events(handle.id) == ["Served", "RemindersSent", "RemindersSent"]
    result = await handle.result()
    assert result.status == "matured"
    assert timeline.members() == ["PCC", "CPCCG"]
    assert (await timeline.env.get_current_time()) >= mature_at
    assert timeline.app.partnership_view(actor=AUDITOR)["departures"][0]["on"] == timeline.midnight(effective)
    await timeline.keep(handle, "termination_matured")


async def test_a_year_end_notice_matures_on_31_march(timeline: Timeline) -> None:
    handle = await timeline.serve(year_end=True)
    view = timeline.app.state(handle.id)
    assert view.details["effective"].endswith("-03-31")
    assert (await handle.result()).status == "matured"
    left = timeline.app.partnership_view(actor=AUDITOR)["departures"][0]
    assert left["on"] == timeline.midnight(date.fromisoformat(view.details["effective"]))


async def test_a_notice_served_on_31_august_matures_on_the_last_day_of_february(timeline: Timeline) -> None:
    today = await timeline.today()
    served = date(today.year if today < date(today.year, 8, 31) else today.year + 1, 8, 31)
    # A notice is recorded within days of service: the clock goes to that 31 August first.
    await timeline.sleep_until(timeline.app.rules.calendar.at(served, time(10, 0)))
    handle = await timeline.serve(served_on=served.isoformat())
    effective = timeline.app.state(handle.id).details["effective"]
    assert effective in (f"{served.year + 1}-02-28", f"{served.year + 1}-02-29")
    assert (await handle.result()).status == "matured"
    left = timeline.app.partnership_view(actor=AUDITOR)["departures"][0]
    assert left["on"] == timeline.midnight(date.fromisoformat(effective))


async def test_a_withdrawn_notice_never_matures(timeline: Timeline) -> None:
    handle = await timeline.serve()
    state = await timeline.send(handle, ActInput(actor=ref("party_rep:CCC:cy"), action="withdraw"))
    assert state.status == "withdrawn"
    assert (await handle.result()).status == "withdrawn"
    await timeline.env.sleep(timedelta(days=400))
    assert timeline.members() == ["PCC", "CCC", "CPCCG"]
    assert timeline.events(handle.id) == ["Served", "Withdrawn"]


async def test_consent_on_a_notice_is_refused_and_the_notice_runs_on(timeline: Timeline) -> None:
    handle = await timeline.serve()
    today = (await timeline.today()).isoformat()
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await timeline.send(
            handle, ActInput(actor=ref("party_rep:PCC:pat"), action="consent", fields={"effective": today})
        )
    assert "mutual consent is an agreement of its own" in str(caught.value.cause)
    assert timeline.events(handle.id) == ["Served"]
    assert (await handle.query(CaseWorkflow.state)).status == "pending"


async def propose(timeline: Timeline, **fields: Any) -> WorkflowHandle:
    state = timeline.app.propose_agreement(
        actor=Actor.parse("party_rep:CCC:cy"),
        command_id=str(uuid.uuid4()),
        fields={"agreement_ref": "MOU/EXIT/1", **fields},
        at=await timeline.env.get_current_time(),
    )
    return await timeline.start(CaseWorkflow, state)


async def test_an_agreement_every_party_signs_takes_effect_on_its_date_and_cannot_be_undone(
    timeline: Timeline,
) -> None:
    on = await timeline.today() + timedelta(days=45)
    handle = await propose(timeline, leaving="CCC", effective=on.isoformat())
    await timeline.send(handle, ActInput(actor=ref("party_rep:PCC:pat"), action="agree"))
    state = await timeline.send(handle, ActInput(actor=ref("party_rep:CPCCG:gil"), action="agree"))
    assert (state.status, [t.name for t in state.timers]) == ("in_force", ["take_effect"])
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await timeline.send(handle, ActInput(actor=ref("party_rep:PCC:pat"), action="refuse"))
    assert "no one party can undo it" in str(caught.value.cause)
    assert timeline.members() == ["PCC", "CCC", "CPCCG"]
    assert (await handle.result()).status == "took_effect"
    assert timeline.members() == ["PCC", "CPCCG"]
    assert timeline.app.partnership_view(actor=AUDITOR)["departures"][0]["on"] == timeline.midnight(on)
    assert timeline.events(handle.id) == ["Proposed", "Signed", "Signed", "TookEffect"]
    await timeline.keep(handle, "agreement_took_effect")


async def test_an_agreement_not_signed_by_every_party_lapses_after_its_date(timeline: Timeline) -> None:
    on = await timeline.today() + timedelta(days=10)
    handle = await propose(timeline, effective=on.isoformat())
    await timeline.send(handle, ActInput(actor=ref("party_rep:PCC:pat"), action="agree"))
    assert (await handle.result()).status == "lapsed"
    assert timeline.app.partnership_view(actor=AUDITOR)["ended_on"] is None


async def test_the_validator_refuses_a_party_that_did_not_serve_the_notice(timeline: Timeline) -> None:
    handle = await timeline.serve()
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await timeline.send(handle, ActInput(actor=ref("party_rep:PCC:pat"), action="withdraw"))
    assert "allowed: party_rep:CCC" in str(caught.value.cause)
    assert timeline.events(handle.id) == ["Served"]


async def test_a_dispute_goes_through_mediation_to_binding_findings(timeline: Timeline) -> None:
    ensure(timeline.app, "mediator:mo")  # the mediator is a person of the directory
    state = timeline.app.raise_dispute(
        actor=Actor.parse("party_rep:PCC:pat"),
        command_id=str(uuid.uuid4()),
        fields={"against": ["CCC"], "subject": "Overspend share"},
        at=await timeline.env.get_current_time(),
    )
    handle = await timeline.start(CaseWorkflow, state)
    steps = [
        ("lead_director:dan", "resolve", {"outcome": "mediation"}),
        ("lead_director:dan", "nominate", {"mediator": "mo"}),
        ("party_rep:PCC:pat", "agree", {}),
        ("party_rep:CCC:cy", "agree", {}),
        ("lead_director:dan", "appoint", {"letter_ref": "JCU/MED/1"}),
        ("mediator:mo", "findings", {"findings": "Split 50/50", "cost_pence": 120_001}),
    ]
    for who, action, fields in steps:
        s = await timeline.send(handle, ActInput(actor=ref(who), action=action, fields=fields))
    assert s.status == "findings_recorded"
    assert (await handle.result()).status == "findings_recorded"
    assert timeline.app.state(handle.id).details["cost_shares"] == {"PCC": 60_001, "CCC": 60_000}
    await timeline.keep(handle, "dispute_findings_recorded")


async def test_a_mediator_withdraws_and_another_is_appointed_and_records_the_findings(timeline: Timeline) -> None:
    for mediator in ("mediator:mo", "mediator:meg"):
        ensure(timeline.app, mediator)
    state = timeline.app.raise_dispute(
        actor=Actor.parse("party_rep:PCC:pat"),
        command_id=str(uuid.uuid4()),
        fields={"against": ["CCC"], "subject": "Overspend share"},
        at=await timeline.env.get_current_time(),
    )
    handle = await timeline.start(CaseWorkflow, state)
    appoint = [
        ("party_rep:PCC:pat", "agree", {}),
        ("party_rep:CCC:cy", "agree", {}),
    ]
    steps = [
        ("lead_director:dan", "resolve", {"outcome": "mediation"}),
        ("lead_director:dan", "nominate", {"mediator": "mo"}),
        *appoint,
        ("lead_director:dan", "appoint", {"letter_ref": "JCU/MED/1"}),
        ("mediator:mo", "withdraw", {"note": "A conflict came to light"}),
        ("lead_director:dan", "nominate", {"mediator": "meg"}),
        *appoint,
        ("lead_director:dan", "appoint", {"letter_ref": "JCU/MED/2"}),
    ]
    for who, action, fields in steps:
        s = await timeline.send(handle, ActInput(actor=ref(who), action=action, fields=fields))
    assert (s.stage, s.status) == ("mediation", "open")
    # The mediation's clock runs again for the new mediator: a reminder comes before its deadline.
    await timeline.sleep_until(s.deadline - timedelta(days=1))
    assert timeline.events(handle.id)[-1] == "ReminderSent"
    s = await timeline.send(
        handle, ActInput(actor=ref("mediator:meg"), action="findings", fields={"findings": "Split", "cost_pence": 10})
    )
    assert (s.stage, s.status) == ("", "findings_recorded")
    assert (await handle.result()).status == "findings_recorded"
    await timeline.keep(handle, "dispute_mediator_withdrew_then_findings")


async def test_a_missed_director_deadline_is_escalated_after_a_reminder(timeline: Timeline) -> None:
    state = timeline.app.raise_dispute(
        actor=Actor.parse("party_rep:PCC:pat"),
        command_id=str(uuid.uuid4()),
        fields={"against": ["CCC"], "subject": "Overspend share"},
        at=await timeline.env.get_current_time(),
    )
    handle = await timeline.start(CaseWorkflow, state)
    await timeline.sleep_until(state.deadline + timedelta(hours=1))
    assert timeline.events(handle.id) == ["Raised", "ReminderSent", "Escalated"]
    assert (await handle.query(CaseWorkflow.state)).actions[0].name == "resolve"


async def test_an_agreed_variation_takes_effect_on_its_date(timeline: Timeline) -> None:
    now = await timeline.env.get_current_time()
    effective = timeline.app.rules.calendar.local_date(now) + timedelta(days=120)
    state = timeline.app.start_variation(
        actor=Actor.parse("jcu_lead:jo"),
        command_id=str(uuid.uuid4()),
        at=now,
        fields={
            "provider": "Hinchingbrooke",
            "contract_ref": "C-1",
            "reason": "contract_performance_notice",
            "value_change_pence": -100,
            "parties": ["PCC"],
            "effective_on": effective.isoformat(),
        },
    )
    handle = await timeline.start(CaseWorkflow, state)
    steps = [
        ("lead_director:dan", "decide", {"stage": "jcu", "outcome": "refer"}),
        ("lead_director:dan", "inform_chief_executive", {"note": "briefed"}),
        ("secretary:board:sam", "decide", {"stage": "board", "outcome": "recommend", "minutes_ref": MINUTES}),
        ("lead_director:dan", "decide", {"stage": "jcu_decision", "outcome": "approve"}),
        ("jcu_lead:jo", "decide", {"stage": "provider", "outcome": "accepted"}),
    ]
    for who, action, fields in steps:
        s = await timeline.send(handle, ActInput(actor=ref(who), action=action, fields=fields))
    assert s.status == "agreed"
    assert (await handle.result()).status == "effective"
    assert await timeline.env.get_current_time() >= timeline.app.rules.calendar.at(effective, time(0, 0))
    await timeline.keep(handle, "variation_took_effect")


async def test_a_ring_fenced_funding_change_is_consulted_on_then_applied(timeline: Timeline) -> None:
    now = await timeline.env.get_current_time()
    open_agreed_fund(timeline.app, "PH", ring_fenced=True, contributions={"CCC": 1_000_000}, at=now)
    state = timeline.app.start_funding_change(
        actor=Actor.parse("jcu_lead:jo"),
        command_id=str(uuid.uuid4()),
        at=now,
        fields={"fund": "PH", "changes": {"PCC": -300_000}},  # ring-fenced: the fund says so
    )
    handle = await timeline.start(CaseWorkflow, state)
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await timeline.send(
            handle,
            ActInput(
                actor=ref("secretary:board:sam"),
                action="decide",
                fields={"stage": "programme_board", "outcome": "approve", "minutes_ref": "MIN-2026-01"},
            ),
        )
    assert "awaiting board, not programme_board" in str(caught.value.cause)
    for who, stage, outcome in [
        ("secretary:board:sam", "board", "propose"),
        ("public_health:phil", "consultation", "object"),
        ("secretary:programme_board:pat", "programme_board", "agree"),
        ("secretary:pcc_decision:pia", "pcc_decision", "approve"),
    ]:
        s = await timeline.send(
            handle,
            ActInput(
                actor=ref(who), action="decide", fields={"stage": stage, "outcome": outcome, "minutes_ref": MINUTES}
            ),
        )
    assert s.status == "approved"
    assert (await handle.result()).status == "approved"
    assert timeline.app.fund_view("PH", actor=AUDITOR)["balance_pence"] == 700_000
    await timeline.keep(handle, "funding_change_approved")
