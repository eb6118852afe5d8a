from __future__ import annotations

import pytest

from domain.application import CaseService
from domain.policy import Policy
from tests.domain.support import T0
from tests.policies import WITHOUT_COUNCIL_PROCEDURE


@pytest.fixture
def policy() -> Policy:
    """The shipped routes and rules without the councils' procedure (tests/policies.py): the rules
    of meetings, key decisions and call-in have tests of their own, on the shipped policy."""
    return WITHOUT_COUNCIL_PROCEDURE


@pytest.fixture
def app(policy: Policy) -> CaseService:
    """The real application on eventsourcing's in-memory store (the store tests cover SQLite and
    PostgreSQL). Its clock is fixed so deadlines are exact."""
    return CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=policy, clock=lambda: T0)
