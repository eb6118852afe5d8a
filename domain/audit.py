"""The auditor's reading of the event store: chains verified, heads kept elsewhere, full export.

Nothing here writes. It reads the stored rows as they are (`recorder.select_events`), decodes them the
way the application does (decryption and decompression included, no upcasting: the chain covers what
was stored), and checks each aggregate's hash chain (see `domain/recorded.py`).

What the chain proves: within an aggregate, no stored event was edited, deleted, reordered or
inserted between two others without the break showing. What it cannot prove alone: that the newest
events of an aggregate were not removed, or that someone with write access did not rewrite a chain
from some event to its end consistently. Heads kept outside the system (`heads`, then `verify` with
those heads) close both gaps up to the moment they were taken. The seals (`domain/ledger.py`) close
them with no heads file, for everything sealed: `verify` checks each seal's signature, the chain of
seals, and that every sealed entry is still where it was sealed, and names what is not.

Secrets never leave: the export shows that a password was set or a token issued, never its hash
(`redact`), and only an auditor may export (`authorize_export`, shared by the CLI, the API and the
pages).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from eventsourcing.persistence import StoredEvent

from domain import ledger
from domain.actor import Actor
from domain.application import CaseService
from domain.case import case_id
from domain.errors import CaseNotFoundError, NotAllowedError
from domain.recorded import state_hash

SECTION = 500
AUDITOR_ROLE = "auditor"
REDACTED = "[redacted]"
# A field whose name says it holds a secret or what proves one: a password hash, a token's secret hash.
SECRET_FIELD = re.compile(r"password|secret|token_hash|credential|private", re.IGNORECASE)
LOG = "notification log"


@dataclass(frozen=True)
class Break:
    """One place where a chain does not hold, named by what it looks like."""

    reference: str
    version: int
    kind: str  # edited, deleted, out_of_order, inserted, truncated, missing, forged
    detail: str
    check: str = "chain"  # what found it: an aggregate's chain, a seal over the log, or a kept head


@dataclass(frozen=True)
class Head:
    reference: str
    originator_id: str
    version: int
    hash: str


@dataclass(frozen=True)
class Verification:
    """What `Auditor.check` found: the chains checked, the breaks, and how far the seals reach."""

    checked: int
    breaks: list[Break]
    seals: int = 0
    sealed_through: int = 0
    unsealed: int = 0
    heads_checked: int = 0
    public_key: str = ""


def authorize_export(app: CaseService, actor: Actor) -> None:
    """Only an auditor may export the history (the CLI, the API and the pages all ask here)."""
    app.authorize_read(actor)
    if actor.role != AUDITOR_ROLE:
        raise NotAllowedError(
            f"only an auditor may export the history; {actor.id} acts as {actor.role} (act as {AUDITOR_ROLE})"
        )


def redact(value: Any) -> Any:
    """`value` with every secret-bearing field's content replaced by "[redacted]" (the field stays, so
    the export still shows that a password was set or a token issued)."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if SECRET_FIELD.search(str(k)) and v not in ("", None) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


@dataclass
class _Row:
    version: int
    topic: str
    state: dict[str, Any] | None
    hash: str | None


class Auditor:
    def __init__(self, app: CaseService, public_key: Ed25519PublicKey | None = None) -> None:
        """`public_key`: the audit key's public half, to check the seals' signatures (without it
        the seals are checked for everything but who signed them)."""
        self.app = app
        self.public_key = public_key

    # --- reading the store as stored ------------------------------------------------------------

    def aggregate_ids(self) -> list[UUID]:
        """Every aggregate with events, in the order each first appeared in the notification log."""
        seen: dict[UUID, None] = {}
        start = 1
        while True:
            section = self.app.recorder.select_notifications(start=start, limit=SECTION)
            for n in section:
                seen.setdefault(UUID(str(n.originator_id)), None)
            if len(section) < SECTION:
                return list(seen)
            start = section[-1].id + 1

    def _stored_id(self, reference: str) -> UUID:
        """The case's id, if it has stored rows (read raw: a row that cannot be decoded is a finding)."""
        originator_id = case_id(reference)
        if not self.app.recorder.select_events(originator_id, limit=1):
            raise CaseNotFoundError(f"no case has the reference {reference!r}")
        return originator_id

    def decode(self, stored: StoredEvent) -> dict[str, Any]:
        mapper = self.app.mapper
        data = stored.state
        if mapper.cipher:
            data = mapper.cipher.decrypt(data)
        if mapper.compressor:
            data = mapper.compressor.decompress(data)
        return mapper.transcoder.decode(data)

    def _rows(self, originator_id: UUID, limit: int | None = None) -> Iterator[_Row]:
        for stored in self.app.recorder.select_events(originator_id, limit=limit):
            try:
                state = self.decode(stored)
            except Exception:  # noqa: BLE001 - any failure to decode is the finding itself
                yield _Row(stored.originator_version, stored.topic, None, None)
                continue
            yield _Row(
                stored.originator_version, stored.topic, state, state_hash(stored.topic, stored.originator_id, state)
            )

    def label(self, originator_id: UUID, rows: list[_Row] | None = None) -> str:
        rows = rows if rows is not None else list(self._rows(originator_id))
        row = next((r for r in rows if r.state is not None), None)
        if row is None or row.state is None:
            return str(originator_id)
        first = row.state
        if row.topic.endswith("PolicyVersion.Adopted"):
            return f"policy:{first['content_hash'][:12]}"
        if row.topic.endswith("CaseCommandReceipt.Received"):  # a command on a case (its own ids per case)
            return f"receipt:{first['reference']}:{first['command_id']}"
        if row.topic.endswith("CommandReceipt.Received"):
            return f"receipt:{first['command_id']}"
        if first.get("reference"):
            return str(first["reference"])
        if "prefix" in first:
            return f"sequence:{first['prefix']}-{first['year']}"
        if "balance_pence" in first:
            return f"fund:{first['name']}"
        if "members" in first:
            return "partnership"
        if row.topic.endswith("User.Added"):
            return f"user:{first['user_id']}"
        if row.topic.endswith("TokenIndex.Indexed"):
            return f"token:{first['token_id']}"
        if row.topic.endswith("Refusal.Refused"):
            return f"refusal:{first.get('key', originator_id)}"
        if row.topic.endswith("People.Started"):
            return "people"
        if row.topic.endswith("Ledger.Started"):
            return "ledger"
        return str((first.get("meta") or {}).get("reference") or originator_id)

    def label_of(self, originator_id: UUID) -> str:
        """An aggregate's label from its first event alone."""
        return self.label(originator_id, list(self._rows(originator_id, limit=1)))

    # --- verification ---------------------------------------------------------------------------

    def verify(self, reference: str | None = None, heads: list[Head] | None = None) -> tuple[int, list[Break]]:
        """(aggregates checked, breaks found) for one case or the whole store."""
        done = self.check(reference, heads)
        return done.checked, done.breaks

    def check(self, reference: str | None = None, heads: list[Head] | None = None) -> Verification:
        """Every chain (or one case's), the seals over the whole log, and any heads kept elsewhere."""
        if reference is not None:
            ids = [self._stored_id(reference)]
        else:
            ids = self.aggregate_ids()
        breaks: list[Break] = []
        for originator_id in ids:
            breaks.extend(self.verify_chain(originator_id))
        sealing = self.check_seals()
        breaks.extend(b for b in sealing.breaks if reference is None or b.reference in (reference, "ledger"))
        kept = [h for h in heads or [] if reference is None or h.reference == reference]
        for head in kept:
            breaks.extend(self._check_head(head))
        return Verification(
            len(ids),
            breaks,
            sealing.seals,
            sealing.sealed_through,
            sealing.unsealed,
            len(kept),
            ledger.public_text(self.public_key) if self.public_key else "",
        )

    # --- the seals over the whole log -------------------------------------------------------------

    def sealer(self, key: Ed25519PrivateKey) -> ledger.Sealer:
        return ledger.Sealer(self.app, key, self.label_of)

    def check_seals(self) -> Verification:
        """Each seal's signature, the chain of seals, and each sealed range against the log now."""
        # The seals first, then the log: a seal written meanwhile covers only what the log then holds.
        rows = list(self._rows(ledger.LEDGER_ID))
        where: dict[tuple[str, int], int] = {}
        for n in ledger.notifications(self.app, 1):
            where[(str(UUID(str(n.originator_id))), n.originator_version)] = n.id
        present = {oid for oid, _ in where}
        found: list[Break] = []
        gone: set[str] = set()
        prev: dict[str, Any] | None = None
        seals = 0
        for row in rows:
            if row.state is None or not row.topic.endswith("Ledger.Sealed"):
                continue  # an unreadable seal is named by the ledger's own chain
            seal, seals = row.state, seals + 1
            span = f"notifications {seal['first']}–{seal['last']}"
            if self.public_key is not None and not ledger.seal_is_signed_by(seal, self.public_key):
                found.append(
                    _by_seal(
                        "ledger",
                        int(seal["seq"]),
                        "forged",
                        f"seal {seal['seq']} ({span}) does not carry a valid signature of the audit key "
                        f"{ledger.key_fingerprint(self.public_key)}: it was forged or altered",
                    )
                )
                prev = seal
                continue
            if seal["prev_digest"] != (prev["digest"] if prev else "") or seal["first"] != (
                int(prev["last"]) + 1 if prev else 1
            ):
                found.append(
                    _by_seal(
                        "ledger",
                        int(seal["seq"]),
                        "out_of_order",
                        f"seal {seal['seq']} ({span}) does not follow the seal before it: a seal was removed or forged",
                    )
                )
            prev = seal
            try:
                found.extend(self._check_seal(seal, span, where, present, gone))
            except (KeyError, IndexError, TypeError, ValueError):
                found.append(
                    _by_seal("ledger", int(seal["seq"]), "edited", f"seal {seal['seq']} is malformed: altered")
                )
        through = int(prev["last"]) if prev else 0
        unsealed = sum(1 for nid in where.values() if nid > through)
        return Verification(0, found, seals, through, unsealed)

    def _check_seal(
        self,
        seal: dict[str, Any],
        span: str,
        where: dict[tuple[str, int], int],
        present: set[str],
        gone: set[str],
    ) -> list[Break]:
        first, last = int(seal["first"]), int(seal["last"])
        aggregates, topics = seal["aggregates"], seal["topics"]
        out: list[Break] = []
        sealed: set[tuple[str, int]] = set()
        moved: list[tuple[int, int, str, int]] = []
        for nid, index, version, topic in seal["entries"]:
            oid, label = aggregates[index][0], aggregates[index][1]
            sealed.add((oid, version))
            now = where.get((oid, version))
            if now is None and oid not in present:
                if oid not in gone:
                    gone.add(oid)
                    out.append(
                        _by_seal(
                            label,
                            0,
                            "missing",
                            f"aggregate {oid} ({label}) sealed in {span} is missing: all its events were deleted",
                        )
                    )
            elif now is None:
                out.append(
                    _by_seal(
                        label,
                        version,
                        "missing",
                        f"{label} v{version} ({_event(topics[topic])}) sealed in {span} is missing",
                    )
                )
            elif now != nid:
                moved.append((nid, now, label, version))
        if moved:
            inside = sorted(nid for nid, now, _, _ in moved if first <= now <= last)
            parts = [f"notifications {_and(inside)} are not in the order sealed"] if inside else []
            parts += [
                f"{label} v{version}, sealed at notification {nid}, is now at notification {now}"
                for nid, now, label, version in moved
                if not first <= now <= last
            ]
            out.append(_by_seal(LOG, 0, "out_of_order", "; ".join(parts)))
        current: list[tuple[int, str, int, str, str]] = []
        for n in ledger.notifications(self.app, first, stop=last):
            key = (str(UUID(str(n.originator_id))), n.originator_version)
            current.append((n.id, key[0], key[1], n.topic, ledger.entry_hash(self.app, n)))
            if key not in sealed:
                label = self.label_of(UUID(key[0]))
                out.append(
                    _by_seal(
                        label,
                        key[1],
                        "inserted",
                        f"notification {n.id} ({label} v{key[1]} {_event(n.topic)}) lies in {span} but was not "
                        "sealed there: it was written or moved into the range afterwards",
                    )
                )
        hashes = {(oid, version): h for _, oid, version, _, h in current}
        for oid, label, version, sealed_hash in aggregates:
            now_hash = hashes.get((oid, version))
            if now_hash is not None and now_hash != sealed_hash:
                out.append(
                    _by_seal(
                        label,
                        version,
                        "edited",
                        f"{label} v{version} is not the event sealed in {span}: it was changed",
                    )
                )
        if not out and ledger.chain_digest(str(seal["prev_digest"]), current) != seal["digest"]:
            out.append(
                _by_seal(LOG, 0, "edited", f"{span} no longer match seal {seal['seq']}: an event in them was changed")
            )
        return out

    def verify_chain(self, originator_id: UUID) -> list[Break]:
        rows = list(self._rows(originator_id))
        ref = self.label(originator_id, rows)
        found: list[Break] = []
        expected = 1
        for row in rows:
            for missing in range(expected, row.version):
                found.append(
                    Break(
                        ref,
                        missing,
                        "deleted",
                        f"v{missing} is missing: the versions jump from v{missing - 1} to v{row.version}",
                    )
                )
            expected = row.version + 1
            if row.state is None:
                found.append(
                    Break(
                        ref, row.version, "edited", f"v{row.version} cannot be decoded: its stored bytes were altered"
                    )
                )
        deleted_before = {b.version + 1 for b in found if b.kind == "deleted"}
        good = [r for r in rows if r.state is not None]
        by_hash = {r.hash: r for r in good}
        followers: dict[str, list[_Row]] = {}
        for r in good:
            followers.setdefault(str(r.state.get("prev_hash", "")), []).append(r)  # type: ignore[union-attr]
        for prev, rs in followers.items():
            if len(rs) > 1 and prev in by_hash:
                claimed = ", ".join(f"v{r.version}" for r in rs)
                found.append(
                    Break(
                        ref,
                        rs[-1].version,
                        "inserted",
                        f"{claimed} all claim to follow "
                        f"v{by_hash[prev].version}: an event was inserted between two others",
                    )
                )
        # Walk the chain from its start, as the hashes link it.
        chain: list[_Row] = []
        cursor, seen = "", set()
        while cursor in followers and cursor not in seen:
            seen.add(cursor)
            nxt = followers[cursor][0]
            chain.append(nxt)
            cursor = nxt.hash or ""
        in_chain = {r.version for r in chain}
        stored_order = [r.version for r in good]
        chain_order = [r.version for r in chain]
        if len(chain) == len(good) and chain_order != stored_order:
            moved = [f"v{v}" for v, c in zip(stored_order, chain_order, strict=True) if v != c]
            found.append(
                Break(
                    ref,
                    int(moved[0][1:]),
                    "out_of_order",
                    f"{' and '.join(moved)} are out of order: the chain runs "
                    + ", ".join(f"v{v}" for v in chain_order),
                )
            )
        for r in good:
            if (
                r.version in in_chain
                or r.version in deleted_before
                or any(b.kind == "inserted" and f"v{r.version}" in b.detail for b in found)
            ):
                continue
            prev = str(r.state.get("prev_hash", ""))  # type: ignore[union-attr]
            if prev not in by_hash:
                before = r.version - 1
                found.append(
                    Break(
                        ref,
                        before,
                        "edited",
                        f"v{before} was edited (v{r.version} records a different "
                        f"hash for the event before it), or an event after v{before} was removed",
                    )
                )
                in_chain.add(r.version)
        return _dedupe(found)

    # --- heads kept elsewhere -------------------------------------------------------------------

    def heads(self) -> list[Head]:
        out = []
        for originator_id in self.aggregate_ids():
            rows = list(self._rows(originator_id))
            if rows and rows[-1].hash:
                out.append(Head(self.label(originator_id, rows), str(originator_id), rows[-1].version, rows[-1].hash))
        return out

    def _check_head(self, head: Head) -> list[Break]:
        rows = {r.version: r for r in self._rows(UUID(head.originator_id))}
        newest = max(rows, default=0)
        if newest < head.version:
            return [
                Break(
                    head.reference,
                    newest + 1,
                    "truncated",
                    f"the kept head is v{head.version} but the store ends at v{newest}: its newest events were removed",
                    check="head",
                )
            ]
        row = rows.get(head.version)
        if row is None or row.hash != head.hash:
            return [
                Break(
                    head.reference,
                    head.version,
                    "edited",
                    f"v{head.version} differs from the head kept outside",
                    check="head",
                )
            ]
        return []

    # --- export -------------------------------------------------------------------------------------

    def export_rows(self, reference: str | None = None) -> Iterator[dict[str, Any]]:
        """Every stored event with its metadata and hashes, aggregate by aggregate."""
        ids = [self._stored_id(reference)] if reference else self.aggregate_ids()
        for originator_id in ids:
            if originator_id == ledger.LEDGER_ID:
                continue  # the seals are the auditor's instrument (`audit verify`), not the history
            stored = list(self.app.recorder.select_events(originator_id))
            label = self.label(originator_id)
            for s in stored:
                state = self.decode(s)
                meta = state.get("meta") or {}
                fields = {k: v for k, v in state.items() if k not in ("meta", "prev_hash", "timestamp")}
                yield {
                    "reference": label,
                    "originator_id": str(originator_id),
                    "version": s.originator_version,
                    "event": s.topic.rsplit(".", 1)[-1],
                    "topic": s.topic,
                    "recorded_at": _iso(state.get("timestamp")),
                    "actor_id": meta.get("actor_id", ""),
                    "actor_role": meta.get("actor_role", ""),
                    "command_id": meta.get("command_id", ""),
                    "workflow_id": meta.get("workflow_id", ""),
                    "policy_hash": meta.get("policy_hash", ""),
                    "prev_hash": state.get("prev_hash", ""),
                    "hash": state_hash(s.topic, s.originator_id, state),
                    "fields": redact(fields),
                }


def _by_seal(reference: str, version: int, kind: str, detail: str) -> Break:
    """A break found by a seal over the log."""
    return Break(reference, version, kind, detail, check="seal")


def _event(topic: str) -> str:
    return topic.rsplit(".", 1)[-1]


def _and(items: list[int]) -> str:
    words = [str(i) for i in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _dedupe(breaks: list[Break]) -> list[Break]:
    seen, out = set(), []
    for b in breaks:
        key = (b.version, b.kind)
        if key not in seen:
            seen.add(key)
            out.append(b)
    return sorted(out, key=lambda b: (b.version, b.kind))
