"""People, roles and tokens are events in the cases' store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.audit import Auditor
from domain.directory import Directory
from domain.errors import ConcordatError, NotAllowedError
from domain.identity import AuthenticationError, User
from domain.policy import ADMIN_ROLE
from tests.people import ADMIN as OPS
from tests.people import directory as seeded_directory

PASSWORD = "correct horse battery"


def test_access_changes_are_events_with_who_made_them(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    people = seeded_directory(app)
    people.add_user("sam", ["secretary:board"], by=OPS, command_id="c1", password=PASSWORD)
    people.grant("sam", "auditor", by=OPS, command_id="c2")
    people.revoke("sam", "secretary:board", by=OPS, command_id="c3")
    issued = people.issue_token("sam", by=OPS, command_id="c4")
    people.revoke_token(issued.token_id, by=OPS, command_id="c5")

    user = app.repository.get(User.create_id("sam"))
    events = [type(e).__name__ for e in app.repository.event_store.get(user.id)]
    assert events == ["Added", "PasswordSet", "RoleGranted", "RoleRevoked", "TokenIssued", "TokenRevoked"]
    metas = [e.meta for e in app.repository.event_store.get(user.id)]
    assert [m["command_id"] for m in metas] == ["c1", "c1", "c2", "c3", "c4", "c5"]
    assert all(m["actor_id"] == "root" and m["actor_role"] == "admin" for m in metas)
    # The token's secret is nowhere in the store: only its hash.
    rows = app.recorder.select_notifications(start=1, limit=1000)
    assert all(issued.token.split(".")[1].encode() not in r.state for r in rows)
    assert all(PASSWORD.encode() not in r.state for r in rows)
    # The chain covers access changes too.
    checked, breaks = Auditor(app).verify()
    assert breaks == [] and checked >= 3


def test_sign_in_and_tokens(settings: Settings) -> None:
    people = seeded_directory(bootstrap.open_cases(settings))
    people.add_user("jo", ["jcu_lead"], by=OPS, command_id="a1", password=PASSWORD)
    assert people.sign_in("jo", PASSWORD).roles == ("jcu_lead",)
    for user_id, password in [("jo", PASSWORD + "x"), ("nobody", PASSWORD), ("", "")]:
        with pytest.raises(AuthenticationError, match="^the user id or password is not right$"):
            people.sign_in(user_id, password)

    issued = people.issue_token("jo", by=OPS, command_id="a2")
    assert people.identity_of_token(issued.token).user_id == "jo"
    forged = issued.token[:-2] + ("AA" if not issued.token.endswith("AA") else "BB")
    for bad in [forged, "cdt_000000000000.x", "Bearer x", issued.token_id]:
        with pytest.raises(AuthenticationError):
            people.identity_of_token(bad)
    people.revoke_token(issued.token, by=OPS, command_id="a3")  # the whole token names it too
    with pytest.raises(AuthenticationError):
        people.identity_of_token(issued.token)


def test_bad_changes_are_refused_and_write_nothing(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    people = seeded_directory(app)
    people.add_user("jo", ["jcu_lead"], by=OPS, command_id="b1")
    before = app.max_notification_id()
    refusals = [
        (
            lambda: people.add_user("Jo Smith", ["jcu_lead"], by=OPS, command_id="x1"),
            "user id 'Jo Smith' is not allowed",
        ),
        (lambda: people.add_user("kim", ["chair"], by=OPS, command_id="x2"), "role 'chair' is not known"),
        (lambda: people.add_user("kim", ["secretary:bored"], by=OPS, command_id="x3"), "is not known"),
        (lambda: people.add_user("kim", [], by=OPS, command_id="x4"), "at least one role"),
        (lambda: people.add_user("jo", ["auditor"], by=OPS, command_id="x5"), "already exists"),
        (lambda: people.add_user("kim", ["auditor"], by=OPS, command_id="x6", password="short"), "at least 12"),
        (lambda: people.grant("nobody", "auditor", by=OPS, command_id="x7"), "no user has the id"),
        (lambda: people.revoke("jo", "auditor", by=OPS, command_id="x8"), "does not hold the role"),
        (lambda: people.revoke_token("abcdefabcdef", by=OPS, command_id="x9"), "no token has the id"),
    ]
    for attempt, message in refusals:
        with pytest.raises(ConcordatError, match=message):
            attempt()
    assert app.max_notification_id() == before
    assert [u["id"] for u in people.list()] == ["root", "jo"]


def test_an_identity_acts_only_in_a_role_it_holds(settings: Settings) -> None:
    people = seeded_directory(bootstrap.open_cases(settings))
    people.add_user("pat", ["party_rep:PCC", "auditor"], by=OPS, command_id="p1", password=PASSWORD)
    me = people.sign_in("pat", PASSWORD)
    assert me.acting_as(["party_rep"]) == Actor(id="pat", role="party_rep:PCC")
    assert me.acting_as(["jcu_lead", "auditor"]) == Actor(id="pat", role="auditor")
    with pytest.raises(NotAllowedError, match="pat may not do this: it is for jcu_lead"):
        me.acting_as(["jcu_lead"])
    with pytest.raises(NotAllowedError, match="does not hold the role 'jcu_lead'"):
        me.acting_as(["jcu_lead"], wanted="jcu_lead")


def test_only_administrators_change_access_and_the_first_one_is_made_while_nobody_exists(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    people = Directory(app)
    shell = Actor(id="someone", role="shell")
    with pytest.raises(NotAllowedError, match="the first person must be an administrator"):
        people.add_user("jo", ["jcu_lead"], by=shell, command_id="f1")
    people.add_user("root", [ADMIN_ROLE], by=shell, command_id="f2")
    before = app.max_notification_id()
    dan = Actor(id="dan", role="lead_director")
    refusals = [
        # once someone exists, the shell is nobody: an administrator adds people
        (lambda: people.add_user("eve", [ADMIN_ROLE], by=shell, command_id="x1"), "only an administrator"),
        (lambda: people.add_user("eve", ["jcu_lead"], by=dan, command_id="x2"), "only an administrator"),
        (lambda: people.grant("root", "jcu_lead", by=OPS, command_id="x3"), "no one grants a role to themselves"),
        (lambda: people.add_user("ann", [ADMIN_ROLE, "auditor"], by=OPS, command_id="x4"), "cannot hold both"),
        (lambda: people.revoke("root", ADMIN_ROLE, by=OPS, command_id="x5"), "the only administrator"),
    ]
    for attempt, message in refusals:
        with pytest.raises(NotAllowedError, match=message):
            attempt()
    assert app.max_notification_id() == before
    people.add_user("audrey", ["auditor"], by=OPS, command_id="a1")
    auditor = Actor(id="audrey", role="auditor")
    for attempt, message in [
        (lambda: people.grant("audrey", "secretary:board", by=auditor, command_id="y1"), "only an administrator"),
        (lambda: people.grant("audrey", ADMIN_ROLE, by=OPS, command_id="y2"), "cannot hold both"),
        (lambda: people.issue_token("root", by=auditor, command_id="y3"), "for another person"),
    ]:
        with pytest.raises(NotAllowedError, match=message):
            attempt()
    # A person makes their own token and sets their own password.
    assert people.issue_token("audrey", by=auditor, command_id="a2").user_id == "audrey"
    people.set_password("audrey", PASSWORD, by=auditor, command_id="a3")
    assert people.sign_in("audrey", PASSWORD).roles == ("auditor",)


def test_a_sign_out_a_new_password_or_a_revocation_moves_the_session_version_on(settings: Settings) -> None:
    app = bootstrap.open_cases(settings)
    people = seeded_directory(app)
    people.add_user("sam", ["secretary:board", "jcu_lead"], by=OPS, command_id="s1", password=PASSWORD)
    sam = Actor(id="sam", role="jcu_lead")

    def version() -> int:
        who = people.identity("sam")
        assert who is not None
        return who.session_version

    signed_in = people.sign_in("sam", PASSWORD).session_version
    assert version() == signed_in
    people.grant("sam", "auditor", by=OPS, command_id="s2")  # more access ends nothing
    people.issue_token("sam", by=sam, command_id="s3")
    assert version() == signed_in
    steps = [
        lambda: people.end_sessions("sam", by=sam, command_id="s4"),
        lambda: people.set_password("sam", PASSWORD + "!", by=sam, command_id="s5"),
        lambda: people.revoke("sam", "auditor", by=OPS, command_id="s6"),
        lambda: people.revoke_token(people.get("sam")["tokens"][0]["id"], by=sam, command_id="s7"),
    ]
    seen = [version()]
    for step in steps:
        step()
        seen.append(version())
        assert seen[-1] > seen[-2]
    with pytest.raises(NotAllowedError, match="sign another person out"):
        people.end_sessions("root", by=sam, command_id="s8")
    # The version is derived from the events: a process that reads the store afresh sees the same.
    again = Directory(bootstrap.open_cases(settings)).identity("sam")
    assert again is not None and again.session_version == seen[-1]
    user = app.repository.get(User.create_id("sam"))
    assert [type(e).__name__ for e in app.repository.event_store.get(user.id)][-4:] == [
        "SessionsEnded",
        "PasswordSet",
        "RoleRevoked",
        "TokenRevoked",
    ]
    assert Auditor(app).verify()[1] == []
