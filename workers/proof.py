"""The proof a command carries into Temporal: who proved the person, and a signature over the command.

The tier that authenticated the person (the CLI, the API, the web pages) signs each command with the
command key (`concordat.keys.command_key`): who acts and in which role, on which case, which
command with which fields, under which command id, when, and through which door. The worker verifies
the signature before anything is written; a command without one, with one that does not match, or
signed too long before the workflow took it is refused (and the refusal recorded). Whoever can reach
Temporal without the key can send an update, but cannot make one the workers will act on.

A replayed command gains nothing: the command id is signed, and a command id is recorded once (the
store answers a repeat with the first answer); the case reference is signed, so a proof cannot be
moved to another case; and the signing time must be within `MAX_AGE` of when the workflow took it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

from workflows.contracts import ActInput, CommandProof

MAX_AGE = timedelta(hours=1)
DOORS = ("cli", "api", "web")


class ProofError(Exception):
    """A command's proof is missing, does not match, or is too old: `reason` says which."""


def _message(act: ActInput, reference: str, command_id: str, door: str, signed_at: str) -> bytes:
    body = {
        "v": 1,
        "door": door,
        "actor": {"id": act.actor.id, "role": act.actor.role},
        "reference": reference,
        "action": act.action,
        "fields": json.loads(json.dumps(act.fields, default=str)),
        "command_id": command_id,
        "signed_at": signed_at,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(
    key: bytes, act: ActInput, *, reference: str, command_id: str, door: str, at: datetime | None = None
) -> ActInput:
    """`act` with its proof: signed by the tier that proved the person, through `door`."""
    plain = act.model_copy(
        update={"fields": json.loads(json.dumps(act.fields, default=str)), "proof": None, "command_id": None}
    )
    signed_at = (at or datetime.now(UTC)).astimezone(UTC).isoformat()
    signature = hmac.new(key, _message(plain, reference, command_id, door, signed_at), hashlib.sha256).hexdigest()
    proof = CommandProof(door=door, signed_at=signed_at, signature=signature)
    return plain.model_copy(update={"proof": proof, "command_id": command_id})


def verify(key: bytes, act: ActInput, *, reference: str, command_id: str, taken_at: datetime) -> str:
    """The door the command came through, if its proof holds; else ProofError with the reason."""
    proof = act.proof
    if proof is None or not proof.signature:
        raise ProofError("the command carries no proof of who sent it (unsigned)")
    if proof.door not in DOORS:
        raise ProofError(f"the command names an unknown door {proof.door!r}")
    expected = hmac.new(
        key, _message(act, reference, command_id, proof.door, proof.signed_at), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, proof.signature):
        raise ProofError("the command's signature does not match it (forged or altered)")
    try:
        signed_at = datetime.fromisoformat(proof.signed_at)
    except ValueError:
        raise ProofError("the command's signing time is not a time") from None
    if signed_at.tzinfo is None or abs(taken_at - signed_at) > MAX_AGE:
        raise ProofError(
            f"the command was signed at {proof.signed_at}, more than {int(MAX_AGE.total_seconds() // 60)} "
            "minutes from when it was taken (replayed)"
        )
    return proof.door
