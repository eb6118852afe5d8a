"""The outbox's sender killed (SIGKILL) after the SMTP server accepted a message and before the row was
marked sent: on restart the message goes again with the same Message-ID, so the receiver, which
deduplicates by Message-ID, sees each reminder once, and the outbox ends with every row sent.

This is the promise `workers/mailer.py` makes, precisely: at-least-once delivery, one Message-ID."""

from __future__ import annotations

from pathlib import Path

from concordat import bootstrap
from concordat.settings import Settings
from domain.directory import Directory
from tests.domain.support import escalate, remind, start
from tests.faults.processes import env_for, until
from tests.faults.processes import start as start_process
from tests.people import ADMIN, directory
from tests.smtp import smtp_server


def test_a_sender_killed_between_send_and_record_resends_under_the_same_message_id(
    settings: Settings, tmp_path: Path
) -> None:
    app = bootstrap.open_cases(settings)
    directory(app)
    people = Directory(app)
    people.add_user("jo", ["jcu_lead"], by=ADMIN, command_id="add-jo", email="jo@pcc.example.org")
    people.add_user("dan", ["lead_director"], by=ADMIN, command_id="add-dan", email="dan@pcc.example.org")
    people.add_user("pat", ["secretary:programme_board"], by=ADMIN, command_id="add-pat", email="pat@cambs.example.org")
    ref = start(app).reference
    remind(app, ref)
    escalate(app, ref)

    with smtp_server() as (inbox, port):
        smtp = {
            "CONCORDAT_SMTP_HOST": "127.0.0.1",
            "CONCORDAT_SMTP_PORT": str(port),
            "CONCORDAT_SMTP_TLS": "none",
            "CONCORDAT_SMTP_SENDER": "concordat@jcu.example.org",
            "CONCORDAT_OUTBOX_POLL_SECONDS": "0.2",
        }
        sender = start_process(
            "outbox-1", ["outbox"], env_for(settings, **smtp, CONCORDAT_FAULT_PAUSE_AFTER_SEND="120"), tmp_path
        )
        try:
            until(lambda: len(inbox.received()) >= 1, 60, "the first message to reach the SMTP server")
            sender.kill9()  # the server has it; the outbox does not know yet
        finally:
            sender.stop()
        first = inbox.received()[0]
        view = bootstrap.open_outbox(settings)
        row = next(r for r in view.rows() if r["message_id"] == first["Message-ID"])
        assert row["status"] == "pending", "the row was marked sent before the kill: the window was not hit"

        sender = start_process("outbox-2", ["outbox"], env_for(settings, **smtp), tmp_path)
        try:
            until(lambda: view.counts() == {"sent": 4}, 60, "the restarted sender to send and record every row")
        finally:
            sender.stop()

    received = inbox.received()
    assert len(received) == 5  # at least once: the first message twice
    assert [str(m["Message-ID"]) for m in received].count(str(first["Message-ID"])) == 2
    assert len(inbox.unique()) == 4  # once, as the receiver shows it
    assert {r["message_id"] for r in view.rows()} == set(inbox.unique())
