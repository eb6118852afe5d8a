"""A forum's rules for its meetings (`[meeting_rules.<forum>]` in the policy): how long before a
meeting its agenda is published, its quorum, who may chair it, and whether its decisions must be
taken at a meeting (or by written procedure).

The rules are opt-in per forum: a forum without a table, or with `decisions_at_meetings = false`,
records its decisions as before (with minutes, where `[minutes]` asks for them); a decision that
names a meeting is checked against it whichever it is. The seeds give the board's chair (ToR 5.1:
"Elected Member either Children's or Health Committee") and its frequency (ToR 7); the notice period
is the Local Government Act 1972 s.100B's 5 clear days; the quorum is our default.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MeetingRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # LGA 1972 s.100B: the agenda and reports are open to inspection 5 clear days before the meeting.
    notice_clear_days: int = Field(default=5, ge=0, le=60)
    # How many members, present and taking part in an item (none with a declared interest in it),
    # make the meeting quorate for that item (default).
    quorum: int = Field(default=3, ge=1, le=100)
    # The capacity the chair must attend in (the board's: an elected member, ToR 5.1); none: any member.
    chair_capacity: str | None = None
    # The capacities in which members attend (empty: any).
    capacities: list[str] = []
    # A decision of this forum is recorded against a meeting and its agenda item (or by written
    # procedure, where allowed). Off: a decision may still name a meeting, and is then checked.
    decisions_at_meetings: bool = False
    # A secretary may record a decision taken by written procedure, without a meeting (marked so).
    written_procedure: bool = False


class KeyDecisionRules(BaseModel):
    """Key decisions of a council's executive (the Local Authorities (Executive Arrangements)
    (Meetings and Access to Information) (England) Regulations 2012, regs 8-11): a decision of one of
    `forums` is key when the case's value is at least `value_at_least_pence`, or its forward-plan entry
    records a significant effect on communities. A key decision is taken only after its entry has been
    on the published forward plan `forward_plan_clear_days` clear days (reg 9: 28), unless the general
    exception (reg 10: notice to the chair of scrutiny, `general_exception_clear_days` clear days
    before) or special urgency (reg 11: the chair's agreement) is recorded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    forums: list[str]
    value_at_least_pence: int = Field(ge=0)
    forward_plan_clear_days: int = Field(default=28, ge=0, le=365)
    general_exception_clear_days: int = Field(default=5, ge=0, le=60)


class CallInRules(BaseModel):
    """Call-in of a council executive's decision by scrutiny (MOU Schedule 1 1(c): the Councils'
    formal "scrutiny" process; Local Government Act 2000 s.9F). A decision of one of `forums` is
    published as a decision notice and takes effect only when `clear_working_days` clear working days
    after it pass without a call-in. A call-in needs `members_needed` scrutiny members, and sends the
    decision to the body's scrutiny forum (`scrutiny`: forum → its scrutiny forum), which refers it
    back to the decision-maker (`refer_back`) or lets it stand (`let_stand`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    forums: list[str]
    clear_working_days: int = Field(default=5, ge=0, le=60)
    members_needed: int = Field(default=2, ge=1, le=50)
    scrutiny: dict[str, str] = {}
