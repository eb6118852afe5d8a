"""Actors, a fixed clock and short-hands for the domain tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from domain.actor import Actor
from domain.application import CaseService

# A Tuesday morning in term time, well clear of bank holidays.
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
LEAD = Actor.parse("jcu_lead:jo")
DAN = Actor.parse("lead_director:dan")
SAM = Actor.parse("secretary:board:sam")
CAT = Actor.parse("secretary:cmet:cat")
GUS = Actor.parse("secretary:governing_body:gus")
PAT = Actor.parse("secretary:programme_board:pat")
PHIL = Actor.parse("public_health:phil")
AUDREY = Actor.parse("auditor:audrey")


_ids = itertools.count(1)


def cid() -> str:
    return f"cmd-{next(_ids)}"


def start(app: CaseService, **fields: object):
    values = {
        "title": "Community paediatrics pathway",
        "kind": "pathway_change",
        "value_pence": 18_000_000,
        "parties": ["PCC", "CCC", "CPCCG"],
        "public_health": False,
        **fields,
    }
    return app.start_proposal(actor=LEAD, command_id=cid(), **values)


def decide(app: CaseService, ref: str, actor: Actor, stage: str, outcome: str, **kw: object):
    return app.decide(ref, actor=actor, stage=stage, outcome=outcome, command_id=cid(), **kw)
