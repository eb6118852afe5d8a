"""Who may sign in, in which roles, with which API tokens: aggregates in the same store as the cases.

Every change to a person's access is an event in the event store — a user added, a role granted or
revoked, a password set, a token issued or revoked — with the same metadata and hash chain as a
case's events, so the audit trail shows who could do what, and when. A token's secret is never
stored: only its SHA-256 (a token is 256 random bits, so a fast hash is enough); a password is
stored only as an argon2id hash.

A person holds roles as the policy names them (`jcu_lead`, `secretary:board`, `party_rep:PCC`, …).
To act, they act in one of them: `Actor(id, role)`, as on the command line.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from eventsourcing.domain import event

from domain.actor import Actor
from domain.errors import ConcordatError, InvalidInputError, NotAllowedError
from domain.policy import ADMIN_ROLE, Policy
from domain.recorded import Recorded

IDENTITY_NAMESPACE = uuid5(NAMESPACE_URL, "https://concordat.invalid/identity")
USER_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
TOKEN_PREFIX = "cdt_"
MIN_PASSWORD = 12

_hasher = PasswordHasher()
# Verified when the user does not exist, so a wrong id takes as long as a wrong password: the hash of
# a random password nobody knows, made once with the hasher's parameters and kept here, because
# hashing at import took a good part of a second of every command's start (`concordat show` signs
# nobody in with a password). If the hasher's parameters change, it is made afresh, as before.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$o1zuc/I6ZGZk1tKZ2rIiSQ$pWErUZ29y7skXcNOiQ6OVBiASRi8j0b49JM4q12jFB0"
if _hasher.check_needs_rehash(_DUMMY_HASH):
    _DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UnknownUserError(ConcordatError):
    """No user has that id."""


class AuthenticationError(ConcordatError):
    """Sign-in failed. The message never says whether the id or the secret was wrong."""


class NotSignedInError(AuthenticationError):
    """Nobody is signed in where a person must act."""


def user_aggregate_id(user_id: str) -> UUID:
    return uuid5(IDENTITY_NAMESPACE, f"user:{user_id}")


def token_aggregate_id(token_id: str) -> UUID:
    return uuid5(IDENTITY_NAMESPACE, f"token:{token_id}")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class User(Recorded):
    """A person who may sign in: their roles, password hash and API tokens (by id and hash).

    `session_version` counts the events that end the person's web sessions: a sign-out
    (`SessionsEnded`), a password set, a role or a token revoked. A session holds the version it
    began under and ends when the user's moves on. It is derived on replay, so events stored before
    it existed replay unchanged (a class default covers snapshots taken before it)."""

    session_version: int = 0
    email: str = ""  # where reminders are sent (`domain/outbox` reads it from `EmailSet`); none until set

    @event("Added")
    def __init__(self, user_id: str, roles: list[str]) -> None:
        self.user_id = user_id
        self.roles = list(roles)
        self.password_hash = ""
        self.tokens: dict[str, dict[str, Any]] = {}

    @classmethod
    def create_id(cls, user_id: str) -> UUID:
        return user_aggregate_id(user_id)

    @event("RoleGranted")
    def grant(self, role: str) -> None:
        self.roles.append(role)

    @event("RoleRevoked")
    def revoke(self, role: str) -> None:
        self.roles.remove(role)
        self.session_version += 1

    @event("PasswordSet")
    def set_password(self, password_hash: str) -> None:
        self.password_hash = password_hash
        self.session_version += 1

    @event("TokenIssued")
    def issue_token(self, token_id: str, secret_hash: str, issued_at: datetime) -> None:
        self.tokens[token_id] = {"secret_hash": secret_hash, "issued_at": issued_at, "revoked": False}

    @event("TokenRevoked")
    def revoke_token(self, token_id: str) -> None:
        self.tokens[token_id]["revoked"] = True
        self.session_version += 1

    @event("EmailSet")
    def set_email(self, email: str) -> None:
        """Where reminders and escalations reach this person (empty: nowhere)."""
        self.email = email

    @event("SessionsEnded")
    def end_sessions(self) -> None:
        """Signed out: every session of this person ends (a copied cookie too, in any web process)."""
        self.session_version += 1


class TokenIndex(Recorded):
    """Finds the user a token belongs to from the token's id (written once, with the issue)."""

    @event("Indexed")
    def __init__(self, token_id: str, user_id: str) -> None:
        self.token_id = token_id
        self.user_id = user_id

    @classmethod
    def create_id(cls, token_id: str) -> UUID:
        return token_aggregate_id(token_id)


class People(Recorded):
    """The list of user ids, so `concordat user list` and the web can enumerate people."""

    @event("Started")
    def __init__(self) -> None:
        self.user_ids: list[str] = []

    @classmethod
    def create_id(cls) -> UUID:
        return uuid5(IDENTITY_NAMESPACE, "people")

    @event("Listed")
    def list_user(self, user_id: str) -> None:
        self.user_ids.append(user_id)


class Roster(Protocol):
    """What a case may ask of the directory (a collaborator its commands receive explicitly): the
    roles a person holds now, or None when no person has that id."""

    def roles_of(self, user_id: str) -> tuple[str, ...] | None: ...


@dataclass(frozen=True)
class Identity:
    """A signed-in person: their id, the roles they hold now, and their sessions' version now."""

    user_id: str
    roles: tuple[str, ...]
    session_version: int = 0

    def actor(self, role: str) -> Actor:
        if role not in self.roles:
            raise NotAllowedError(f"{self.user_id} does not hold the role {role!r}; they hold: {', '.join(self.roles)}")
        return Actor(id=self.user_id, role=role)

    def admin(self) -> Actor:
        """The person as an administrator, for operator commands; NotAllowedError if they are not one."""
        if ADMIN_ROLE not in self.roles:
            raise NotAllowedError(
                f"{self.user_id} may not do this: it is for an administrator (role {ADMIN_ROLE}); "
                f"they hold: {', '.join(self.roles)}"
            )
        return Actor(id=self.user_id, role=ADMIN_ROLE)

    def any_role(self, wanted: str | None = None) -> Actor:
        """The person in `wanted` (a role they hold), or in their first role: for reading, where every
        role may read, and for commands nobody may give now (the domain's refusal then answers)."""
        return self.actor(wanted) if wanted else Actor(id=self.user_id, role=self.roles[0])

    def acting_as(self, allowed: list[str], wanted: str | None = None) -> Actor:
        """The actor this person acts as for a command that `allowed` roles may give.

        `wanted` (a role they chose) must be one they hold. Otherwise the one role they hold that the
        command allows; if they hold none, NotAllowedError names the roles that may. When nobody may
        give it now (`allowed` is empty: the case has moved on), any role they hold: the domain's own
        refusal then says what happened (a decision already recorded, a closed case)."""
        if wanted:
            return self.actor(wanted)
        if not allowed:
            return self.any_role()
        fitting = [r for r in self.roles if role_fits(r, allowed)]
        if not fitting:
            raise NotAllowedError(f"{self.user_id} may not do this: it is for {', '.join(allowed)}")
        return Actor(id=self.user_id, role=fitting[0])


def role_fits(role: str, allowed: list[str]) -> bool:
    """`allowed` names roles whole (`secretary:board`) or by their prefix (`party_rep`)."""
    return any(role == a or role.startswith(a + ":") for a in allowed)


def check_user_id(user_id: str) -> str:
    user_id = (user_id or "").strip()
    if not USER_ID.match(user_id):
        raise InvalidInputError(
            f"user id {user_id!r} is not allowed: use 1-63 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (e.g. sam or jo.smith)"
        )
    return user_id


def check_role(policy: Policy, role: str) -> str:
    role = (role or "").strip()
    if not policy.is_known_role(role) or role == "system":
        raise InvalidInputError(f"role {role!r} is not known; roles: {policy.known_roles_text}")
    return role


# One address, as people type it: a local part and a domain with a dot, no spaces, quotes, angle
# brackets or line breaks (any of which could inject a header into the message it is written into).
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


def check_email(email: str) -> str:
    """An email address, or empty to clear it; InvalidInputError says what is allowed."""
    email = (email or "").strip()
    if email and (len(email) > 254 or not EMAIL.match(email) or ".." in email):
        raise InvalidInputError(
            f"email address {email!r} is not allowed: give one address like jo.smith@peterborough.gov.uk "
            "(letters, digits and . _ + - before the @, a domain with a dot after it; no spaces or names), "
            'or "" to remove it'
        )
    return email


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInputError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise InvalidInputError("a password may have at most 1024 characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token() -> tuple[str, str, str]:
    """(token id, the whole token to hand over once, the hash to store)."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return token_id, f"{TOKEN_PREFIX}{token_id}.{secret}", _digest(secret)


def split_token(token: str) -> tuple[str, str] | None:
    """(token id, secret) of a well-formed token, else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, secret = token[len(TOKEN_PREFIX) :].partition(".")
    if not sep or not re.fullmatch(r"[0-9a-f]{12}", token_id) or not secret:
        return None
    return token_id, secret


def secret_matches(secret_hash: str, secret: str) -> bool:
    return hmac.compare_digest(secret_hash, _digest(secret))
