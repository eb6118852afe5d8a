"""The mediator as the agreement says (MOU, Governance: "an independent mediator (selected by
agreement between the parties and appointed in writing)"; issue 14, item 3): a person of the
directory holding the mediator role and no party's role; each party may object that a nominee is not
independent; a mediator may withdraw, or be replaced by the parties' agreement; findings close the
mediation. Through the real application service and the real directory on the in-memory store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from domain.actor import Actor
from domain.application import CaseService
from domain.directory import Directory
from domain.dispute import MediatorNotEligibleError
from domain.errors import InvalidInputError, NotAllowedError, NotAPartyError, WrongStageError
from tests.domain.support import AUDREY, DAN, T0, cid, remind
from tests.people import ADMIN, directory, ensure

PAT = Actor.parse("party_rep:PCC:pat")
CY = Actor.parse("party_rep:CCC:cy")
GIL = Actor.parse("party_rep:CPCCG:gil")
MO = Actor.parse("mediator:mo")
MEG = Actor.parse("mediator:meg")


@pytest.fixture
def people(app: CaseService) -> Directory:
    """The directory as an administrator set it up: mediators, a party's representative and a council
    officer who also hold the mediator role, and a JCU lead."""
    for who in ("mediator:mo", "mediator:meg", "jcu_lead:jo"):
        ensure(app, who)
    people = directory(app)
    people.add_user("pia", ["mediator", "secretary:pcc_decision"], by=ADMIN, command_id="seed-pia")
    people.add_user("rex", ["mediator", "party_rep:CPCCG"], by=ADMIN, command_id="seed-rex")
    return people


def act(app: CaseService, ref: str, actor: Actor, action: str, **fields: object):
    return app.act(ref, actor=actor, action=action, fields=fields, command_id=cid())


def at_selection(app: CaseService) -> str:
    fields = {"against": ["CCC"], "subject": "Share of the speech therapy overspend"}
    ref = app.raise_dispute(actor=PAT, fields=fields, command_id=cid()).reference
    act(app, ref, DAN, "resolve", outcome="mediation", note="No agreement on the split")
    return ref


def appointed(app: CaseService, mediator: str = "mo", letter: str = "JCU/MED/1") -> str:
    ref = at_selection(app)
    act(app, ref, DAN, "nominate", mediator=mediator)
    act(app, ref, PAT, "agree")
    act(app, ref, CY, "agree")
    act(app, ref, DAN, "appoint", letter_ref=letter)
    return ref


def refused(app: CaseService, ref: str, call: Callable[[], object], error: type[Exception], needle: str) -> str:
    """The command is refused with one line naming `needle`, and nothing is written."""
    before, stored = app.state(ref), app.max_notification_id()
    with pytest.raises(error) as caught:
        call()
    message = str(caught.value)
    assert needle in message and "\n" not in message, message
    assert app.max_notification_id() == stored, "a refused command stored an event"
    assert app.state(ref) == before
    return message


# --- 1. the mediator is a person of the directory holding the mediator role ----------------------


@pytest.mark.parametrize(
    ("nominee", "error", "needle"),
    [
        ("zed", MediatorNotEligibleError, "no user has the id 'zed': the mediator is a person of the directory"),
        ("jo", MediatorNotEligibleError, "jo does not hold the mediator role (they hold: jcu_lead)"),
        ("mediator:zed", MediatorNotEligibleError, "no user has the id 'zed'"),
        ("party_rep:PCC:pat", InvalidInputError, "is not a person id (e.g. mo), or mediator:ID"),
    ],
)
def test_a_nominee_who_is_not_a_mediator_of_the_directory_is_refused(
    app: CaseService, people: Directory, nominee: str, error: type[Exception], needle: str
) -> None:
    ref = at_selection(app)
    refused(app, ref, lambda: act(app, ref, DAN, "nominate", mediator=nominee), error, needle)


def test_a_mediator_named_by_role_and_id_is_that_person_and_can_record_the_findings(
    app: CaseService, people: Directory
) -> None:
    ref = appointed(app, mediator="mediator:mo")  # the form the field's description used to suggest
    assert app.state(ref).details["mediator"] == "mo"
    done = act(app, ref, MO, "findings", findings="Split 50/50", cost_pence=1_001)
    assert done.status == "findings_recorded"


def test_the_nominee_must_still_be_a_mediator_when_appointed(app: CaseService, people: Directory) -> None:
    ref = at_selection(app)
    act(app, ref, DAN, "nominate", mediator="meg")
    act(app, ref, PAT, "agree")
    act(app, ref, CY, "agree")
    people.revoke("meg", "mediator", by=ADMIN, command_id=cid())
    refused(app, ref, lambda: act(app, ref, DAN, "appoint", letter_ref="L1"), MediatorNotEligibleError, "meg does not")
    people.grant("meg", "mediator", by=ADMIN, command_id=cid())
    people.grant("meg", "party_rep:CCC", by=ADMIN, command_id=cid())
    refused(app, ref, lambda: act(app, ref, DAN, "appoint", letter_ref="L1"), MediatorNotEligibleError, "a role of CCC")
    people.revoke("meg", "party_rep:CCC", by=ADMIN, command_id=cid())
    assert act(app, ref, DAN, "appoint", letter_ref="L1").details["mediator"] == "meg"


# --- 2. independence ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nominee", "needle"),
    [
        # A representative of a party outside the dispute is a partner all the same.
        ("rex", "rex holds party_rep:CPCCG, a role of CPCCG: the mediator is independent of the parties"),
        # An officer who records the decisions of Peterborough's own body is PCC's officer.
        ("pia", "pia holds secretary:pcc_decision, a role of PCC: the mediator is independent of the parties"),
    ],
)
def test_a_partys_representative_or_officer_is_refused_as_mediator_by_rule(
    app: CaseService, people: Directory, nominee: str, needle: str
) -> None:
    ref = at_selection(app)
    refused(app, ref, lambda: act(app, ref, DAN, "nominate", mediator=nominee), MediatorNotEligibleError, needle)


def test_each_party_may_object_that_a_nominee_is_not_independent(app: CaseService, people: Directory) -> None:
    ref = at_selection(app)
    act(app, ref, DAN, "nominate", mediator="meg")
    act(app, ref, PAT, "agree")
    # Only a party to the dispute objects, with its reason, and only while someone is nominated.
    refused(app, ref, lambda: act(app, ref, GIL, "object", reason="x"), NotAPartyError, "CPCCG is not a party to")
    refused(app, ref, lambda: act(app, ref, CY, "object", reason=""), InvalidInputError, "reason")
    # A party that agreed may still object before the appointment.
    s = act(app, ref, PAT, "object", reason="Meg advised PCC on this contract in 2025")
    assert (s.details["nominee"], s.details["agreed"]) == (None, [])
    assert [a.name for a in s.actions] == ["nominate"]
    objection = s.details["objections"][0]
    assert {k: objection[k] for k in ("party", "nominee", "reason", "by")} == {
        "party": "PCC",
        "nominee": "meg",
        "reason": "Meg advised PCC on this contract in 2025",
        "by": "party_rep:PCC:pat",
    }
    last = app.history(ref, actor=AUDREY)[-1]
    assert (last.event, last.actor_id, last.actor_role) == ("MediatorObjected", "pat", "party_rep:PCC")
    assert last.changes["reason"] == "Meg advised PCC on this contract in 2025"
    refused(app, ref, lambda: act(app, ref, CY, "object", reason="x"), WrongStageError, "object is not possible now")
    # The person objected to is not nominated again in this dispute; another is.
    refused(
        app, ref, lambda: act(app, ref, DAN, "nominate", mediator="meg"), MediatorNotEligibleError, "PCC objected to"
    )
    assert act(app, ref, DAN, "nominate", mediator="mo").details["nominee"] == "mo"


# --- 3. no dead end after the appointment --------------------------------------------------------------


def test_the_mediator_may_withdraw_and_the_parties_select_another(app: CaseService, people: Directory) -> None:
    ref = appointed(app)
    refused(app, ref, lambda: act(app, ref, MEG, "withdraw", note="x"), NotAllowedError, "only the appointed mediator")
    later = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    s = app.act(
        ref, actor=MO, action="withdraw", fields={"note": "A conflict came to light"}, command_id=cid(), at=later
    )
    assert (s.stage, s.status, s.details["mediator"], s.details["letter_ref"]) == (
        "mediator_selection",
        "open",
        None,
        None,
    )
    # The stage's 20 working days from the withdrawal (Christmas Day and Boxing Day not counted).
    assert s.deadline == datetime(2026, 12, 31, 17, 0, tzinfo=UTC)
    assert [a.name for a in s.actions] == ["nominate"]
    gone = s.details["former_mediators"][0]
    assert (gone["id"], gone["ended"], gone["note"], gone["letter_ref"]) == (
        "mo",
        "withdrew",
        "A conflict came to light",
        "JCU/MED/1",
    )
    refused(
        app, ref, lambda: act(app, ref, MO, "findings", findings="x", cost_pence=1), WrongStageError, "not possible"
    )
    act(app, ref, DAN, "nominate", mediator="meg")
    act(app, ref, PAT, "agree")
    act(app, ref, CY, "agree")
    s = act(app, ref, DAN, "appoint", letter_ref="JCU/MED/2")
    assert (s.stage, s.details["mediator"], s.details["letter_ref"]) == ("mediation", "meg", "JCU/MED/2")
    assert act(app, ref, MEG, "findings", findings="Split 50/50", cost_pence=10).status == "findings_recorded"


def test_the_parties_may_replace_the_mediator_by_agreement(app: CaseService, people: Directory) -> None:
    ref = appointed(app)
    s = app.state(ref)
    assert [a.name for a in s.actions] == ["findings", "withdraw", "nominate"]
    refused(app, ref, lambda: act(app, ref, DAN, "nominate", mediator="mo"), InvalidInputError, "already the mediator")
    s = act(app, ref, DAN, "nominate", mediator="meg", note="The parties asked for someone with NHS experience")
    assert (s.stage, s.details["mediator"], s.details["nominee"]) == ("mediation", "mo", "meg")
    act(app, ref, PAT, "agree")
    # Until every party agrees and the replacement is appointed in writing, the first mediator serves.
    assert [a.name for a in act(app, ref, CY, "agree").actions] == ["findings", "withdraw", "appoint", "object"]
    s = act(app, ref, DAN, "appoint", letter_ref="JCU/MED/2")
    assert (s.stage, s.details["mediator"], s.details["nominee"]) == ("mediation", "meg", None)
    assert s.details["former_mediators"][0]["id"] == "mo"
    assert s.details["former_mediators"][0]["ended"] == "replaced"
    refused(
        app,
        ref,
        lambda: act(app, ref, MO, "findings", findings="x", cost_pence=1),
        NotAllowedError,
        "only the appointed mediator (meg)",
    )
    assert act(app, ref, MEG, "findings", findings="Split 50/50", cost_pence=10).status == "findings_recorded"


# --- 4. findings close the mediation stage -------------------------------------------------------------


def test_binding_findings_leave_no_stage_open(app: CaseService, people: Directory) -> None:
    ref = appointed(app)
    s = act(app, ref, MO, "findings", findings="Split 50/50", cost_pence=10)
    assert (s.status, s.stage, s.details["binding"]) == ("findings_recorded", "", True)
    assert (s.actions, s.timers, s.deadline) == ([], [], None)


def test_a_resolved_dispute_leaves_no_stage_open(app: CaseService, people: Directory) -> None:
    fields = {"against": ["CCC"], "subject": "s"}
    ref = app.raise_dispute(actor=PAT, fields=fields, command_id=cid(), at=T0).reference
    s = act(app, ref, DAN, "resolve", outcome="resolved", note="Agreed a split")
    assert (s.status, s.stage) == ("resolved", "")


def test_the_mediations_reminder_goes_to_the_mediator_even_while_a_replacement_is_selected(
    app: CaseService, people: Directory
) -> None:
    ref = appointed(app)
    act(app, ref, DAN, "nominate", mediator="meg")
    remind(app, ref)
    last = app.history(ref, actor=AUDREY)[-1]
    assert (last.event, last.changes["stage"], last.changes["recipient_roles"]) == (
        "ReminderSent",
        "mediation",
        ["mediator"],
    )
