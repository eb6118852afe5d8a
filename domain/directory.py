"""The directory of people: add, grant, revoke, passwords, tokens, and signing in.

It writes to the cases' own event store (the same `CaseService`), so access changes sit in one
history with the decisions they made possible. Administrators (role `admin`) change access; the
actor recorded on each change is the signed-in administrator who made it (the very first person is
added at the shell, while nobody exists yet). A person may set their own password and make or revoke
their own tokens. No one grants a role to themselves, and no one is both administrator and auditor.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import RecordConflictError

from domain.actor import Actor
from domain.application import CaseService, utc_now
from domain.errors import InvalidInputError, NotAllowedError
from domain.identity import (
    AuthenticationError,
    Identity,
    People,
    TokenIndex,
    UnknownUserError,
    User,
    check_email,
    check_role,
    check_user_id,
    hash_password,
    new_token,
    password_matches,
    secret_matches,
    split_token,
)
from domain.policy import ADMIN_ROLE

_CONFLICT_ATTEMPTS = 3


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    token: str  # shown once, never stored
    user_id: str


class Directory:
    def __init__(self, app: CaseService, clock: Callable[[], datetime] = utc_now) -> None:
        self.app = app
        self._clock = clock

    # --- changes --------------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        roles: list[str],
        *,
        by: Actor,
        command_id: str,
        password: str | None = None,
        email: str | None = None,
    ) -> dict[str, Any]:
        """Add a person. An administrator adds people; while nobody exists yet, whoever has the store
        (the shell that runs it) adds the first person, who must be an administrator."""
        user_id = check_user_id(user_id)
        if not roles:
            raise InvalidInputError("a user needs at least one role (--role ROLE)")
        checked = list(dict.fromkeys(check_role(self.app.policy, r) for r in roles))
        if self.has_users():
            _require_admin(by, "add people")
        elif ADMIN_ROLE not in checked:
            raise NotAllowedError(
                f"the first person must be an administrator (--role {ADMIN_ROLE}): they add everyone else"
            )
        _check_independent(user_id, checked)
        password_hash = hash_password(password) if password is not None else None
        address = check_email(email) if email is not None else ""
        if self._find(user_id) is not None:
            raise InvalidInputError(f"user {user_id!r} already exists; use `concordat user grant` to add a role")
        with self.app.stamp(f"user:{user_id}", command_id, by):
            user = User(user_id=user_id, roles=checked)
            if password_hash:
                user.set_password(password_hash)
            if address:
                user.set_email(address)
            people = self._people()
            people.list_user(user_id)
        self.app.save(user, people)
        return self.view(user)

    def grant(self, user_id: str, role: str, *, by: Actor, command_id: str) -> dict[str, Any]:
        _require_admin(by, "grant roles")
        user = self._user(user_id)
        role = check_role(self.app.policy, role)
        if by.id == user.user_id:
            raise NotAllowedError(f"no one grants a role to themselves: another administrator grants {role} to {by.id}")
        _check_independent(user.user_id, [*user.roles, role])
        if role not in user.roles:  # granting what is held changes nothing, and records nothing
            with self.app.stamp(f"user:{user.user_id}", command_id, by):
                user.grant(role)
            self.app.save(user)
        return self.view(user)

    def revoke(self, user_id: str, role: str, *, by: Actor, command_id: str) -> dict[str, Any]:
        _require_admin(by, "revoke roles")
        user = self._user(user_id)
        role = (role or "").strip()
        if role not in user.roles:
            raise InvalidInputError(
                f"{user.user_id} does not hold the role {role!r}; they hold: {', '.join(user.roles) or 'none'}"
            )
        if role == ADMIN_ROLE and self._admins() == [user.user_id]:
            raise NotAllowedError(f"{user.user_id} is the only administrator: grant {ADMIN_ROLE} to someone else first")
        with self.app.stamp(f"user:{user.user_id}", command_id, by):
            user.revoke(role)
        self.app.save(user)
        return self.view(user)

    def set_password(self, user_id: str, password: str, *, by: Actor, command_id: str) -> dict[str, Any]:
        user = self._user(user_id)
        _require_self_or_admin(by, user.user_id, "set another person's password")
        password_hash = hash_password(password)
        with self.app.stamp(f"user:{user.user_id}", command_id, by):
            user.set_password(password_hash)
        self.app.save(user)
        return self.view(user)

    def set_email(self, user_id: str, email: str, *, by: Actor, command_id: str) -> dict[str, Any]:
        """Where reminders reach a person: their own to set, or an administrator's. Empty removes it;
        the same address again records nothing."""
        user = self._user(user_id)
        _require_self_or_admin(by, user.user_id, "set another person's email address")
        address = check_email(email)
        if address != user.email:
            with self.app.stamp(f"user:{user.user_id}", command_id, by):
                user.set_email(address)
            self.app.save(user)
        return self.view(user)

    def issue_token(self, user_id: str, *, by: Actor, command_id: str) -> IssuedToken:
        user = self._user(user_id)
        _require_self_or_admin(by, user.user_id, "create a token for another person")
        token_id, token, secret_hash = new_token()
        with self.app.stamp(f"user:{user.user_id}", command_id, by):
            user.issue_token(token_id=token_id, secret_hash=secret_hash, issued_at=self._clock())
            index = TokenIndex(token_id=token_id, user_id=user.user_id)
        self.app.save(user, index)
        return IssuedToken(token_id=token_id, token=token, user_id=user.user_id)

    def revoke_token(self, token_id: str, *, by: Actor, command_id: str) -> dict[str, Any]:
        token_id = (token_id or "").strip()
        parts = split_token(token_id)
        if parts:  # the whole token was given: its id is the part before the dot
            token_id = parts[0]
        user = self._token_owner(token_id)
        if user is None:
            raise InvalidInputError(
                f"no token has the id {token_id!r} (`concordat user show ID` lists a user's tokens)"
            )
        _require_self_or_admin(by, user.user_id, "revoke another person's token")
        if not user.tokens[token_id]["revoked"]:
            with self.app.stamp(f"user:{user.user_id}", command_id, by):
                user.revoke_token(token_id)
            self.app.save(user)
        return self.view(user)

    def end_sessions(self, user_id: str, *, by: Actor, command_id: str) -> dict[str, Any]:
        """Sign the person out everywhere: their session version moves on, so every session they hold
        (a copied cookie too, in any web process) is no longer accepted."""
        for attempt in range(_CONFLICT_ATTEMPTS):  # a sign-out is not lost to a concurrent change
            user = self._user(user_id)
            _require_self_or_admin(by, user.user_id, "sign another person out")
            with self.app.stamp(f"user:{user.user_id}", command_id, by):
                user.end_sessions()
            try:
                self.app.save(user)
            except RecordConflictError:
                if attempt == _CONFLICT_ATTEMPTS - 1:
                    raise
                continue
            return self.view(user)
        raise AssertionError("unreachable")

    # --- reading and signing in -----------------------------------------------------------------

    def get(self, user_id: str) -> dict[str, Any]:
        return self.view(self._user(user_id))

    def list(self) -> list[dict[str, Any]]:
        people = self._people()
        return [self.view(u) for u in (self._find(i) for i in people.user_ids) if u is not None]

    def has_users(self) -> bool:
        return bool(self._people().user_ids)

    def sign_in(self, user_id: str, password: str) -> Identity:
        """The identity for a user id and password; AuthenticationError, the same for either wrong."""
        user = self._find(user_id.strip()) if user_id else None
        ok = password_matches(user.password_hash if user else "", password)
        if user is None or not ok or not user.roles:
            raise AuthenticationError("the user id or password is not right")
        return _identity(user)

    def identity_of_token(self, token: str) -> Identity:
        parts = split_token(token.strip())
        user = self._token_owner(parts[0]) if parts else None
        if parts is None or user is None:
            raise AuthenticationError("the token is not valid")
        entry = user.tokens[parts[0]]
        if entry["revoked"] or not secret_matches(entry["secret_hash"], parts[1]) or not user.roles:
            raise AuthenticationError("the token is not valid")
        return _identity(user)

    def identity(self, user_id: str) -> Identity | None:
        """The person's roles and session version now (a session re-reads them on every request, so
        a revoked role, a sign-out or a new password ends it at once)."""
        user = self._find(user_id)
        return _identity(user) if user and user.roles else None

    @staticmethod
    def view(user: User) -> dict[str, Any]:
        return {
            "id": user.user_id,
            "roles": list(user.roles),
            "has_password": bool(user.password_hash),
            "email": user.email,
            "tokens": [
                {"id": t, "issued_at": v["issued_at"].isoformat(), "revoked": v["revoked"]}
                for t, v in user.tokens.items()
            ],
        }

    # --- internals ------------------------------------------------------------------------------

    def _find(self, user_id: str) -> User | None:
        try:
            user: User = self.app.repository.get(User.create_id(user_id))
        except AggregateNotFoundError:
            return None
        return user if isinstance(user, User) else None

    def _user(self, user_id: str) -> User:
        user = self._find((user_id or "").strip())
        if user is None:
            raise UnknownUserError(f"no user has the id {user_id!r} (`concordat user list` shows them)")
        return user

    def _token_owner(self, token_id: str) -> User | None:
        try:
            index: TokenIndex = self.app.repository.get(TokenIndex.create_id(token_id))
        except AggregateNotFoundError:
            return None
        user = self._find(index.user_id)
        return user if user is not None and token_id in user.tokens else None

    def _admins(self) -> builtins.list[str]:
        return [u["id"] for u in self.list() if ADMIN_ROLE in u["roles"]]

    def _people(self) -> People:
        try:
            return self.app.repository.get(People.create_id())
        except AggregateNotFoundError:
            return People()


def _identity(user: User) -> Identity:
    return Identity(user_id=user.user_id, roles=tuple(user.roles), session_version=user.session_version)


def _require_admin(by: Actor, what: str) -> None:
    if by.role != ADMIN_ROLE:
        raise NotAllowedError(f"only an administrator (role {ADMIN_ROLE}) may {what}; {by} is not acting as one")


def _require_self_or_admin(by: Actor, user_id: str, what: str) -> None:
    if by.id != user_id and by.role != ADMIN_ROLE:
        raise NotAllowedError(f"only an administrator (role {ADMIN_ROLE}) may {what}; {by} is not acting as one")


def _check_independent(user_id: str, roles: list[str]) -> None:
    """Auditors check what operators did: one person is never both."""
    if ADMIN_ROLE in roles and "auditor" in roles:
        raise NotAllowedError(
            f"{user_id} cannot hold both {ADMIN_ROLE} and auditor: an auditor must be independent of the operators"
        )
