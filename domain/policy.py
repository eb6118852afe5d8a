"""The governance policy: the partnership's rules as data.

The policy file (`governance.toml`, shipped with the package; another may be named in settings) holds
the forums, who decides for each, stage deadlines, the delegated-authority threshold, the escalation
forum and the board's meeting dates. Code in `domain/` reads it; nothing else holds these numbers.
Its SHA-256 (`Policy.content_hash`) is recorded on every case when it starts.
"""

from __future__ import annotations

import hashlib
import tomllib
from datetime import date, datetime, time
from importlib import resources
from pathlib import Path
from typing import Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from dateutil.rrule import rrule, rrulestr
from eventsourcing.domain import event
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from domain.errors import PolicyError
from domain.recorded import Recorded


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Deadline(_Model):
    """Either a count of working days from the day a stage opens, or the forum's next meeting."""

    working_days: int | None = Field(default=None, ge=1)
    next_meeting: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Deadline:
        if (self.working_days is None) == (self.next_meeting is None):
            msg = "a stage deadline needs exactly one of working_days or next_meeting"
            raise ValueError(msg)
        return self


class StageRule(_Model):
    forum: str
    deadline: Deadline
    escalates: bool = True


class ProposalRules(_Model):
    delegated_authority_pence: int = Field(ge=0)
    kinds: list[str]
    kinds_decided_above_board: list[str]
    board_deferrals_allowed: int = Field(ge=0)
    reminder_working_days: int = Field(ge=0)
    escalation_forum: str
    stages: dict[str, StageRule]


class MeetingPattern(_Model):
    """A forum's meeting dates: a recurrence rule from a first date, with additions and removals."""

    starts: date
    rule: str
    extra: list[date] = []
    cancelled: list[date] = []
    _after: dict[date, date | None] = PrivateAttr(default_factory=dict)
    _parsed: rrule | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _rule_parses(self) -> MeetingPattern:
        try:
            self._rrule()
        except (ValueError, TypeError) as exc:
            msg = f"meeting rule {self.rule!r} is not an iCalendar RRULE: {exc}"
            raise ValueError(msg) from None
        return self

    def _rrule(self) -> rrule:
        return rrulestr(self.rule, dtstart=datetime.combine(self.starts, time()))

    def first_after(self, day: date) -> date | None:
        """The first meeting strictly after `day`, or None if the pattern has ended. (Remembered: the
        rule is asked for the same few days by every command, and a policy never changes.)"""
        if day not in self._after:
            self._after[day] = self._first_after(day)
        return self._after[day]

    def _first_after(self, day: date) -> date | None:
        if self._parsed is None:
            self._parsed = self._rrule()
        found = self._parsed.after(datetime.combine(day, time.max))
        candidates = [d for d in self.extra if d > day]
        if found is not None:
            candidates.append(found.date())
        if not candidates:
            return None
        first = min(candidates)
        return self.first_after(first) if first in self.cancelled else first


class TimedStage(_Model):
    deadline: Deadline


class DisputeRules(_Model):
    reminder_working_days: int = Field(ge=0)
    escalation_forum: str
    resolved_by: list[str]
    nominated_by: list[str]
    appointed_by: list[str]
    stages: dict[str, TimedStage]


class MonthDay(_Model):
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)


class TerminationRules(_Model):
    notice_months: int = Field(ge=1)
    year_end: MonthDay
    reminder_months_before: list[int]


class VariationRules(_Model):
    reasons: list[str]
    levers: list[str]
    threshold_pence: int = Field(ge=0)
    reminder_working_days: int = Field(ge=0)
    escalation_forum: str
    informs_chief_executive: list[str]
    stages: dict[str, StageRule]


class FundingRules(_Model):
    reminder_working_days: int = Field(ge=0)
    escalation_forum: str
    stages: dict[str, StageRule]


class Reporting(_Model):
    financial_year_starts: MonthDay


class Forum(_Model):
    name: str
    decided_by: str


class Partnership(_Model):
    parties: list[str]
    started_on: date
    ccg_party: str
    timezone: str
    holiday_country: str
    holiday_subdivision: str
    close_of_business: time
    start_of_business: time


class Roles(_Model):
    plain: list[str]
    prefixed: dict[str, Literal["forum", "party"]]
    starts_proposals: list[str]
    starts_variations: list[str]
    starts_funding_changes: list[str]
    manages_funds: list[str]
    withdraws_proposals: list[str]


class Policy(_Model):
    partnership: Partnership
    proposal: ProposalRules
    dispute: DisputeRules
    termination: TerminationRules
    variation: VariationRules
    funding: FundingRules
    reporting: Reporting
    forums: dict[str, Forum]
    roles: Roles
    meetings: dict[str, MeetingPattern]
    content_hash: str = ""
    source_text: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        for name, stage in self.proposal.stages.items():
            if stage.forum not in self.forums:
                msg = f"stage {name!r} names unknown forum {stage.forum!r}"
                raise ValueError(msg)
            meeting = stage.deadline.next_meeting
            if meeting is not None and meeting not in self.meetings:
                msg = f"stage {name!r} waits for meetings of {meeting!r}, which has no dates"
                raise ValueError(msg)
        for kind, stages in (("variation", self.variation.stages), ("funding", self.funding.stages)):
            for name, stage in stages.items():
                if stage.forum not in self.forums:
                    msg = f"[{kind}.stages.{name}] names unknown forum {stage.forum!r}"
                    raise ValueError(msg)
        for stage in ("director", "mediator_selection", "mediation"):
            if stage not in self.dispute.stages:
                msg = f"[dispute.stages.{stage}] is missing"
                raise ValueError(msg)
        if self.proposal.escalation_forum not in self.forums:
            msg = f"escalation forum {self.proposal.escalation_forum!r} is not a forum"
            raise ValueError(msg)
        if self.partnership.ccg_party not in self.partnership.parties:
            msg = f"ccg_party {self.partnership.ccg_party!r} is not a party"
            raise ValueError(msg)
        return self

    @classmethod
    def from_bytes(cls, raw: bytes, source: str = "policy") -> Policy:
        try:
            data = tomllib.loads(raw.decode("utf-8"))
            data["content_hash"] = hashlib.sha256(raw).hexdigest()
            data["source_text"] = raw.decode("utf-8")
            return cls.model_validate(data)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValidationError) as exc:
            first = str(exc).splitlines()[0] if not isinstance(exc, ValidationError) else (
                "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            )
            msg = f"governance policy {source} is not valid: {first}"
            raise PolicyError(msg) from None

    @classmethod
    def load(cls, path: Path | None = None) -> Policy:
        """The policy at `path`, or the one shipped with Concordat."""
        if path is None:
            raw = resources.files("domain").joinpath("governance.toml").read_bytes()
            return cls.from_bytes(raw, "governance.toml (shipped)")
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            msg = f"cannot read governance policy {path}: {exc.strerror}"
            raise PolicyError(msg) from None
        return cls.from_bytes(raw, str(path))

    # --- questions the rules ask -------------------------------------------------------------

    def decider_of(self, forum: str) -> str:
        return self.forums[forum].decided_by

    def stage(self, name: str) -> StageRule:
        try:
            return self.proposal.stages[name]
        except KeyError:
            msg = f"the policy has no deadline rule for stage {name!r}"
            raise PolicyError(msg) from None

    def is_known_role(self, role: str) -> bool:
        if role in self.roles.plain:
            return True
        prefix, sep, rest = role.partition(":")
        kind = self.roles.prefixed.get(prefix)
        if not sep or kind is None:
            return False
        return rest in (self.forums if kind == "forum" else self.partnership.parties)

    def roles_that_start(self, kind: str) -> list[str]:
        """The roles that may open a case of `kind` (a `party_rep` of any party for disputes and notices)."""
        return {
            "proposal": self.roles.starts_proposals,
            "variation": self.roles.starts_variations,
            "funding": self.roles.starts_funding_changes,
            "fund": self.roles.manages_funds,
            "dispute": ["party_rep"],
            "termination": ["party_rep"],
        }[kind]

    @property
    def known_roles_text(self) -> str:
        prefixed = [f"{p}:<{k}>" for p, k in self.roles.prefixed.items()]
        return ", ".join([*self.roles.plain, *prefixed])


class PolicyVersion(Recorded):
    """A policy file as it was when a case first started under it, kept in the event store so a
    case runs to its end under the rules it started with (and an auditor can read them)."""

    @staticmethod
    def create_id(content_hash: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"https://concordat.invalid/policy/{content_hash}")

    @event("Adopted")
    def __init__(self, *, content_hash: str, text: str) -> None:
        self.content_hash = content_hash
        self.text = text
