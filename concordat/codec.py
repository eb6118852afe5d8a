"""Temporal's payloads encrypted under the cipher key, so Temporal's state, history and UI hold no case text.

A `PayloadCodec` (as in temporalio's samples-python `encryption/`): every payload a client or worker
sends to Temporal — workflow and activity inputs and results, update arguments, memos, and (with the
failure converter `bootstrap.data_converter` pairs it with) failure messages — is serialised and
encrypted with AES-256-GCM under a key derived from `CONCORDAT_CIPHER_KEY` (HKDF, its own label, so it
reveals nothing of the store's key). An encoded payload carries `encoding: binary/encrypted` and the
key's id (a fingerprint, never the key).

Decoding reads payloads under the current key and under each of `CONCORDAT_PREVIOUS_CIPHER_KEYS`
(the keys before a rotation: histories of workflows started before it still replay), passes through
payloads that were never encrypted (histories from before the key was set), and refuses, in one line,
a payload under a key this process does not have.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from concordat import keys
from concordat.settings import Settings
from domain.errors import ConcordatError, InvalidInputError

LABEL = "concordat temporal payloads v1"
ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class PayloadKeyError(ConcordatError):
    """A Temporal payload is encrypted under a key this process does not have, or does not decrypt."""


def payload_key(cipher_key: str, setting: str = "CIPHER_KEY") -> bytes:
    """The payload key derived from a cipher key as the settings give it (base64 of 16, 24 or 32 bytes)."""
    try:
        raw = base64.b64decode(cipher_key.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"setting CONCORDAT_{setting}: not base64") from None
    if len(raw) not in (16, 24, 32):
        raise InvalidInputError(f"setting CONCORDAT_{setting}: {len(raw)} bytes; it must be 16, 24 or 32 bytes")
    return keys.derive(raw, LABEL)


class EncryptionCodec(PayloadCodec):
    """Encrypts with `current` (None: sends payloads as they are); decrypts with it or any of `previous`."""

    def __init__(self, current: bytes | None, previous: Sequence[bytes] = ()) -> None:
        super().__init__()
        self.key_id = keys.fingerprint(current) if current else ""
        self._current = AESGCM(current) if current else None
        self._known = {keys.fingerprint(k): AESGCM(k) for k in (*previous, *([current] if current else []))}

    async def encode(self, payloads: Iterable[Payload]) -> list[Payload]:
        if self._current is None:
            return list(payloads)
        return [
            Payload(
                metadata={"encoding": ENCODING, KEY_ID: self.key_id.encode()},
                data=self._encrypt(self._current, p.SerializeToString()),
            )
            for p in payloads
        ]

    async def decode(self, payloads: Iterable[Payload]) -> list[Payload]:
        decoded: list[Payload] = []
        for p in payloads:
            if p.metadata.get("encoding", b"") != ENCODING:
                decoded.append(p)  # never encrypted: written before the key was set
                continue
            key_id = p.metadata.get(KEY_ID, b"").decode(errors="replace")
            aead = self._known.get(key_id)
            if aead is None:
                raise PayloadKeyError(
                    f"a Temporal payload is encrypted under key {key_id or '(unnamed)'}, which this process does "
                    f"not have ({self._keys_text()}): set CONCORDAT_CIPHER_KEY to the key it was written with, or "
                    "name that key in CONCORDAT_PREVIOUS_CIPHER_KEYS"
                )
            try:
                plain = aead.decrypt(p.data[:NONCE_BYTES], p.data[NONCE_BYTES:], None)
            except InvalidTag:
                raise PayloadKeyError(
                    f"a Temporal payload under key {key_id} does not decrypt: it was altered after it was written"
                ) from None
            decoded.append(Payload.FromString(plain))
        return decoded

    def _keys_text(self) -> str:
        if not self._known:
            return "it has no key: CONCORDAT_CIPHER_KEY is empty"
        return "its keys: " + ", ".join(sorted(self._known))

    @staticmethod
    def _encrypt(aead: AESGCM, data: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + aead.encrypt(nonce, data, None)


def from_settings(settings: Settings) -> EncryptionCodec:
    """The codec for these settings. With no cipher key at all it sends payloads as they are, and still
    refuses an encrypted one in one line (rather than the payload converter's "unknown encoding")."""
    current = settings.cipher_key.get_secret_value()
    previous = [k.strip() for k in settings.previous_cipher_keys.get_secret_value().split(",") if k.strip()]
    return EncryptionCodec(
        payload_key(current) if current else None,
        [payload_key(k, "PREVIOUS_CIPHER_KEYS") for k in previous],
    )
