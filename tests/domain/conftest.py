from __future__ import annotations

import pytest

from domain.application import CaseService
from domain.policy import Policy
from tests.domain.support import T0


@pytest.fixture
def policy() -> Policy:
    return Policy.load()


@pytest.fixture
def app(policy: Policy) -> CaseService:
    """The real application on eventsourcing's in-memory store (the store tests cover SQLite and
    PostgreSQL). Its clock is fixed so deadlines are exact."""
    return CaseService({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=policy, clock=lambda: T0)
