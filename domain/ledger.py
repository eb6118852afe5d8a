"""Seals over the whole notification log, in order, signed with the audit key.

Each aggregate's hash chain (`domain/recorded.py`) shows an edit, a gap or a reordering inside that
aggregate, but not that its newest events were removed, that a whole aggregate was removed, or that
rows of the log were renumbered. A seal closes those gaps for everything it covers, with no heads
file kept from before:

- A seal covers a range of the notification log (first and last notification id) and lists each
  entry in it, in order: its notification id, its aggregate, its version and its topic.
- Its `digest` is a SHA-256 chain over those entries and each entry's event hash (the same hash the
  aggregate's own chain uses: over the decoded event, so re-encrypting the store under a new cipher
  key leaves every seal valid), starting from the digest of the seal before it.
- For each aggregate in the range it keeps the newest version and that event's hash (and a label,
  so that a wholly deleted aggregate can still be named).
- It is signed (Ed25519) with the audit key; `verify_seal` checks the signature with the public key
  alone.

The seals are the events of one `Ledger` aggregate in the same store. The ledger's own events are not
sealed: its hash chain and the seals' signatures and digest chain cover them. Only one process
should seal (the projection runner's leader does, every second or so); a second one loses the
optimistic version check and tries again later.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import event
from eventsourcing.persistence import Notification, RecordConflictError

from domain.recorded import Recorded, state_hash

LEDGER_ID = uuid5(NAMESPACE_URL, "https://concordat.invalid/ledger")
MAX_ENTRIES = 5_000
SECTION = 500
_SEAL_CONTEXT = b"concordat seal v1\n"
_HEADS_CONTEXT = b"concordat heads v1\n"


class Ledger(Recorded):
    """The seals, in order: each one follows the last, over the notifications after it."""

    @staticmethod
    def create_id() -> UUID:
        return LEDGER_ID

    @event("Started")
    def __init__(self) -> None:
        self.seals = 0
        self.last = 0
        self.digest = ""

    @event("Sealed")
    def seal(
        self,
        seq: int,
        first: int,
        last: int,
        count: int,
        digest: str,
        prev_digest: str,
        aggregates: list[list[Any]],
        topics: list[str],
        entries: list[list[int]],
        public_key: str,
        signature: str,
    ) -> None:
        self.seals = seq
        self.last = last
        self.digest = digest


# --- canonical encodings and signatures ---------------------------------------------------------


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def public_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def key_fingerprint(key: Ed25519PublicKey) -> str:
    """A short name for a public key (the first 16 hex digits of the SHA-256 of its raw bytes)."""
    return hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def _signed(context: bytes, body: Any, key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.sign(context + canonical(body))).decode("ascii")


def _valid(context: bytes, body: Any, signature: str, key: Ed25519PublicKey) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), context + canonical(body))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


SEAL_FIELDS = (
    "seq",
    "first",
    "last",
    "count",
    "digest",
    "prev_digest",
    "aggregates",
    "topics",
    "entries",
    "public_key",
)


def seal_body(state: dict[str, Any]) -> dict[str, Any]:
    """What a seal's signature covers: every field of it but the signature."""
    return {k: state.get(k) for k in SEAL_FIELDS}


def seal_is_signed_by(state: dict[str, Any], key: Ed25519PublicKey) -> bool:
    return _valid(_SEAL_CONTEXT, seal_body(state), str(state.get("signature", "")), key)


def sign_heads(heads: list[dict[str, Any]], key: Ed25519PrivateKey) -> dict[str, Any]:
    """Heads as a document an auditor can keep and check later against the public key alone."""
    return {
        "heads": heads,
        "public_key": public_text(key.public_key()),
        "signature": _signed(_HEADS_CONTEXT, heads, key),
    }


def heads_are_signed_by(document: dict[str, Any], key: Ed25519PublicKey) -> bool:
    return _valid(_HEADS_CONTEXT, document.get("heads"), str(document.get("signature", "")), key)


# --- the entries of the log -----------------------------------------------------------------------


def entry_hash(app: Application, n: Notification) -> str:
    """The event's own chain hash (over the decoded event: unchanged by re-encryption); for a row
    that cannot be decoded, the SHA-256 of its bytes as stored."""
    try:
        return state_hash(n.topic, n.originator_id, decode(app, n.state))
    except Exception:  # noqa: BLE001 - a row that cannot be decoded is sealed as it is
        return "stored:" + hashlib.sha256(bytes(n.state)).hexdigest()


def decode(app: Application, data: bytes) -> dict[str, Any]:
    """A stored event's state as recorded (decrypted, decompressed; not upcast)."""
    mapper = app.mapper
    if mapper.cipher:
        data = mapper.cipher.decrypt(data)
    if mapper.compressor:
        data = mapper.compressor.decompress(data)
    return mapper.transcoder.decode(data)


def chain_digest(prev_digest: str, entries: Sequence[tuple[int, str, int, str, str]]) -> str:
    """The digest over (notification id, aggregate id, version, topic, event hash), in order,
    continuing from the digest of the seal before."""
    digest = prev_digest
    for nid, originator_id, version, topic, hash_ in entries:
        line = f"{digest}\n{nid}\x1f{originator_id}\x1f{version}\x1f{topic}\x1f{hash_}"
        digest = hashlib.sha256(line.encode("utf-8")).hexdigest()
    return digest


def notifications(app: Application, start: int, stop: int | None = None) -> Iterator[Notification]:
    """The log from `start` (to `stop`), section by section, the ledger's own events left out."""
    while True:
        section = app.recorder.select_notifications(start=start, limit=SECTION, stop=stop)
        for n in section:
            if UUID(str(n.originator_id)) != LEDGER_ID:
                yield n
        if len(section) < SECTION:
            return
        start = section[-1].id + 1


@dataclass(frozen=True)
class Sealed:
    seq: int
    first: int
    last: int
    count: int


class Sealer:
    """Seals the log after the last seal. Keeps the ledger between calls (one process seals)."""

    def __init__(self, app: Application, key: Ed25519PrivateKey, label: Any = None) -> None:
        self.app = app
        self.key = key
        self.public_key = public_text(key.public_key())
        self._label = label
        self._ledger: Ledger | None = None

    def _load(self) -> Ledger | None:
        try:
            return self.app.repository.get(LEDGER_ID)  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            return None

    def seal(self) -> Sealed | None:
        """One seal over at most MAX_ENTRIES notifications after the last seal; None when there is
        nothing new (nothing is written) or another process sealed first."""
        ledger = self._ledger or self._load()
        last = ledger.last if ledger else 0
        newest = self.app.recorder.max_notification_id() or 0
        if newest <= last:
            return None
        taken: list[Notification] = []
        for n in notifications(self.app, last + 1):
            taken.append(n)
            if len(taken) == MAX_ENTRIES:
                break
        if not taken:
            return None
        prev_digest = ledger.digest if ledger else ""
        seq = (ledger.seals if ledger else 0) + 1
        hashed = [
            (n.id, str(UUID(str(n.originator_id))), n.originator_version, n.topic, entry_hash(self.app, n))
            for n in taken
        ]
        aggregates: dict[str, list[Any]] = {}
        index: dict[str, int] = {}
        topics: dict[str, int] = {}
        entries: list[list[int]] = []
        for nid, oid, version, topic, hash_ in hashed:
            if oid not in aggregates:
                index[oid] = len(aggregates)
                aggregates[oid] = [oid, self.label(UUID(oid)), version, hash_]
            aggregates[oid][2:] = [version, hash_]
            topics.setdefault(topic, len(topics))
            entries.append([nid, index[oid], version, topics[topic]])
        body: dict[str, Any] = {
            "seq": seq,
            "first": last + 1,
            "last": taken[-1].id,
            "count": len(taken),
            "digest": chain_digest(prev_digest, hashed),
            "prev_digest": prev_digest,
            "aggregates": list(aggregates.values()),
            "topics": list(topics),
            "entries": entries,
            "public_key": self.public_key,
        }
        ledger = ledger or Ledger()
        ledger.seal(**body, signature=_signed(_SEAL_CONTEXT, body, self.key))
        try:
            self.app.save(ledger)
        except RecordConflictError:
            self._ledger = None  # another process sealed first: read its seals next time
            return None
        self._ledger = ledger
        return Sealed(seq, last + 1, taken[-1].id, len(taken))

    def seal_all(self) -> list[Sealed]:
        """Seal until nothing is left unsealed (one seal per MAX_ENTRIES notifications)."""
        done = []
        while (one := self.seal()) is not None:
            done.append(one)
        return done

    def label(self, originator_id: UUID) -> str:
        return str(self._label(originator_id)) if self._label else str(originator_id)


def seal(app: Application, signing_key: Ed25519PrivateKey) -> Sealed | None:
    """Seal the notifications after the last seal (at most MAX_ENTRIES); None if nothing is new."""
    from domain.audit import Auditor

    return Sealer(app, signing_key, Auditor(app).label_of).seal()  # type: ignore[arg-type]
