"""The outbox: one row per reminder or escalation and person it must reach, from the event log.

A case's clock records a reminder before a deadline (`ReminderSent`, `RemindersSent`) and an
escalation at a missed one (`Escalated`) as events; nothing in the domain sends anything. This
projection follows the log like the views do and, for each such event, writes one row per person who
must hear of it: everyone who holds the role that must act (the stage's decider, the escalation
forum's, a dispute's named roles, each party's representatives for a notice) and the person who
started the case. A sender (`workers/mailer.py`) sends the rows by email and marks them sent.

Deterministic, so that a replay or a retry stores nothing twice:
- A row's key is the event (case reference and version) and the recipient's user id; the rows and
  the tracking position commit together, and an insert of a key already there does nothing.
- Who holds which role, and each person's address, are read from this view's own copy of the
  directory, kept from the directory's events in the same log: the recipients of an event are those
  of the directory as it stood at that event, whenever the projection runs.
- The row's Message-ID follows from the store's id and the row's key, so a message sent twice (a
  crash between the SMTP server's acceptance and the row being marked sent) carries the same
  Message-ID both times, and a receiver can drop the second.

A row starts `pending`; `no_address` when the person had no email address then (it is shown on
their "Your work" page all the same); `expired` when the event was already older than the outbox's
horizon when the outbox first saw it (an outbox started on a store with a history does not mail
its past); `sent` once the SMTP server accepted it; `refused` when the server refused the address
for good. The outbox is not one of the views `concordat projections` rebuilds: rebuilding it would
send everything again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from domain.dispute import Dispute
from domain.funding import FundingChange
from domain.identity import User
from domain.policy import Policy
from domain.proposal import Proposal
from domain.staged import StagedCase
from domain.termination import TerminationNotice
from domain.variation import Variation
from projections.case_list import iso
from projections.tables import PostgresViewTables, SQLiteViewTables, ViewTables

PENDING, SENT, NO_ADDRESS, EXPIRED, REFUSED = "pending", "sent", "no_address", "expired", "refused"
ROW_COLUMNS = (
    "key, message_id, reference, title, kind, stage, forum, deadline, role, recipient, email, event_at,"
    " queued_at, status, sent_at, digest, attempts, last_error"
)


def message_id(store: str, key: str) -> str:
    """The Message-ID of a row (or a digest): the same for the same store and key, always."""
    digest = hashlib.sha256(f"{store}|{key}".encode()).hexdigest()[:40]
    return f"<{digest}@concordat.invalid>"


class OutboxView(ViewTables):
    TABLES = ("outbox", "outbox_people", "outbox_cases", "outbox_digests")
    DDL: ClassVar = (
        "CREATE TABLE IF NOT EXISTS {t_outbox_people} ("
        " aggregate_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, email TEXT NOT NULL, roles TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {t_outbox_cases} ("
        " case_id TEXT PRIMARY KEY, reference TEXT NOT NULL, title TEXT NOT NULL, starter TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {t_outbox} ("
        " key TEXT PRIMARY KEY, message_id TEXT NOT NULL, reference TEXT NOT NULL, title TEXT NOT NULL,"
        " kind TEXT NOT NULL, stage TEXT NOT NULL, forum TEXT NOT NULL, deadline TEXT, role TEXT NOT NULL,"
        " recipient TEXT NOT NULL, email TEXT NOT NULL, event_at TEXT NOT NULL, queued_at TEXT NOT NULL,"
        " status TEXT NOT NULL, sent_at TEXT, digest TEXT, attempts INTEGER NOT NULL, last_error TEXT)",
        "CREATE INDEX IF NOT EXISTS outbox_by_status ON {t_outbox} (status, queued_at)",
        "CREATE INDEX IF NOT EXISTS outbox_by_recipient ON {t_outbox} (recipient, event_at)",
        "CREATE TABLE IF NOT EXISTS {t_outbox_digests} ("
        " key TEXT PRIMARY KEY, message_id TEXT NOT NULL, recipient TEXT NOT NULL, email TEXT NOT NULL,"
        " day TEXT NOT NULL, created_at TEXT NOT NULL, status TEXT NOT NULL, sent_at TEXT)",
    )

    # --- what the sender asks -------------------------------------------------------------------

    def pending(self, limit: int = 100) -> list[dict[str, Any]]:
        """Rows to send one by one, oldest first (not those a digest has taken)."""
        return self.query(
            f"SELECT {ROW_COLUMNS} FROM {{t_outbox}} WHERE status = :status AND digest IS NULL"
            " ORDER BY queued_at, key LIMIT :limit",
            {"status": PENDING, "limit": limit},
        )

    def mark_sent(self, key: str, at: datetime) -> None:
        self.execute(
            [
                (
                    "UPDATE {t_outbox} SET status = :sent, sent_at = :at, attempts = attempts + 1, last_error = NULL"
                    " WHERE key = :key AND status = :pending",
                    {"sent": SENT, "pending": PENDING, "at": iso(at), "key": key},
                )
            ]
        )

    def mark_failed(self, key: str, error: str, *, final: bool) -> None:
        """An attempt that failed: the row stays pending to be tried again, or (`final`) is refused."""
        self.execute(
            [
                (
                    "UPDATE {t_outbox} SET status = :status, attempts = attempts + 1, last_error = :error"
                    " WHERE key = :key AND status = :pending",
                    {"status": REFUSED if final else PENDING, "pending": PENDING, "error": error[:500], "key": key},
                )
            ]
        )

    # --- digests --------------------------------------------------------------------------------

    def gather_digests(self, day: str, store: str, at: datetime) -> None:
        """Today's digest for each person with rows pending and none today yet: recorded, with the rows
        it lists, in one transaction, before anything is sent, so a resend lists the same rows under
        the same Message-ID. Rows queued after it wait for tomorrow's."""
        waiting = self.query(
            "SELECT recipient, min(email) AS email FROM {t_outbox} WHERE status = :pending AND digest IS NULL"
            " AND recipient NOT IN (SELECT recipient FROM {t_outbox_digests} WHERE day = :day)"
            " GROUP BY recipient ORDER BY recipient",
            {"pending": PENDING, "day": day},
        )
        for person in waiting:
            key = f"digest/{person['recipient']}/{day}"
            self.execute(
                [
                    (
                        "INSERT INTO {t_outbox_digests} (key, message_id, recipient, email, day, created_at, status)"
                        " VALUES (:key, :message_id, :recipient, :email, :day, :at, :pending)",
                        {
                            "key": key,
                            "message_id": message_id(store, key),
                            "recipient": person["recipient"],
                            "email": person["email"],
                            "day": day,
                            "at": iso(at),
                            "pending": PENDING,
                        },
                    ),
                    (
                        "UPDATE {t_outbox} SET digest = :key WHERE recipient = :recipient AND status = :pending"
                        " AND digest IS NULL",
                        {"key": key, "recipient": person["recipient"], "pending": PENDING},
                    ),
                ]
            )

    def pending_digests(self) -> list[dict[str, Any]]:
        return self.query(
            "SELECT key, message_id, recipient, email, day FROM {t_outbox_digests} WHERE status = :pending"
            " ORDER BY day, key",
            {"pending": PENDING},
        )

    def rows_of_digest(self, key: str) -> list[dict[str, Any]]:
        return self.query(
            f"SELECT {ROW_COLUMNS} FROM {{t_outbox}} WHERE digest = :key ORDER BY event_at, key", {"key": key}
        )

    def mark_digest_sent(self, key: str, at: datetime) -> None:
        self.execute(
            [
                (
                    "UPDATE {t_outbox_digests} SET status = :sent, sent_at = :at WHERE key = :key",
                    {"sent": SENT, "at": iso(at), "key": key},
                ),
                (
                    "UPDATE {t_outbox} SET status = :sent, sent_at = :at, attempts = attempts + 1"
                    " WHERE digest = :key AND status = :pending",
                    {"sent": SENT, "pending": PENDING, "at": iso(at), "key": key},
                ),
            ]
        )

    # --- what people and operators read ---------------------------------------------------------

    def rows(self, *, recipient: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Rows, newest first: a person's own, or all."""
        clause = " WHERE recipient = :recipient" if recipient else ""
        return self.query(
            f"SELECT {ROW_COLUMNS} FROM {{t_outbox}}{clause} ORDER BY event_at DESC, key DESC LIMIT :limit",
            {"recipient": recipient, "limit": limit},
        )

    def counts(self) -> dict[str, int]:
        found = self.query("SELECT status, count(*) AS n FROM {t_outbox} GROUP BY status")
        return {r["status"]: int(r["n"]) for r in found}

    def digests(self) -> list[dict[str, Any]]:
        return self.query(
            "SELECT key, message_id, recipient, email, day, status, sent_at FROM {t_outbox_digests} ORDER BY key"
        )


INSERT_ROW = (
    f"INSERT INTO {{t_outbox}} ({ROW_COLUMNS}) VALUES (:key, :message_id, :reference, :title, :kind, :stage,"
    " :forum, :deadline, :role, :recipient, :email, :event_at, :queued_at, :status, NULL, NULL, 0, NULL)"
    " ON CONFLICT (key) DO NOTHING"
)
UPSERT_PERSON = (
    "INSERT INTO {t_outbox_people} (aggregate_id, user_id, email, roles) VALUES (:aggregate_id, :user_id, '',"
    " :roles) ON CONFLICT (aggregate_id) DO UPDATE SET user_id = excluded.user_id, roles = excluded.roles"
)


class OutboxProjection(Projection[OutboxView]):
    """Writes `OutboxView` from the log. `policy` (whose forums name the roles that decide) and
    `store` (the store's id, for Message-IDs) are set on a subclass made by `outbox_projection`;
    `max_age` is how old an event may be when first seen and still be sent."""

    name = "outbox"
    policy: ClassVar[Policy | None] = None
    store: ClassVar[str] = ""
    max_age: ClassVar[timedelta] = timedelta(days=7)

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write([], tracking)

    # --- the directory, as the log has it -------------------------------------------------------

    @process_event.register
    def _(self, e: User.Added, tracking: Tracking) -> None:
        params = {"aggregate_id": str(e.originator_id), "user_id": e.user_id, "roles": json.dumps(list(e.roles))}
        self.view.write([(UPSERT_PERSON, params)], tracking)

    @process_event.register
    def _(self, e: User.RoleGranted, tracking: Tracking) -> None:
        self._roles(e, tracking, lambda roles: [*roles, e.role])

    @process_event.register
    def _(self, e: User.RoleRevoked, tracking: Tracking) -> None:
        self._roles(e, tracking, lambda roles: [r for r in roles if r != e.role])

    @process_event.register
    def _(self, e: User.EmailSet, tracking: Tracking) -> None:
        self.view.write(
            [
                (
                    "UPDATE {t_outbox_people} SET email = :email WHERE aggregate_id = :aggregate_id",
                    {"email": e.email, "aggregate_id": str(e.originator_id)},
                )
            ],
            tracking,
        )

    def _roles(self, e: Any, tracking: Tracking, change: Any) -> None:
        found = self.view.query(
            "SELECT roles FROM {t_outbox_people} WHERE aggregate_id = :aggregate_id",
            {"aggregate_id": str(e.originator_id)},
        )
        roles = change(json.loads(found[0]["roles"])) if found else []
        self.view.write(
            [
                (
                    "UPDATE {t_outbox_people} SET roles = :roles WHERE aggregate_id = :aggregate_id",
                    {"roles": json.dumps(roles), "aggregate_id": str(e.originator_id)},
                )
            ],
            tracking,
        )

    # --- the cases: their reference, title and who started them ---------------------------------

    @process_event.register
    def _(self, e: Proposal.Started, tracking: Tracking) -> None:
        self._case(e, e.title, tracking)

    @process_event.register
    def _(self, e: Variation.Started, tracking: Tracking) -> None:
        self._case(e, e.title, tracking)

    @process_event.register
    def _(self, e: FundingChange.Started, tracking: Tracking) -> None:
        self._case(e, e.title, tracking)

    @process_event.register
    def _(self, e: Dispute.Raised, tracking: Tracking) -> None:
        self._case(e, e.subject, tracking)

    @process_event.register
    def _(self, e: TerminationNotice.Served, tracking: Tracking) -> None:
        self._case(e, f"{e.party} gives notice to leave the partnership", tracking)

    def _case(self, e: Any, title: str, tracking: Tracking) -> None:
        self.view.write(
            [
                (
                    "INSERT INTO {t_outbox_cases} (case_id, reference, title, starter) VALUES (:case_id,"
                    " :reference, :title, :starter) ON CONFLICT (case_id) DO NOTHING",
                    {"case_id": str(e.originator_id), "reference": e.reference, "title": title, "starter": e.actor_id},
                )
            ],
            tracking,
        )

    # --- what is sent ---------------------------------------------------------------------------

    @process_event.register
    def _(self, e: StagedCase.ReminderSent, tracking: Tracking) -> None:
        self._queue(e, tracking, kind="reminder", stage=e.stage, forum=e.forum, roles=[e.recipient_role])

    @process_event.register
    def _(self, e: StagedCase.Escalated, tracking: Tracking) -> None:
        self._queue(e, tracking, kind="escalation", stage=e.stage, forum=e.to_forum, roles=self._deciders(e.to_forum))

    @process_event.register
    def _(self, e: Dispute.ReminderSent, tracking: Tracking) -> None:
        self._queue(e, tracking, kind="reminder", stage=e.stage, forum=e.stage, roles=list(e.recipient_roles))

    @process_event.register
    def _(self, e: Dispute.Escalated, tracking: Tracking) -> None:
        self._queue(e, tracking, kind="escalation", stage=e.stage, forum=e.to_forum, roles=self._deciders(e.to_forum))

    @process_event.register
    def _(self, e: TerminationNotice.RemindersSent, tracking: Tracking) -> None:
        # Each member party is reminded through its representatives (`party_rep:<party>`).
        self._queue(
            e,
            tracking,
            kind="reminder",
            stage="notice",
            forum="notice",
            roles=[f"party_rep:{p}" for p in e.recipients],
            deadline=e.effective,
        )

    def _deciders(self, forum: str) -> list[str]:
        if self.policy is None:
            return []
        try:
            return [self.policy.decider_of(forum)]
        except KeyError:
            return []  # a forum a later policy dropped: the case's starter still hears of it

    def _queue(
        self,
        e: Any,
        tracking: Tracking,
        *,
        kind: str,
        stage: str,
        forum: str,
        roles: list[str],
        deadline: Any = None,
    ) -> None:
        case = self.view.query(
            "SELECT reference, title, starter FROM {t_outbox_cases} WHERE case_id = :case_id",
            {"case_id": str(e.originator_id)},
        )
        reference, title, starter = (
            (case[0]["reference"], case[0]["title"], case[0]["starter"]) if case else (str(e.originator_id), "", "")
        )
        deadline = getattr(e, "deadline", None) if deadline is None else deadline
        if kind == "escalation":
            deadline = getattr(e, "deadline", None)  # the escalation forum's own deadline
        if isinstance(deadline, datetime):
            deadline = iso(deadline)
        elif isinstance(deadline, str) and "T" in deadline:
            deadline = iso(datetime.fromisoformat(deadline))
        expired = datetime.now(UTC) - _recorded_at(e) > self.max_age
        statements = []
        for person, role, email in self._recipients(roles, starter):
            key = f"{reference}/v{e.originator_version}/{person}"
            status = EXPIRED if expired else PENDING if email else NO_ADDRESS
            statements.append(
                (
                    INSERT_ROW,
                    {
                        "key": key,
                        "message_id": message_id(self.store, key),
                        "reference": reference,
                        "title": title,
                        "kind": kind,
                        "stage": stage,
                        "forum": forum,
                        "deadline": deadline,
                        "role": role,
                        "recipient": person,
                        "email": email,
                        "event_at": iso(e.at),
                        "queued_at": iso(datetime.now(UTC)),
                        "status": status,
                    },
                )
            )
        self.view.write(statements, tracking)

    def _recipients(self, roles: list[str], starter: str) -> list[tuple[str, str, str]]:
        """(user id, why: the role they hold or `starter`, email) for each person, once, by user id."""
        people = self.view.query("SELECT user_id, email, roles FROM {t_outbox_people} ORDER BY user_id")
        found: dict[str, tuple[str, str, str]] = {}
        for p in people:
            held = json.loads(p["roles"])
            why = next((r for r in roles if r in held), None)
            if why is not None:
                found[p["user_id"]] = (p["user_id"], why, p["email"])
        if starter and starter not in found:
            email = next((p["email"] for p in people if p["user_id"] == starter), "")
            found[starter] = (starter, "starter", email)
        return [found[k] for k in sorted(found)]


def _recorded_at(e: Any) -> datetime:
    """When the event was stored (eventsourcing's own timestamp), for the outbox's horizon."""
    stamp = getattr(e, "timestamp", None)
    if not isinstance(stamp, datetime):
        return datetime.now(UTC)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def outbox_projection(policy: Policy, store: str, max_age: timedelta) -> type[OutboxProjection]:
    """The outbox projection for one store and policy (the runner makes the instance)."""
    # `name` again: eventsourcing names a subclass after its class unless it says otherwise.
    attributes = {"name": OutboxProjection.name, "policy": policy, "store": store, "max_age": max_age}
    return type("OutboxProjection", (OutboxProjection,), attributes)


class SQLiteOutboxView(SQLiteViewTables, OutboxView):
    pass


class PostgresOutboxView(PostgresViewTables, OutboxView):
    pass
