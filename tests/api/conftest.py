"""The API under test: `concordat up` (Temporal dev server, worker, projections, web) on free ports,
people added and tokens issued with the CLI as an operator would, and an HTTP client per person."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Engine, running_engine

PEOPLE = {
    "jo": ["jcu_lead"],
    "dan": ["lead_director"],
    "sam": ["secretary:board"],
    "cara": ["secretary:cmet"],
    "gwen": ["secretary:governing_body"],
    "prue": ["secretary:programme_board"],
    "pia": ["secretary:pcc_decision"],
    "cal": ["secretary:ccc_decision"],
    "pat": ["party_rep:PCC"],
    "cy": ["party_rep:CCC"],
    "gil": ["party_rep:CPCCG"],
    "audrey": ["auditor"],
    "mo": ["mediator"],
    "meg": ["mediator"],
    "max": ["mediator"],
    "phil": ["public_health"],
    "multi": ["jcu_lead", "auditor"],
}
PASSWORD = "a long enough password"


@dataclass
class Api:
    engine: Engine
    tokens: dict[str, str]
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def as_(self, who: str) -> httpx.Client:
        if who not in self.clients:
            headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}
            self.clients[who] = httpx.Client(base_url=f"{self.engine.web}/api/v1", headers=headers, timeout=60)
        return self.clients[who]

    @property
    def anonymous(self) -> httpx.Client:
        return self.as_("nobody")

    def events(self) -> int:
        """How many events the store holds (read through the auditor's export), refusals aside: a
        refused command writes nothing but its refusal (counted by `refusals`); and the receipts
        of commands on cases aside: each goes with the command's events (`CaseCommandReceipt`)."""
        text = self.as_("audrey").get("/audit/export").text
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        return len(
            [r for r in rows if r["event"] != "Refused" and not r["topic"].endswith("CaseCommandReceipt.Received")]
        )

    def refusals(self, since: int = 0) -> list[dict[str, Any]]:
        """The refusal log after position `since`, as the auditor reads it."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.as_("audrey").get("/audit/refusals", params={"since": since, "limit": 1000})
            assert page.status_code == 200, page.text
            found += page.json()
            if len(page.json()) < 1000:
                return found
            since = found[-1]["position"]

    def last_refusal(self) -> int:
        """The position of the newest refusal (0 if none): read the refusals made after it."""
        every = self.refusals()
        return every[-1]["position"] if every else 0


@contextmanager
def api_on(engine: Engine) -> Iterator[Api]:
    """The API of a running engine, with PEOPLE added and a token issued to each."""
    tokens = {}
    for who, roles in PEOPLE.items():
        engine.ok(
            "user",
            "add",
            who,
            *[a for r in roles for a in ("--role", r)],
            "--password-stdin",
            stdin=PASSWORD + "\n",
            who="admin:root",  # an administrator adds people
        )
        tokens[who] = json.loads(engine.ok("token", "create", who, "--json", who="admin:root"))["token"]
    api = Api(engine, tokens)
    try:
        yield api
    finally:
        for client in api.clients.values():
            client.close()


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with running_engine(tmp_path_factory.mktemp("api")) as engine, api_on(engine) as api:
        yield api


def problem(response: httpx.Response, status: int) -> str:
    """The detail of an RFC 9457 problem answer with `status`; fails on anything else."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status and body["title"] and "\n" not in body["detail"], body
    assert "Traceback" not in response.text
    return body["detail"]
