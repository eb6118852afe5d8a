"""Idempotency keys scoped to the person, the route and the request (domain/idempotency.py), as the
store keeps them, on SQLite and PostgreSQL: a repeat answers the first answer and writes nothing,
the same scope with other fields is refused and writes nothing, and a command id recorded before keys
were scoped answers only the person who gave it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.errors import IdempotencyKeyReusedError
from domain.idempotency import scope_of, scoped_command_id

LEAD = Actor.parse("jcu_lead:jo")
DAN = Actor.parse("lead_director:dan")
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
FIELDS = {"title": "Speech and language therapy", "kind": "service_commissioning", "value": "400000"}


def start(app: CaseService, command_id: str, title: str = FIELDS["title"]) -> str:
    return app.start_proposal(
        actor=LEAD,
        command_id=command_id,
        title=title,
        kind="service_commissioning",
        value_pence=40_000_000,
        parties=["PCC", "CPCCG"],
        public_health=False,
        at=T0,
    ).reference


def events(app: CaseService) -> int:
    return app.max_notification_id()


def test_a_scoped_id_names_the_person_the_route_the_key_and_the_request() -> None:
    one = scoped_command_id("jo", "start:proposal", "k", FIELDS)
    assert one == scoped_command_id("jo", "start:proposal", "k", dict(reversed(FIELDS.items())))
    assert one == scoped_command_id("jo", "start:proposal", "k", {**FIELDS, "note": "", "parties": None})
    others = [
        scoped_command_id("pat", "start:proposal", "k", FIELDS),
        scoped_command_id("jo", "start:dispute", "k", FIELDS),
        scoped_command_id("jo", "start:proposal", "k2", FIELDS),
    ]
    assert all(scope_of(o) != scope_of(one) for o in others)
    changed = scoped_command_id("jo", "start:proposal", "k", {**FIELDS, "value": "1"})
    assert changed != one and scope_of(changed) == scope_of(one)
    assert scope_of("d-1") is None and scope_of("k1:abc") is None


def test_a_start_repeats_with_the_same_request_and_is_refused_with_another(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    cid = scoped_command_id("jo", "start:proposal", "start-1", FIELDS)
    ref = start(app, cid)
    written = events(app)
    assert start(bootstrap.open_cases(settings), cid) == ref
    other = scoped_command_id("jo", "start:proposal", "start-1", {**FIELDS, "title": "Something else"})
    with pytest.raises(IdempotencyKeyReusedError, match="was used for a different request"):
        start(bootstrap.open_cases(settings), other, title="Something else")
    assert events(app) == written
    assert list(app.references()) == [ref]


def test_a_case_command_repeats_with_the_same_request_and_is_refused_with_another(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    ref = start(app, scoped_command_id("jo", "start:proposal", "s", FIELDS))
    refer = {"stage": "jcu", "outcome": "refer"}
    cid = scoped_command_id("dan", f"{ref}:decide", "d-1", refer)
    first = app.decide(ref, actor=DAN, stage="jcu", outcome="refer", command_id=cid, at=T0)
    written = events(app)
    assert app.decide(ref, actor=DAN, stage="jcu", outcome="refer", command_id=cid, at=T0) == first
    assert app.replay(ref, cid, user_id="dan") == (2, "lead_director")

    approve = scoped_command_id(
        "dan", f"{ref}:decide", "d-1", {"stage": "board", "outcome": "recommend", "minutes_ref": "MIN-2026-01"}
    )
    with pytest.raises(IdempotencyKeyReusedError):
        app.replay(ref, approve, user_id="dan")
    with pytest.raises(IdempotencyKeyReusedError):  # and at the store itself, whoever asks it
        app.decide(
            ref,
            actor=Actor.parse("secretary:board:dan"),
            stage="board",
            outcome="recommend",
            minutes_ref="MIN-2026-01",
            command_id=approve,
        )
    assert events(app) == written
    # Another person's use of the same key is a command of their own: nothing to replay.
    assert app.replay(ref, scoped_command_id("sam", f"{ref}:decide", "d-1", refer), user_id="sam") is None


def test_an_id_recorded_before_scoping_answers_only_the_person_who_gave_it(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    ref = start(app, "old-start")
    assert app.started_by("old-start") == (ref, "jo", "jcu_lead")
    assert app.started_by("never-used") is None
    app.decide(ref, actor=DAN, stage="jcu", outcome="refer", command_id="old-decide", at=T0)
    refer = {"stage": "jcu", "outcome": "refer"}
    dan = scoped_command_id("dan", f"{ref}:decide", "old-decide", refer)
    audrey = scoped_command_id("audrey", f"{ref}:decide", "old-decide", refer)
    assert app.replay(ref, dan, user_id="dan", legacy_key="old-decide") == (2, "lead_director")
    assert app.replay(ref, audrey, user_id="audrey", legacy_key="old-decide") is None
