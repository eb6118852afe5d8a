"""The outbox's sender: each pending row (or, with the daily digest, each person's day) by SMTP.

Why the standard library's `smtplib`: the sender is one synchronous loop that sends one message at a
time beside the outbox's projection runner thread; `smtplib` speaks SMTP, STARTTLS, implicit TLS and
AUTH, is maintained with Python itself, and adds no dependency. (`aiosmtplib` would be the choice in
an asyncio process; this is not one.)

What "once" means here. A row is marked sent only after the SMTP server has accepted the message.
If the sender dies between the server's acceptance and that mark (a crash, a SIGKILL, the database
gone for a moment), the row is still pending and is sent again on restart: delivery is at least
once. Both copies carry the same Message-ID (it follows from the store and the row's key, see
`projections/outbox.py`), so a receiver that deduplicates by Message-ID, as most mail stores and
clients do, shows it once. A digest is recorded, with the rows it lists, before it is sent, so its
second sending lists the same rows under the same Message-ID. Nothing is sent twice otherwise: a
replayed event finds its rows already there, and a row once marked sent is never picked again.

Secrets: the SMTP password is used to log in and is never logged, printed or stored in a row.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as clock_time
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import structlog

from projections.outbox import OutboxView

log = structlog.get_logger("concordat.outbox")
TLS = Literal["none", "starttls", "tls"]
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}


@dataclass(frozen=True)
class Smtp:
    """Where and how to send. `password` is only ever handed to the server's AUTH."""

    host: str
    sender: str
    port: int = 0
    tls: TLS = "starttls"
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 30.0

    @property
    def port_or_default(self) -> int:
        return self.port or DEFAULT_PORTS[self.tls]

    def connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        server: smtplib.SMTP
        if self.tls == "tls":
            server = smtplib.SMTP_SSL(self.host, self.port_or_default, timeout=self.timeout, context=context)
        else:
            server = smtplib.SMTP(self.host, self.port_or_default, timeout=self.timeout)
            if self.tls == "starttls":
                server.starttls(context=context)
        if self.username:
            server.login(self.username, self.password)
        return server


def _local(text: str | None, zone: ZoneInfo) -> str:
    """An instant (or a date) as people read it: `Tue 12 Jan 2027 17:00`, in the partnership's zone."""
    if not text:
        return "no deadline"
    if "T" not in text:
        return datetime.fromisoformat(text).strftime("%a %d %b %Y")
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(zone).strftime("%a %d %b %Y %H:%M")


def _line(row: dict[str, Any], zone: ZoneInfo) -> str:
    what = "Escalated" if row["kind"] == "escalation" else "Reminder"
    where = row["forum"].replace("_", " ")
    why = "you started it" if row["role"] == "starter" else f"as {row['role']}"
    if row["kind"] == "escalation":
        text = f"{what}: {row['reference']} missed its deadline at {row['stage'].replace('_', ' ')} and is now with {where}"
    else:
        text = f"{what}: {row['reference']} awaits {where}"
    return f"{text}; deadline {_local(row['deadline'], zone)} ({why})"


@dataclass
class Mailer:
    """Sends what the outbox holds. With no `smtp`, sends nothing: the outbox fills, and `concordat
    health outbox` says so. With `digest_at`, a person's rows go out once a day, at that local time,
    in one message; otherwise each row goes out as it arrives."""

    view: OutboxView
    smtp: Smtp | None
    store: str
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/London"))
    digest_at: clock_time | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    pause_after_send: float = 0.0  # fault tests only: the window between the server's acceptance and the mark

    def send_due(self) -> int:
        """One pass: send what is due, mark each sent. Returns how many messages the server accepted.
        A failure to reach the server ends the pass (the rows stay pending for the next); a server
        that refuses an address for good marks that row refused."""
        if self.smtp is None:
            return 0
        if self.digest_at is not None:
            return self._send_digests()
        rows = self.view.pending()
        if not rows:
            return 0
        sent = 0
        with self._server() as server:
            for row in rows:
                key = row["key"]

                def refused(why: str, final: bool, key: str = key) -> None:
                    self.view.mark_failed(key, why, final=final)

                if self._deliver(server, self._message(row), key, refused):
                    self.view.mark_sent(row["key"], self.clock())
                    sent += 1
        return sent

    def _send_digests(self) -> int:
        now = self.clock().astimezone(self.zone)
        if self.digest_at is not None and now.time() >= self.digest_at:
            self.view.gather_digests(now.date().isoformat(), self.store, self.clock())
        digests = self.view.pending_digests()
        if not digests:
            return 0
        sent = 0
        with self._server() as server:
            for d in digests:
                rows = self.view.rows_of_digest(d["key"])
                # A refused digest stays pending, with its rows, and is offered again on the next pass.
                if self._deliver(server, self._digest(d, rows), d["key"], lambda why, final: None):
                    self.view.mark_digest_sent(d["key"], self.clock())
                    sent += 1
        return sent

    def _server(self) -> smtplib.SMTP:
        assert self.smtp is not None  # noqa: S101 - send_due returned already without one
        return self.smtp.connect()

    def _deliver(
        self, server: smtplib.SMTP, message: EmailMessage, key: str, refused: Callable[[str, bool], None]
    ) -> bool:
        """Send one message; True once the server accepted it. A server that refuses this message or
        its address says so with a code: 5xx is for good (`refused(why, True)`), 4xx for now; either
        way the next message goes on. A refused sender, or a server gone, ends the pass (raised)."""
        try:
            server.send_message(message)
        except smtplib.SMTPRecipientsRefused as err:
            code = next(iter(err.recipients.values()))[0] if err.recipients else 0
            refused(f"address refused by the server ({code})", code >= 500)
            log.warning("outbox.refused", key=key, code=code)
            return False
        except smtplib.SMTPSenderRefused:
            raise  # CONCORDAT_SMTP_SENDER is the problem, not this message
        except smtplib.SMTPResponseException as err:
            refused(f"refused by the server ({err.smtp_code})", err.smtp_code >= 500)
            log.warning("outbox.refused", key=key, code=err.smtp_code)
            return False
        log.info("outbox.sent", key=key, message_id=message["Message-ID"])
        if self.pause_after_send:
            time.sleep(self.pause_after_send)
        return True

    def _headers(self, message: EmailMessage, to: str, message_id: str, subject: str) -> None:
        assert self.smtp is not None  # noqa: S101 - only called while sending
        message["From"] = self.smtp.sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = message_id
        message["Date"] = format_datetime(self.clock())
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to a reminder

    def _message(self, row: dict[str, Any]) -> EmailMessage:
        message = EmailMessage()
        what = "Escalated" if row["kind"] == "escalation" else "Reminder"
        self._headers(message, row["email"], row["message_id"], f"{what}: {row['reference']} {row['title']}"[:200])
        message.set_content(
            f"{_line(row, self.zone)}\n\n{row['reference']}: {row['title']}\n\n"
            f'See it with `concordat show {row["reference"]}`, or on your "Your work" page.\n'
        )
        return message

    def _digest(self, digest: dict[str, Any], rows: list[dict[str, Any]]) -> EmailMessage:
        message = EmailMessage()
        day = datetime.fromisoformat(digest["day"]).strftime("%a %d %b %Y")
        self._headers(message, digest["email"], digest["message_id"], f"Your reminders, {day} ({len(rows)})")
        lines = [f"- {_line(r, self.zone)}\n  {r['reference']}: {r['title']}" for r in rows]
        message.set_content(
            f"Reminders and escalations for you, {day}:\n\n"
            + "\n".join(lines)
            + '\n\nSee them on your "Your work" page.\n'
        )
        return message
