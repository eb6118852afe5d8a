"""People for tests: the directory seeded the way an administrator would, and a token for anyone.

The CLI acts only for a signed-in person (a token in CONCORDAT_TOKEN, or `concordat login`); tests
that drive it as `ROLE:ID` get that person made with that role (by the administrator `root`, made
at the shell first as a real deployment's first user is) and a token of theirs. The CLI's own `user`,
`token` and `login` commands are tested in tests/e2e/test_users_cli.py."""

from __future__ import annotations

import threading

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.directory import Directory
from domain.identity import UnknownUserError
from domain.policy import ADMIN_ROLE
from domain.store import store_id

ADMIN = Actor(id="root", role=ADMIN_ROLE)


def directory(app: CaseService) -> Directory:
    """The store's directory, with the administrator `root` in it."""
    people = Directory(app)
    if not people.has_users():
        people.add_user("root", [ADMIN_ROLE], by=Actor("tests", "shell"), command_id="seed-root")
    return people


def ensure(app: CaseService, who: str) -> Actor:
    """The person `who` (ROLE:ID) exists and holds that role."""
    actor = Actor.parse(who)
    people = directory(app)
    if actor == ADMIN:
        return actor
    try:
        held = people.get(actor.id)["roles"]
    except UnknownUserError:
        people.add_user(actor.id, [actor.role], by=ADMIN, command_id=f"seed-{actor.id}")
        return actor
    if actor.role not in held:
        people.grant(actor.id, actor.role, by=ADMIN, command_id=f"seed-{actor.id}-{actor.role}")
    return actor


def token_for(app: CaseService, who: str) -> str:
    """A new token of the person `who` (ROLE:ID), made so if need be."""
    actor = ensure(app, who)
    return directory(app).issue_token(actor.id, by=ADMIN, command_id=f"seed-token-{actor.id}-{id(app)}").token


def settings_of(env: dict[str, str]) -> Settings:
    """The settings a process with `env` reads (CONCORDAT_ variables only)."""
    return Settings(**{k.removeprefix("CONCORDAT_").lower(): v for k, v in env.items() if k.startswith("CONCORDAT_")})


class Tokens:
    """Tokens of people of one store, made once each (for many CLI runs as the same person)."""

    def __init__(self, settings: Settings) -> None:
        self.app = bootstrap.open_cases(settings)
        self.tokens: dict[str, str] = {}
        self._lock = threading.Lock()  # tests run the CLI from several threads at once

    def __call__(self, who: str) -> str:
        with self._lock:
            actor = ensure(self.app, who)
            if actor.id not in self.tokens:
                self.tokens[actor.id] = token_for(self.app, who)
            return self.tokens[actor.id]

    def close(self) -> None:
        self.app.close()


_issued: dict[tuple[str, str], str] = {}


def with_token(env: dict[str, str], args: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`env` for a CLI run of `args`: signed in as the person `--as ROLE:ID` names, if it names one.
    Their token is made once per store (later runs write nothing more)."""
    args = list(args)
    if "--as" not in args:
        return env
    who = args[args.index("--as") + 1]
    app = bootstrap.open_cases(settings_of(env))
    try:
        key = (store_id(app), who)  # a restored copy of a store is the same store: the same token works
        if key not in _issued:
            _issued[key] = token_for(app, who)
    finally:
        app.close()
    return {**env, "CONCORDAT_TOKEN": _issued[key]}
