"""The outbox on SQLite and PostgreSQL: each reminder and escalation becomes one row per person who must
hear of it, sent through a real SMTP server (aiosmtpd, started here), each with a Message-ID that
follows from its key; a replay stores and sends nothing twice; with no SMTP server nothing is sent and
`concordat health outbox` says so; the daily digest sends one message per person per day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest

from concordat import bootstrap, health
from concordat.replay import replay
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.directory import Directory
from domain.errors import InvalidInputError
from domain.store import store_id
from projections.outbox import OutboxView, message_id
from tests.domain.support import LEAD, cid, escalate, remind, start
from tests.people import ADMIN, directory
from tests.smtp import smtp_server
from workers.mailer import Mailer, Smtp

PEOPLE = {
    "jo": ("jcu_lead", "jo@pcc.example.org"),  # starts the case
    "dan": ("lead_director", "dan@pcc.example.org"),  # decides at jcu
    "pat": ("secretary:programme_board", "pat@cambs.example.org"),  # the escalation forum's decider
    "sam": ("secretary:board", "sam@cambs.example.org"),  # nobody's business here
}


@pytest.fixture
def app(settings: Settings) -> Iterator[CaseService]:
    cases = bootstrap.open_cases(settings)
    people = directory(cases)
    for who, (role, email) in PEOPLE.items():
        people.add_user(who, [role], by=ADMIN, command_id=f"add-{who}", email=email)
    yield cases
    cases.close()


def project(settings: Settings, app: CaseService) -> OutboxView:
    """Run the outbox's own runner until it has every event, and hand back its view."""
    runner = bootstrap.outbox_runner(settings, app)
    view = bootstrap.open_outbox(settings)
    with runner:
        view.wait(app.name, app.max_notification_id(), timeout=30)
    return view


def mailer(view: OutboxView, app: CaseService, port: int | None, **kw: object) -> Mailer:
    smtp = Smtp(host="127.0.0.1", port=port, tls="none", sender="concordat@jcu.example.org") if port else None
    return Mailer(view=view, smtp=smtp, store=store_id(app), **kw)  # type: ignore[arg-type]


def reminder_and_escalation(app: CaseService) -> str:
    ref = start(app).reference
    remind(app, ref)
    escalate(app, ref)
    return ref


def test_a_reminder_and_an_escalation_reach_who_must_act_and_the_starter_once_each(
    settings: Settings, app: CaseService
) -> None:
    ref = reminder_and_escalation(app)
    view = project(settings, app)
    rows = {(r["kind"], r["recipient"]): r for r in view.rows()}
    assert set(rows) == {("reminder", "dan"), ("reminder", "jo"), ("escalation", "pat"), ("escalation", "jo")}
    assert rows[("escalation", "pat")]["role"] == "secretary:programme_board"
    assert rows[("reminder", "jo")]["role"] == "starter"
    assert {r["status"] for r in rows.values()} == {"pending"}

    with smtp_server() as (inbox, port):
        assert mailer(view, app, port).send_due() == 4
        assert mailer(view, app, port).send_due() == 0  # each row once
    got = {(str(m["To"]), str(m["Subject"]).split(":")[0]): m for m in inbox.received()}
    assert len(inbox.received()) == 4
    assert set(got) == {
        ("dan@pcc.example.org", "Reminder"),
        ("jo@pcc.example.org", "Reminder"),
        ("pat@cambs.example.org", "Escalated"),
        ("jo@pcc.example.org", "Escalated"),
    }
    for (_kind, who), row in rows.items():
        assert row["message_id"] == message_id(store_id(app), row["key"])
        assert row["key"].startswith(f"{ref}/v") and row["key"].endswith(f"/{who}")
    assert {str(m["Message-ID"]) for m in inbox.received()} == {r["message_id"] for r in rows.values()}
    escalated = got[("pat@cambs.example.org", "Escalated")]
    assert ref in escalated.get_content() and "programme board" in escalated.get_content()
    assert escalated["From"] == "concordat@jcu.example.org"
    assert {r["status"] for r in view.rows()} == {"sent"}


def test_a_replayed_log_stores_and_sends_nothing_twice(settings: Settings, app: CaseService) -> None:
    reminder_and_escalation(app)
    view = project(settings, app)
    with smtp_server() as (inbox, port):
        mailer(view, app, port).send_due()
        before = view.rows()
        forget_position(view)  # the runner sees every event again, as after a lost position
        assert (view.max_tracking_id(app.name) or 0) == 0
        view = project(settings, app)
        assert view.rows() == before
        assert not view.quarantined(app.name)  # every event projected again, none refused
        assert mailer(view, app, port).send_due() == 0
    assert len(inbox.received()) == 4


def test_with_no_smtp_server_the_outbox_fills_nothing_is_sent_and_health_says_so(
    settings: Settings, app: CaseService
) -> None:
    reminder_and_escalation(app)
    view = project(settings, app)
    with smtp_server() as (inbox, _port):
        assert mailer(view, app, None).send_due() == 0
    assert not inbox.received()
    assert view.counts() == {"pending": 4}
    line = health.check("outbox", settings, timeout=10, max_lag=0)
    assert "4 pending, 0 sent" in line
    assert "no SMTP server (CONCORDAT_SMTP_HOST is empty): nothing is sent" in line


def test_a_person_with_no_address_is_listed_not_mailed(settings: Settings, app: CaseService) -> None:
    Directory(app).set_email("dan", "", by=ADMIN, command_id=cid())
    reminder_and_escalation(app)
    view = project(settings, app)
    assert {r["recipient"]: r["status"] for r in view.rows() if r["kind"] == "reminder"} == {
        "dan": "no_address",
        "jo": "pending",
    }
    with smtp_server() as (inbox, port):
        assert mailer(view, app, port).send_due() == 3
    assert "dan@pcc.example.org" not in {str(m["To"]) for m in inbox.received()}


def test_the_daily_digest_sends_each_person_one_message_a_day(settings: Settings, app: CaseService) -> None:
    ref = reminder_and_escalation(app)
    view = project(settings, app)
    now = [datetime(2026, 11, 30, 8, 0, tzinfo=UTC)]  # a Monday, before 09:30 in London
    with smtp_server() as (inbox, port):
        digest = mailer(view, app, port, digest_at=time(9, 30), clock=lambda: now[0])
        assert digest.send_due() == 0  # not yet
        now[0] = now[0].replace(hour=10)
        assert digest.send_due() == 3  # jo, dan, pat: one each
        by_person = {str(m["To"]): m for m in inbox.received()}
        assert len(inbox.received()) == 3
        jo = by_person["jo@pcc.example.org"].get_content()
        assert jo.count(ref) >= 2 and "Reminder" in jo and "Escalated" in jo
        assert {r["status"] for r in view.rows()} == {"sent"}

        second = start(app, title="A second case").reference  # later that day
        remind(app, second)
        view = project(settings, app)
        now[0] = now[0].replace(hour=16)
        assert digest.send_due() == 0  # today's digest went out already
        now[0] += timedelta(days=1)
        assert digest.send_due() == 2  # tomorrow: jo and dan
    assert len(inbox.received()) == 5
    assert len(inbox.unique()) == 5
    assert [d["day"] for d in view.digests() if d["recipient"] == "jo"] == ["2026-11-30", "2026-12-01"]


def test_an_email_address_is_checked_and_a_bad_one_writes_nothing(app: CaseService) -> None:
    people = Directory(app)
    version = app.max_notification_id()
    for bad in ("jo", "jo@", "jo@example", "Jo <jo@example.org>", "jo@example.org\r\nBcc: x@y.org", "a b@example.org"):
        with pytest.raises(InvalidInputError, match="is not allowed: give one address"):
            people.set_email("jo", bad, by=Actor("jo", "jcu_lead"), command_id=cid())
    assert app.max_notification_id() == version
    with pytest.raises(Exception, match="only an administrator"):
        people.set_email("jo", "x@example.org", by=Actor("dan", "lead_director"), command_id=cid())
    assert people.set_email("jo", " jo.smith@pcc.example.org ", by=LEAD, command_id=cid())["email"] == (
        "jo.smith@pcc.example.org"
    )


def forget_position(view: OutboxView) -> None:
    """Drop the outbox's tracking position only (its rows stay): the runner then projects from zero."""
    table = getattr(view, "tracking_table_name", "tracking")
    schema = getattr(view.datastore, "schema", None)
    name = f'"{schema}"."{table}"' if schema else table
    with view.datastore.transaction(commit=True) as c:
        c.execute(f"DELETE FROM {name} WHERE application_name = 'Cases'")  # noqa: S608 - our own table


def test_an_smtp_host_without_a_sender_is_unhealthy_in_one_line(sqlite_settings: Settings) -> None:
    broken = sqlite_settings.model_copy(update={"smtp_host": "smtp.example.org"})
    with pytest.raises(health.Unhealthy, match="CONCORDAT_SMTP_SENDER is empty: set the From address"):
        health.check("outbox", broken, timeout=10, max_lag=None)


def test_a_digest_is_recorded_with_its_rows_before_it_is_sent_so_a_resend_is_the_same_message(
    settings: Settings, app: CaseService
) -> None:
    first = reminder_and_escalation(app)
    view = project(settings, app)
    at = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    view.gather_digests("2026-11-30", store_id(app), at)  # then the sender dies before it sends
    second = start(app, title="A second case").reference
    remind(app, second)
    view = project(settings, app)
    with smtp_server() as (inbox, port):
        assert mailer(view, app, port, digest_at=time(9, 30), clock=lambda: at).send_due() == 3
    jo = next(m for m in inbox.received() if str(m["To"]) == "jo@pcc.example.org")
    assert str(jo["Message-ID"]) == message_id(store_id(app), "digest/jo/2026-11-30")
    assert first in jo.get_content() and second not in jo.get_content()  # what was recorded, no more
    waiting = {r["recipient"] for r in view.rows() if r["status"] == "pending"}
    assert waiting == {"jo", "dan"}  # the second case's reminder, for tomorrow's digest


def test_an_address_the_server_refuses_for_good_is_marked_refused_and_the_rest_go_on(
    settings: Settings, app: CaseService
) -> None:
    reminder_and_escalation(app)
    view = project(settings, app)
    with smtp_server() as (inbox, port):
        inbox.refuse.add("dan@pcc.example.org")
        assert mailer(view, app, port).send_due() == 3
        assert mailer(view, app, port).send_due() == 0  # a refused row is not offered again
    dan = next(r for r in view.rows() if r["recipient"] == "dan")
    assert (dan["status"], dan["last_error"]) == ("refused", "address refused by the server (550)")
    assert view.counts() == {"sent": 3, "refused": 1}


def test_an_audit_replay_rebuilds_the_views_and_leaves_the_outbox_alone(settings: Settings, app: CaseService) -> None:
    reminder_and_escalation(app)
    view = project(settings, app)
    with smtp_server() as (inbox, port):
        mailer(view, app, port).send_due()
        before = view.rows()
        for name in ("case_list", "decisions", "public_health"):
            bootstrap.open_view(settings, name).datastore.close()  # the live views, as `up` makes them
        replay(settings)  # every view rebuilt from zero and swapped in
        assert view.rows() == before
        assert mailer(view, app, port).send_due() == 0
    assert len(inbox.received()) == 4
