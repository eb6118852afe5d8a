"""Seals over the whole log: what the chains alone cannot see (the newest event of an aggregate
deleted, a whole aggregate deleted, two rows of the log renumbered) is named by `audit verify` with no
heads file kept from before; a seal forged without the audit key is named; an untouched store
verifies clean. On SQLite and on a real PostgreSQL, tampering with the stored rows directly."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from concordat import bootstrap, keys
from concordat.settings import Settings
from domain import ledger
from domain.actor import Actor
from domain.application import CaseService
from domain.audit import Auditor, Break
from domain.case import case_id
from domain.identity import user_aggregate_id
from tests.audit.test_tamper_evidence import Rows, a_case_with_history
from tests.people import ADMIN as OPS
from tests.people import directory as seeded_directory

PASSWORD = "a long enough password"


class Store:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = bootstrap.open_cases(settings)
        self.rows = Rows(settings)
        self.key = keys.audit_key(settings)
        self.ref = a_case_with_history(self.app)
        people = seeded_directory(self.app)
        people.add_user("audrey", ["auditor", "secretary:board"], by=OPS, command_id="a1", password=PASSWORD)
        self.token_id = people.issue_token("audrey", by=OPS, command_id="a2").token_id
        people.revoke_token(self.token_id, by=OPS, command_id="a3")
        people.revoke("audrey", "secretary:board", by=OPS, command_id="a4")  # the last event: RoleRevoked
        self.other = self.app.start_proposal(
            actor=Actor.parse("jcu_lead:jo"),
            command_id="s2",
            title="Other",
            kind="procurement",
            value_pence=1,
            parties=["PCC"],
            public_health=False,
        ).reference

    @property
    def nid(self) -> str:
        return "notification_id" if self.rows.pg else "rowid"

    def oid(self, originator_id: UUID) -> object:
        return originator_id if self.rows.pg else originator_id.hex

    def new_case(self, command_id: str) -> str:
        return new_case(self.app, command_id)

    def seal(self, key: Ed25519PrivateKey | None = None) -> list[ledger.Sealed]:
        return Auditor(self.app).sealer(key or self.key).seal_all()

    def verify(self) -> list[Break]:
        return Auditor(self.app, self.key.public_key()).check().breaks

    def version_of(self, originator_id: UUID, event: str) -> int:
        return next(e.originator_version for e in self.app.events.get(originator_id) if type(e).__name__ == event)


def new_case(app: CaseService, command_id: str) -> str:
    return app.start_proposal(
        actor=Actor.parse("jcu_lead:jo"),
        command_id=command_id,
        title="Later",
        kind="procurement",
        value_pence=1,
        parties=["PCC"],
        public_health=False,
    ).reference


@pytest.fixture
def store(settings: Settings) -> Store:
    return Store(settings)


def test_an_untouched_sealed_store_verifies_clean_and_sealing_again_writes_nothing(store: Store) -> None:
    assert store.verify() == []
    before = store.app.max_notification_id()
    assert Auditor(store.app, store.key.public_key()).check().unsealed == before
    done = store.seal()
    assert [(s.seq, s.first, s.last, s.count) for s in done] == [(1, 1, before, before)]
    newest = store.app.max_notification_id()
    assert store.seal() == [] and store.app.max_notification_id() == newest  # nothing new: nothing written
    report = Auditor(store.app, store.key.public_key()).check()
    assert (report.breaks, report.seals, report.unsealed) == ([], 1, 0)
    store.new_case("x")
    written = store.app.max_notification_id() - newest  # the case, its reference sequence, its receipt
    assert Auditor(store.app, store.key.public_key()).check().unsealed == written == 3
    assert [s.seq for s in store.seal()] == [2]
    assert Auditor(store.app, store.key.public_key()).check().breaks == []


def test_a_seal_holds_at_most_max_entries(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger, "MAX_ENTRIES", 4)
    done = store.seal()
    assert len(done) > 2 and all(s.count <= 4 for s in done)
    assert [s.first for s in done[1:]] == [s.last + 1 for s in done[:-1]]
    assert store.verify() == []


@pytest.mark.parametrize("event", ["RoleRevoked", "TokenRevoked"])
def test_deleting_a_revocation_at_the_end_of_a_users_chain_is_named(store: Store, event: str) -> None:
    user = user_aggregate_id("audrey")
    if event == "TokenRevoked":  # make the token's revocation the last event of the chain
        store.rows.run(
            "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = ?",
            store.oid(user),
            store.version_of(user, "RoleRevoked"),
        )
    version = store.version_of(user, event)
    store.seal()
    store.rows.run(
        "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = ?", store.oid(user), version
    )
    chains_only = [b for u in Auditor(store.app).aggregate_ids() for b in Auditor(store.app).verify_chain(u)]
    assert chains_only == []  # the chain alone cannot see it ...
    found = store.verify()  # ... the seal can, with no heads file
    assert [(b.reference, b.version, b.kind) for b in found] == [("user:audrey", version, "missing")]
    assert found[0].detail.startswith(f"user:audrey v{version} ({event}) sealed in notifications 1–")
    assert found[0].detail.endswith(" is missing")


def test_deleting_a_whole_aggregate_is_named(store: Store) -> None:
    store.seal()
    store.rows.run("DELETE FROM stored_events WHERE originator_id = ?", store.oid(case_id(store.other)))
    found = store.verify()
    assert [(b.reference, b.kind) for b in found] == [(store.other, "missing")]
    assert found[0].detail.startswith(f"aggregate {case_id(store.other)} ({store.other}) sealed in notifications 1–")
    assert "all its events were deleted" in found[0].detail


def test_two_rows_of_the_log_swapped_are_named(store: Store) -> None:
    store.seal()
    log = list(ledger.notifications(store.app, 1))
    a, b = next((x.id, y.id) for x, y in zip(log, log[1:], strict=False) if x.originator_id != y.originator_id)
    for old, new in ((a, -1), (b, a), (-1, b)):
        store.rows.run(f"UPDATE stored_events SET {store.nid} = ? WHERE {store.nid} = ?", new, old)
    found = store.verify()
    assert [(b.reference, b.kind, b.detail) for b in found] == [
        ("notification log", "out_of_order", f"notifications {a} and {b} are not in the order sealed")
    ]


def test_an_edited_newest_event_is_named_by_its_seal(store: Store) -> None:
    """An operator who rewrites a chain's last event consistently (its hash is recomputed by nothing)."""
    store.seal()
    oid = case_id(store.ref)
    state = store.rows.run(
        "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = 5", store.oid(oid)
    )[0][0]
    store.rows.run(
        "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 5",
        bytes(state).replace(b'"recommend"', b'"reject"', 1),
        store.oid(oid),
    )
    found = store.verify()
    assert (store.ref, 5, "edited") in [(b.reference, b.version, b.kind) for b in found]


@pytest.mark.parametrize("signed_by", ["the old signature", "another key"])
def test_a_seal_forged_without_the_audit_key_is_named(store: Store, signed_by: str) -> None:
    """Delete the RoleRevoked, then rewrite the seal to match (entries, digest recomputed): without the
    audit key the signature cannot be made, and `verify` names the seal."""
    user = user_aggregate_id("audrey")
    version = store.version_of(user, "RoleRevoked")
    store.seal()
    store.rows.run(
        "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = ?", store.oid(user), version
    )
    mapper = store.app.mapper
    [(raw,)] = store.rows.run(
        "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = 2",
        store.oid(ledger.LEDGER_ID),
    )
    seal = mapper.transcoder.decode(bytes(raw))
    user_index = next(i for i, agg in enumerate(seal["aggregates"]) if agg[0] == str(user))
    seal["entries"] = [e for e in seal["entries"] if not (e[1] == user_index and e[2] == version)]
    seal["count"] -= 1
    head = next(h for h in Auditor(store.app).heads() if h.originator_id == str(user))
    seal["aggregates"][user_index][2:] = [head.version, head.hash]
    seal["digest"] = ledger.chain_digest(
        "",
        [
            (n.id, str(UUID(str(n.originator_id))), n.originator_version, n.topic, ledger.entry_hash(store.app, n))
            for n in ledger.notifications(store.app, seal["first"], stop=seal["last"])
        ],
    )
    if signed_by == "another key":
        forger = Ed25519PrivateKey.generate()
        seal["public_key"] = ledger.public_text(forger.public_key())
        seal["signature"] = base64.b64encode(
            forger.sign(b"concordat seal v1\n" + ledger.canonical(ledger.seal_body(seal)))
        ).decode()
    store.rows.run(
        "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 2",
        mapper.transcoder.encode(seal),
        store.oid(ledger.LEDGER_ID),
    )
    found = store.verify()
    assert [(b.reference, b.version, b.kind) for b in found] == [("ledger", 1, "forged")]
    assert "does not carry a valid signature of the audit key" in found[0].detail
    # Checked without the key, the forgery is consistent: the signature is what catches it.
    assert Auditor(store.app).check().breaks == []


def test_a_removed_seal_breaks_the_chain_of_seals(store: Store) -> None:
    store.seal()
    store.new_case("x")
    store.seal()
    store.new_case("y")
    store.seal()
    store.rows.run(
        "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = 3", store.oid(ledger.LEDGER_ID)
    )
    kinds = [(b.reference, b.version, b.kind) for b in store.verify()]
    assert ("ledger", 3, "out_of_order") in kinds  # seal 3 does not follow seal 1
    assert ("ledger", 3, "deleted") in kinds  # and the ledger's own chain has a gap


def test_the_projection_runner_seals_while_events_arrive(sqlite_settings: Settings) -> None:
    app = bootstrap.open_cases(sqlite_settings)
    a_case_with_history(app)
    env = {
        **os.environ,
        "CONCORDAT_DATA_DIR": str(sqlite_settings.data_dir),
        "CONCORDAT_DATABASE_URL": "",
        "CONCORDAT_LOG_LEVEL": "info",
    }
    runner = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "concordat", "projections"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def sealed_through(newest: int) -> None:
            deadline = time.monotonic() + 60
            while Auditor(app).check_seals().sealed_through < newest:
                assert runner.poll() is None, "the projection runner stopped"
                assert time.monotonic() < deadline, "the projection runner never sealed"
                time.sleep(0.2)  # polling a process that seals every second

        sealed_through(app.max_notification_id())
        new_case(app, "y")
        sealed_through(app.max_notification_id())
    finally:
        runner.terminate()
        runner.wait(timeout=30)
    report = Auditor(app, keys.audit_key(sqlite_settings).public_key()).check()
    assert (report.breaks, report.unsealed) == ([], 0) and report.seals == 2
