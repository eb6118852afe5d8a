"""A small partnership's worth of cases, of every shape the metrics and the backup must carry: open at
two stages, rejected, escalated, a dispute, a notice, a fund and a ring-fenced funding change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from concordat import bootstrap
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from tests.domain.support import MINUTES, escalate, open_agreed_fund, remind

LEAD, DAN, SAM = Actor.parse("jcu_lead:jo"), Actor.parse("lead_director:dan"), Actor.parse("secretary:board:sam")
PAT, CY = Actor.parse("party_rep:PCC:pat"), Actor.parse("party_rep:CCC:cy")
PHIL, PB = Actor.parse("public_health:phil"), Actor.parse("secretary:programme_board:pat")
AUDREY = Actor.parse("auditor:audrey")
T0 = datetime(2026, 4, 14, 10, 0, tzinfo=UTC)


def cid() -> str:
    return str(uuid.uuid4())


@dataclass
class Partnership:
    referred: str  # proposal referred by the JCU: open at the board
    rejected: str  # proposal rejected at the JCU
    escalated: str  # proposal open at the JCU, its deadline missed: escalated
    waiting: str  # proposal open at the JCU, reminded
    dispute: str  # dispute resolved to mediation: open at mediator selection
    notice: str  # termination notice, withdrawn
    funding: str  # ring-fenced funding change, approved

    @property
    def references(self) -> list[str]:
        return [self.referred, self.rejected, self.escalated, self.waiting, self.dispute, self.notice, self.funding]


PCC_SEC = Actor.parse("secretary:pcc_decision:pia")


def proposal(app: CaseService, title: str) -> str:
    return app.start_proposal(
        actor=LEAD,
        command_id=cid(),
        title=title,
        kind="pathway_change",
        value_pence=30_000_000,
        parties=["PCC", "CPCCG"],
        public_health=False,
        at=T0,
    ).reference


def make_partnership(app: CaseService) -> Partnership:
    referred, rejected = proposal(app, "Speech therapy"), proposal(app, "Autism pathway")
    escalated, waiting = proposal(app, "Continence service"), proposal(app, "School nursing")
    app.decide(referred, actor=DAN, stage="jcu", outcome="refer", minutes_ref="JCU-1", command_id=cid(), at=T0)
    app.decide(
        rejected,
        actor=DAN,
        stage="jcu",
        outcome="reject",
        note="out of scope",
        command_id=cid(),
        at=T0 + timedelta(hours=1),
    )
    escalate(app, escalated, command_id=cid(), at=app.state(escalated).deadline)
    remind(app, waiting, command_id=cid(), at=None)
    dispute = app.raise_dispute(
        actor=PAT, fields={"against": ["CCC"], "subject": "Overspend share"}, command_id=cid(), at=T0
    ).reference
    app.act(
        dispute,
        actor=DAN,
        action="resolve",
        fields={"outcome": "mediation", "note": "independent view"},
        command_id=cid(),
        at=T0,
    )
    notice = app.serve_notice(actor=CY, fields={"letter_ref": "CCC/1"}, command_id=cid(), at=T0).reference
    app.act(notice, actor=CY, action="withdraw", fields={}, command_id=cid(), at=T0)
    open_agreed_fund(app, "PH pooled", ring_fenced=True, contributions={"PCC": 50_000_000}, at=T0)
    funding = app.start_funding_change(
        actor=LEAD,
        fields={"fund": "PH pooled", "changes": {"PCC": 100_000}, "public_health": True},
        command_id=cid(),
        at=T0,
    ).reference
    for actor, stage, outcome in [
        (SAM, "board", "propose"),
        (PHIL, "consultation", "support"),
        (PB, "programme_board", "agree"),
        (PCC_SEC, "pcc_decision", "approve"),
    ]:
        app.act(
            funding,
            actor=actor,
            action="decide",
            fields={"stage": stage, "outcome": outcome, "minutes_ref": MINUTES},
            command_id=cid(),
            at=T0,
        )
    return Partnership(referred, rejected, escalated, waiting, dispute, notice, funding)


def run_views(settings: Settings, app: CaseService) -> None:
    """The real projection runners, until every view has processed the newest event."""
    newest = app.max_notification_id()
    for runner in bootstrap.projection_runners(settings):
        with runner:
            runner.wait(newest, timeout=30)
