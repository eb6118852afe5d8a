from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import pytest

from domain.errors import PolicyError
from domain.policy import Policy

SHIPPED = resources.files("domain").joinpath("governance.toml").read_bytes()


def test_the_shipped_policy_loads_and_its_hash_is_the_sha256_of_its_bytes() -> None:
    policy = Policy.load()
    assert policy.content_hash == hashlib.sha256(SHIPPED).hexdigest()
    within = policy.routes["proposal"].conditions["within_delegated_authority"]
    assert within.value_at_most == 25_000_000
    assert policy.routes["proposal"].escalation is not None
    assert policy.routes["proposal"].escalation.forum == "programme_board"


def test_a_changed_policy_has_a_different_hash(tmp_path: Path) -> None:
    changed = SHIPPED.replace(
        b"within_delegated_authority = { value_at_most = 25_000_000",
        b"within_delegated_authority = { value_at_most = 30_000_000",
    )
    path = tmp_path / "policy.toml"
    path.write_bytes(changed)
    policy = Policy.load(path)
    assert policy.routes["proposal"].conditions["within_delegated_authority"].value_at_most == 30_000_000
    assert policy.content_hash != Policy.load().content_hash


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ((b'forum = "cmet"\n', b'forum = "nowhere"\n'), "unknown forum 'nowhere'"),
        ((b"reminder_working_days = 3", b"reminder_working_days = -1"), "reminder_working_days"),
        ((b'rule = "FREQ=MONTHLY', b'rule = "EVERY=SOMETIMES'), "not an iCalendar RRULE"),
        ((b"[proposal]", b"[proposal"), "is not valid"),
        ((b'party = "PCC"\n', b'party = "NHS"\n'), "forums.pcc_decision.party: party 'NHS' is not a party"),
        ((b"late_recording_working_days = 10", b"late_recording_working_days = -1"), "late_recording_working_days"),
        # A forum no route reaches could never decide anything (issue 18): named, not accepted.
        (
            (b"[forums.jcu]", b'[forums.orphan]\nname = "Nobody\'s forum"\ndecided_by = "jcu_lead"\n[forums.jcu]'),
            "forum 'orphan' is reached by no route",
        ),
        # A role no one can hold: the stage could never be decided.
        (
            (b'decided_by = "secretary:board"', b'decided_by = "secretary:nowhere"'),
            "'secretary:nowhere', which is not a known role",
        ),
    ],
)
def test_a_malformed_policy_is_refused_in_one_line_naming_the_fault(
    tmp_path: Path, change: tuple[bytes, bytes], message: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(SHIPPED.replace(*change, 1))
    with pytest.raises(PolicyError, match=message) as caught:
        Policy.load(path)
    assert "\n" not in str(caught.value)


def test_roles_are_known_only_in_the_shapes_governance_allows(policy: Policy) -> None:
    assert policy.is_known_role("secretary:board")
    assert policy.is_known_role("party_rep:CCC")
    assert not policy.is_known_role("secretary:pub")
    assert not policy.is_known_role("party_rep:NHS")
    assert not policy.is_known_role("chief")


def test_a_role_is_tied_to_a_party_as_a_representative_or_as_the_officer_of_its_own_body(policy: Policy) -> None:
    assert policy.party_of_role("party_rep:CCC") == "CCC"
    assert policy.party_of_role("secretary:pcc_decision") == "PCC"
    assert policy.party_of_role("secretary:governing_body") == "CPCCG"
    assert policy.party_of_role("secretary:board") is None  # a joint forum
    assert policy.party_of_role("mediator") is None
    assert policy.party_of_role("party_rep:NHS") is None
