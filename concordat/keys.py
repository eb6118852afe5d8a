"""The engine's keys besides the cipher key: where each comes from, and what it protects.

- **Command key** (HMAC-SHA256, 32 bytes): the tier that proved a person (the CLI, the web app and
  API) signs each command it sends into Temporal with it; the workers verify the signature before
  anything is written (`concordat.proof`). Whoever can reach Temporal but not this key cannot act in
  anyone's name. Setting `CONCORDAT_COMMAND_KEY` (base64); else derived from `CONCORDAT_CIPHER_KEY`
  (HKDF, its own label); else a random key kept in the data dir (one machine only).
- **Audit signing key** (Ed25519): signs the seals over the whole log and the heads an auditor
  publishes (`concordat audit heads`), so a head can be checked later against the public key alone.
  Setting `CONCORDAT_AUDIT_KEY` (base64 of the 32-byte private seed); else a key kept in the data dir.

A key kept in the data dir is made once, in a file only its owner can read (0600, in a 0700
directory). Where more than one machine runs the engine, set the keys instead, the same on each.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from concordat.settings import Settings
from domain.errors import InvalidInputError

KEY_DIR = "keys"


def derive(secret: bytes, label: str, length: int = 32) -> bytes:
    """A key for one purpose from another key: HKDF-SHA256, so neither reveals the other."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label.encode()).derive(secret)


def _decode(name: str, text: str, sizes: tuple[int, ...]) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"setting CONCORDAT_{name}: not base64") from None
    if len(raw) not in sizes:
        allowed = " or ".join(str(s) for s in sizes)
        raise InvalidInputError(f"setting CONCORDAT_{name}: {len(raw)} bytes; it must be {allowed} bytes")
    return raw


def private_dir(settings: Settings) -> Path:
    """The data dir's key directory, readable only by its owner (made so if it is not)."""
    data = settings.data_dir.resolve()
    path = data / KEY_DIR
    try:
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.mkdir(exist_ok=True, mode=0o700)
        path.chmod(0o700)
    except OSError:
        if not path.is_dir():
            raise
        # A read-only copy of the data dir (an auditor's): its keys are read as they are.
    return path


def _kept(settings: Settings, name: str, size: int) -> bytes:
    """A random key of `size` bytes kept in the data dir: made once (atomically: two processes
    starting at once end up with the same key), 0600."""
    path = private_dir(settings) / name
    if not path.exists():
        partial = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(size)) + b"\n")
        try:
            os.link(partial, path)  # fails if another process made it first: theirs wins
        except FileExistsError:
            pass
        finally:
            partial.unlink()
    return _decode(name.upper().replace("-", "_"), path.read_text(encoding="ascii"), (size,))


def command_key(settings: Settings) -> bytes:
    """The key that signs and verifies commands sent into Temporal."""
    given = settings.command_key.get_secret_value()
    if given:
        return _decode("COMMAND_KEY", given, (32,))
    cipher = settings.cipher_key.get_secret_value()
    if cipher:
        return derive(_decode("CIPHER_KEY", cipher, (16, 24, 32)), "concordat command signing v1")
    return _kept(settings, "command-key", 32)


def audit_key(settings: Settings) -> Ed25519PrivateKey:
    """The Ed25519 key that signs seals and published heads."""
    given = settings.audit_key.get_secret_value()
    seed = _decode("AUDIT_KEY", given, (32,)) if given else _kept(settings, "audit-key", 32)
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_text(key: Ed25519PublicKey) -> str:
    """A public key as base64 of its 32 raw bytes: what an auditor keeps to check signed heads."""
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def public_from_text(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_decode("AUDIT_PUBLIC_KEY", text, (32,)))


def fingerprint(raw: bytes) -> str:
    """A short name for a key that reveals nothing of it."""
    return hashlib.sha256(b"concordat key fingerprint\0" + raw).hexdigest()[:16]


def generate() -> dict[str, str]:
    """Fresh secrets for a deployment, named as the settings that take them: the cipher key (AES, 32
    bytes), the command key, the audit key's seed (Ed25519) and the session secret, each base64 of
    random bytes from the operating system; and the audit key's public half, to publish."""
    audit_seed = secrets.token_bytes(32)
    public = Ed25519PrivateKey.from_private_bytes(audit_seed).public_key()
    return {
        "CONCORDAT_CIPHER_KEY": base64.b64encode(secrets.token_bytes(32)).decode("ascii"),
        "CONCORDAT_COMMAND_KEY": base64.b64encode(secrets.token_bytes(32)).decode("ascii"),
        "CONCORDAT_AUDIT_KEY": base64.b64encode(audit_seed).decode("ascii"),
        "CONCORDAT_SESSION_SECRET": base64.b64encode(secrets.token_bytes(32)).decode("ascii"),
        "audit_public_key": public_text(public),
    }
