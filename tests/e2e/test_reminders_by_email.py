"""End to end: `concordat up` (Temporal's dev server, worker, outbox) with an SMTP server started here;
a case's reminder and its escalation arrive in the inbox, addressed to the people who must act and to
the person who started it. People set their own address with `concordat user email`.

Time skipping is not available on the dev server, so the policy is made short: the JCU's deadline
becomes the board's next meeting, which is today, and business closes seconds from now. The case is
recorded as started ten days ago (through the store, as the restart fault test does), so its
reminder, three working days before the deadline, is already due when its workflow starts, and its
deadline passes while the test watches."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, time, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from concordat import bootstrap, engine
from domain.actor import Actor
from tests.e2e.conftest import _env, free_port, running_engine
from tests.faults.processes import until
from tests.people import settings_of
from tests.smtp import smtp_server

LONDON = ZoneInfo("Europe/London")


def short_policy(tmp_path: Path, due: datetime) -> Path:
    text = resources.files("domain").joinpath("governance.toml").read_text()
    text = text.replace('close_of_business = "17:00"', f'close_of_business = "{due.strftime("%H:%M:%S")}"')
    text = text.replace(
        'starts = 2026-01-13\nrule = "FREQ=MONTHLY;INTERVAL=2;BYDAY=+2TU"',
        f'starts = {due.date().isoformat()}\nrule = "FREQ=DAILY"',
    )
    jcu = '[routes.proposal.stages.jcu]\ntitle = "Joint Commissioning Unit"\nforum = "jcu"\ndeadline = { working_days = 10 }'
    assert jcu in text
    text = text.replace(jcu, jcu.replace("{ working_days = 10 }", '{ next_meeting = "board" }'))
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def test_a_reminder_and_an_escalation_arrive_in_the_smtp_inbox(tmp_path: Path) -> None:
    due = (datetime.now(LONDON) + timedelta(seconds=50)).replace(microsecond=0)
    with smtp_server() as (inbox, port):
        env = {
            **_env(tmp_path, free_port()),
            "CONCORDAT_POLICY_FILE": str(short_policy(tmp_path, due)),
            "CONCORDAT_SMTP_HOST": "127.0.0.1",
            "CONCORDAT_SMTP_PORT": str(port),
            "CONCORDAT_SMTP_TLS": "none",
            "CONCORDAT_SMTP_SENDER": "concordat@jcu.example.org",
            "CONCORDAT_OUTBOX_POLL_SECONDS": "0.5",
        }
        with running_engine(tmp_path, env, ("--no-web",)) as running:
            assert any(line.startswith("outbox") for line in running.lines)
            addresses = {
                "jcu_lead:jo": "jo@pcc.example.org",
                "lead_director:dan": "dan@pcc.example.org",
                "secretary:programme_board:prue": "prue@cambs.example.org",
            }
            for who, address in addresses.items():
                assert address in running.ok("user", "email", address, who=who)
            refusal = running.refused("user", "email", "Jo <jo@pcc.example.org>", who="jcu_lead:jo")
            assert "is not allowed: give one address" in refusal

            settings = settings_of(env)
            app = bootstrap.open_cases(settings)
            opened = datetime.combine(due.date() - timedelta(days=10), time(12, 0), tzinfo=LONDON)
            state = app.start_proposal(
                actor=Actor.parse("jcu_lead:jo"),
                command_id="start-1",
                title="Speech and language therapy",
                kind="pathway_change",
                value_pence=40_000_000,
                parties=["PCC", "CPCCG"],
                public_health=False,
                at=opened,
            )
            assert state.deadline == due

            async def start_workflow() -> None:
                client = await bootstrap.connect(settings)
                await engine.ensure_workflow(client, settings, state, app)

            asyncio.run(start_workflow())

            def subjects() -> set[tuple[str, str]]:
                return {(str(m["To"]), str(m["Subject"]).split(":")[0]) for m in inbox.received()}

            until(lambda: len(subjects()) >= 2, 60, "the reminder to reach the inbox")
            assert subjects() == {("dan@pcc.example.org", "Reminder"), ("jo@pcc.example.org", "Reminder")}
            until(lambda: len(subjects()) >= 4, 120, "the escalation to reach the inbox")
            assert subjects() == {
                ("dan@pcc.example.org", "Reminder"),
                ("jo@pcc.example.org", "Reminder"),
                ("prue@cambs.example.org", "Escalated"),
                ("jo@pcc.example.org", "Escalated"),
            }
            escalated = next(m for m in inbox.received() if str(m["To"]).startswith("prue"))
            assert state.reference in str(escalated["Subject"]) and "programme board" in escalated.get_content()
            listed = json.loads(running.ok("outbox", "list", "--json", who="jcu_lead:jo"))
            assert {(r["reference"], r["kind"], r["status"]) for r in listed} == {
                (state.reference, "reminder", "sent"),
                (state.reference, "escalation", "sent"),
            }
            health = running.run("health", "outbox")
            assert health.returncode == 0 and f"sending through 127.0.0.1:{port} (none)" in health.stdout
            app.close()
    assert len(inbox.unique()) == len(inbox.received()) == 4
