"""The auditor's reading of the event store: chains verified, heads kept elsewhere, full export.

Nothing here writes. It reads the stored rows as they are (`recorder.select_events`), decodes them the
way the application does (decryption and decompression included, no upcasting: the chain covers what
was stored), and checks each aggregate's hash chain (see `domain/recorded.py`).

What the chain proves: within an aggregate, no stored event was edited, deleted, reordered or
inserted between two others without the break showing. What it cannot prove alone: that the newest
events of an aggregate were not removed, or that someone with write access did not rewrite a chain
from some event to its end consistently. Heads kept outside the system (`heads`, then `verify` with
those heads) close both gaps up to the moment they were taken.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.application import CaseService
from domain.case import case_id
from domain.errors import CaseNotFoundError
from domain.recorded import state_hash

SECTION = 500


@dataclass(frozen=True)
class Break:
    """One place where a chain does not hold, named by what it looks like."""

    reference: str
    version: int
    kind: str  # edited, deleted, out_of_order, inserted, truncated
    detail: str


@dataclass(frozen=True)
class Head:
    reference: str
    originator_id: str
    version: int
    hash: str


@dataclass
class _Row:
    version: int
    topic: str
    state: dict[str, Any] | None
    hash: str | None


class Auditor:
    def __init__(self, app: CaseService) -> None:
        self.app = app

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

    def _rows(self, originator_id: UUID) -> Iterator[_Row]:
        for stored in self.app.recorder.select_events(originator_id):
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
        if row.topic.endswith("People.Started"):
            return "people"
        return str((first.get("meta") or {}).get("reference") or originator_id)

    # --- verification ---------------------------------------------------------------------------

    def verify(self, reference: str | None = None, heads: list[Head] | None = None) -> tuple[int, list[Break]]:
        """(aggregates checked, breaks found) for one case or the whole store."""
        if reference is not None:
            ids = [self._stored_id(reference)]
        else:
            ids = self.aggregate_ids()
        breaks: list[Break] = []
        for originator_id in ids:
            breaks.extend(self.verify_chain(originator_id))
        for head in heads or []:
            if reference is None or head.reference == reference:
                breaks.extend(self._check_head(head))
        return len(ids), breaks

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
                )
            ]
        row = rows.get(head.version)
        if row is None or row.hash != head.hash:
            return [
                Break(head.reference, head.version, "edited", f"v{head.version} differs from the head kept outside")
            ]
        return []

    # --- export -------------------------------------------------------------------------------------

    def export_rows(self, reference: str | None = None) -> Iterator[dict[str, Any]]:
        """Every stored event with its metadata and hashes, aggregate by aggregate."""
        ids = [self._stored_id(reference)] if reference else self.aggregate_ids()
        for originator_id in ids:
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
                    "fields": fields,
                }


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
