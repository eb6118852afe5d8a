"""The governance policy: the partnership's rules as data.

The policy file (`governance.toml`, shipped with the package; another may be named in settings) holds
the parties, the forums and who decides for each, each kind's route (`[routes.<kind>]`: stages,
outcomes, conditions, forks and joins, deadlines, escalation; see `domain/routes.py` and
docs/policy.md), separation of duties (`[separation]`, `domain/separation.py`), the dispute and
termination rules, and the meeting dates. Code in `domain/` reads it;
nothing else holds these rules. `check_bytes` finds every problem with a file, each with its line.
Its SHA-256 (`Policy.content_hash`) is recorded on every case when it starts.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable
from datetime import date, datetime, time
from importlib import resources
from pathlib import Path
from typing import Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from dateutil.rrule import rrule, rruleset, rrulestr
from eventsourcing.domain import event
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from domain.errors import PolicyError
from domain.meeting_rules import CallInRules, KeyDecisionRules, MeetingRules
from domain.recorded import Recorded
from domain.routes import Deadline, Route
from domain.separation import Separation
from domain.values import DEFAULT_MAX_VALUE_POUNDS, MAX_PENCE

# The case kinds whose way through the forums is a route in the policy file.
ROUTED_KINDS = ("proposal", "variation", "funding")
# The engine's own role, whatever the agreement says: operators (people, roles, tokens, resume,
# replay). It decides nothing in any case, and nobody holds it together with `auditor`.
ADMIN_ROLE = "admin"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StageRule(_Model):
    forum: str
    deadline: Deadline
    escalates: bool = True


class ProposalRules(_Model):
    """A proposal's own vocabulary. (The other keys are those of policy files written before routes
    were data: they are read so such a file still loads, and mean nothing now; see `legacy_routes`.)"""

    kinds: list[str]
    delegated_authority_pence: int | None = None
    kinds_decided_above_board: list[str] = []
    board_deferrals_allowed: int | None = None
    reminder_working_days: int | None = None
    escalation_forum: str | None = None
    stages: dict[str, StageRule] = {}


class MeetingPattern(_Model):
    """A forum's meeting dates: a recurrence rule from a first date, with additions and removals."""

    starts: date
    rule: str
    extra: list[date] = []
    cancelled: list[date] = []
    _after: dict[date, date | None] = PrivateAttr(default_factory=dict)
    _parsed: rrule | rruleset | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _rule_parses(self) -> MeetingPattern:
        try:
            self._rrule()
        except (ValueError, TypeError) as exc:
            msg = f"meeting rule {self.rule!r} is not an iCalendar RRULE: {exc}"
            raise ValueError(msg) from None
        return self

    def _rrule(self) -> rrule | rruleset:
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
    # How many working days after service a notice may still be recorded (a policy file written
    # before this setting gets the default).
    late_recording_working_days: int = Field(default=10, ge=0, le=260)


class VariationRules(_Model):
    """A variation's own vocabulary (legacy keys as for `ProposalRules`)."""

    reasons: list[str]
    levers: list[str]
    informs_chief_executive: list[str]
    threshold_pence: int | None = None
    reminder_working_days: int | None = None
    escalation_forum: str | None = None
    stages: dict[str, StageRule] = {}


class FundingRules(_Model):
    """Legacy keys only: a funding change's route is `[routes.funding]`."""

    reminder_working_days: int | None = None
    escalation_forum: str | None = None
    stages: dict[str, StageRule] = {}


class Reporting(_Model):
    financial_year_starts: MonthDay


class FoiAgreement(_Model):
    """How long each other party's representative has to agree a draft response, and to whom one
    that has not answered by then is escalated."""

    working_days: int = Field(default=5, ge=1, le=20)
    escalate_to: str = "lead_director"


class FoiRules(_Model):
    """Freedom of Information requests (MOU, FOI; FOIA s.1(3), s.10): the working days allowed, the
    nations whose bank holidays stop the count, how far a public-interest extension may go, and the
    other parties' agreement to the draft response. A policy file without `[foi]` gets these defaults."""

    working_days: int = Field(default=20, ge=1, le=60)
    holiday_nations: list[str] = ["ENG", "WLS", "SCT", "NIR"]
    max_extension_working_days: int = Field(default=20, ge=0, le=60)
    reminder_working_days: int = Field(default=5, ge=0, le=20)
    agreement: FoiAgreement = FoiAgreement()


class ScheduleRule(_Model):
    """A recurring review or report duty (`[schedules.NAME]`; `domain/cycles.py`): what case each
    firing opens, when it fires (a cron expression, five fields, in the partnership's timezone; or
    every so many days), who owns it, its deadline in working days after the firing, and for a report
    the figures it attaches. `start_on`/`end_on` bound the firings (a one-off review two years on is
    a yearly cron between them). A firing missed while the engine was down is caught up once if the
    engine is back within `catchup_window_days`."""

    opens: Literal["review", "report"]
    title: str = Field(min_length=1, max_length=200)
    cron: str = ""
    every_days: int | None = Field(default=None, ge=1, le=3660)
    owner: str
    deadline_working_days: int = Field(default=20, ge=1, le=120)
    reminder_working_days: int = Field(default=5, ge=0, le=60)
    escalate_to: str = "lead_director"
    figures: list[Literal["cases", "decisions", "public_health", "risks_due"]] = []
    start_on: date | None = None
    end_on: date | None = None
    catchup_window_days: int = Field(default=30, ge=1, le=365)

    def problems(self, is_known_role: Callable[[str], bool]) -> list[tuple[tuple[str, ...], str]]:
        found: list[tuple[tuple[str, ...], str]] = []
        if bool(self.cron) == (self.every_days is not None):
            found.append(((), "give either cron (five fields) or every_days, not both or neither"))
        if self.cron and len(self.cron.split()) != 5:
            found.append(
                (("cron",), f"{self.cron!r} is not a five-field cron expression (minute hour day month weekday)")
            )
        for key in ("owner", "escalate_to"):
            role = getattr(self, key)
            if not is_known_role(role):
                found.append(((key,), f"{role!r} is not a role"))
        if self.start_on and self.end_on and self.end_on <= self.start_on:
            found.append((("end_on",), f"{self.end_on.isoformat()} is not after start_on {self.start_on.isoformat()}"))
        if set(self.figures) - {"risks_due"} and self.opens != "report":
            found.append((("figures",), "only a report attaches figures (a review may list the risks due)"))
        return found


class Minutes(_Model):
    """Whether a forum's decision must name its minutes, and the forums exempt. Absent from a policy
    file: none required (the rule before it was one), so a case keeps the rules it started under."""

    required: bool = False
    exempt: list[str] = []

    def needed_at(self, forum: str) -> bool:
        return self.required and forum not in self.exempt


class Forum(_Model):
    """A body that decides or recommends. `party` names the party it belongs to (a council's or the
    CCG's own body), so whoever records its decisions is that party's officer: not independent of
    the partners, and so never a dispute's mediator. A joint forum names none."""

    name: str
    decided_by: str
    # A party's own decision-making body decides for that party only (MOU Schedule 1 (b)-(e)): the
    # party it belongs to, so that it takes no part once that party has left.
    party: str | None = None


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
    manages_funds: list[str]
    # Before routes were data, who starts and withdraws each kind was listed here; now each route
    # says (`started_by`, `withdrawn_by`). Read so an old policy file still loads.
    starts_proposals: list[str] = []
    starts_variations: list[str] = []
    starts_funding_changes: list[str] = []
    withdraws_proposals: list[str] = []


class Limits(_Model):
    """Bounds on what a command may carry (`domain/values.py` holds the rest). An amount above
    `max_value_pounds` is refused, whichever way it comes in (default)."""

    max_value_pounds: int = Field(default=DEFAULT_MAX_VALUE_POUNDS, ge=1, le=MAX_PENCE // 100)


class Policy(_Model):
    partnership: Partnership
    proposal: ProposalRules
    dispute: DisputeRules
    termination: TerminationRules
    variation: VariationRules
    funding: FundingRules = FundingRules()
    reporting: Reporting
    forums: dict[str, Forum]
    roles: Roles
    meetings: dict[str, MeetingPattern]
    routes: dict[str, Route] = {}
    # Separation of duties (`domain/separation.py`); a file without the table gets both rules on.
    separation: Separation = Separation()
    minutes: Minutes = Minutes()
    limits: Limits = Limits()
    # Meetings, agendas, quorum and declarations of interest, per forum (domain/meeting_rules.py).
    meeting_rules: dict[str, MeetingRules] = {}
    # Key decisions and the forward plan (domain/meeting_rules.py); absent: no decision is key.
    key_decisions: KeyDecisionRules | None = None
    # Decision notices and call-in (domain/meeting_rules.py); absent: decisions take effect at once.
    call_in: CallInRules | None = None
    foi: FoiRules = FoiRules()
    # Review and report cycles, each a Temporal Schedule (`workflows/schedules.py`); none when absent.
    schedules: dict[str, ScheduleRule] = {}
    content_hash: str = ""
    source_text: str = ""

    def problems(self) -> list[tuple[tuple[str, ...], str]]:
        """Everything wrong with the policy beyond its shape: (where, what)."""
        found: list[tuple[tuple[str, ...], str]] = []
        if self.partnership.ccg_party not in self.partnership.parties:
            found.append((("partnership", "ccg_party"), f"ccg_party {self.partnership.ccg_party!r} is not a party"))
        for name, forum in self.forums.items():
            if forum.party is not None and forum.party not in self.partnership.parties:
                found.append((("forums", name, "party"), f"party {forum.party!r} is not a party"))
        for stage in ("director", "mediator_selection", "mediation"):
            if stage not in self.dispute.stages:
                found.append((("dispute", "stages"), f"[dispute.stages.{stage}] is missing"))
        for kind in ROUTED_KINDS:
            if kind not in self.routes:
                found.append((("routes",), f"there is no route for {kind!r}: add [routes.{kind}]"))
        if not self.is_known_role(self.foi.agreement.escalate_to):
            found.append((("foi", "agreement", "escalate_to"), f"{self.foi.agreement.escalate_to!r} is not a role"))
        for nation in self.foi.holiday_nations:
            if nation not in ("ENG", "WLS", "SCT", "NIR"):
                found.append((("foi", "holiday_nations"), f"{nation!r} is not ENG, WLS, SCT or NIR"))
        for name, schedule in self.schedules.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
                found.append((("schedules", name), f"{name!r} is not a schedule name (a-z, 0-9, _)"))
            for loc, msg in schedule.problems(self.is_known_role):
                found.append((("schedules", name, *loc), msg))
        for exempt in self.minutes.exempt:
            if exempt not in self.forums:
                found.append((("minutes", "exempt"), f"{exempt!r} is not a forum; forums: {', '.join(self.forums)}"))
        for name, mrules in self.meeting_rules.items():
            if name not in self.forums:
                found.append((("meeting_rules", name), f"{name!r} is not a forum; forums: {', '.join(self.forums)}"))
            elif mrules.chair_capacity and mrules.capacities and mrules.chair_capacity not in mrules.capacities:
                found.append(
                    (("meeting_rules", name, "chair_capacity"), f"{mrules.chair_capacity!r} is not one of capacities")
                )
        for name in self.key_decisions.forums if self.key_decisions else []:
            if name not in self.forums:
                found.append(
                    (("key_decisions", "forums"), f"{name!r} is not a forum; forums: {', '.join(self.forums)}")
                )
        if self.call_in is not None:
            for name in self.call_in.forums:
                if name not in self.forums:
                    found.append((("call_in", "forums"), f"{name!r} is not a forum"))
                elif name not in self.call_in.scrutiny:
                    found.append((("call_in", "scrutiny"), f'{name!r} has no scrutiny forum: add {name} = "…"'))
            for body, scrutiny in self.call_in.scrutiny.items():
                if scrutiny not in self.forums:
                    found.append((("call_in", "scrutiny", body), f"{scrutiny!r} is not a forum"))
        for loc, msg in self.separation.problems(self.forums):
            found.append((("separation", *loc), msg))
        reached = {stage.forum for route in self.routes.values() for stage in route.stages.values()}
        reached |= {route.escalation.forum for route in self.routes.values() if route.escalation is not None}
        reached |= set(self.call_in.scrutiny.values()) if self.call_in is not None else set()
        for name in self.forums:
            if self.routes and name not in reached:
                found.append(
                    (
                        ("forums", name),
                        f"forum {name!r} is reached by no route: no stage or escalation decides there, so nothing "
                        "could ever be decided by it (name it in a route's stage, or remove it)",
                    )
                )
        deciders = {name: f.decided_by for name, f in self.forums.items()}
        for kind, route in self.routes.items():
            for loc, msg in route.problems(deciders, self.is_known_role):
                found.append((("routes", kind, *loc), msg))
            deadlines: list[tuple[tuple[str, ...], Deadline]] = [
                (("stages", n, "deadline"), s.deadline) for n, s in route.stages.items()
            ]
            if route.escalation is not None:
                deadlines.append((("escalation", "deadline"), route.escalation.deadline))
            for loc, deadline in deadlines:
                meeting = deadline.next_meeting
                if meeting is not None and meeting not in self.meetings:
                    found.append(
                        (
                            ("routes", kind, *loc),
                            f"waits for meetings of {meeting!r}, which has no dates (add [meetings.{meeting}])",
                        )
                    )
        return found

    @classmethod
    def check_bytes(cls, raw: bytes, source: str = "policy") -> tuple[Policy | None, list[str]]:
        """The policy in `raw` and every problem with it, each as `SOURCE:LINE: FIELD: what is wrong`."""
        try:
            text = raw.decode("utf-8")
            data = tomllib.loads(text)
        except UnicodeDecodeError:
            return None, [f"{source}: is not UTF-8 text"]
        except tomllib.TOMLDecodeError as exc:
            return None, [f"{source}: {str(exc).splitlines()[0]}"]
        if "routes" not in data:
            # A policy written before routes were data: the routes the engine ran then, as data.
            data["routes"] = tomllib.loads(resources.files("domain").joinpath("legacy_routes.toml").read_text("utf-8"))
        data["content_hash"] = hashlib.sha256(raw).hexdigest()
        data["source_text"] = text
        try:
            policy = cls.model_validate(data)
        except ValidationError as exc:
            return None, [_where(source, text, tuple(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
        return policy, [_where(source, text, loc, msg) for loc, msg in policy.problems()]

    @classmethod
    def from_bytes(cls, raw: bytes, source: str = "policy") -> Policy:
        policy, problems = cls.check_bytes(raw, source)
        if policy is None or problems:
            more = f" (and {len(problems) - 1} more: run `concordat policy check`)" if len(problems) > 1 else ""
            msg = f"governance policy is not valid: {problems[0]}{more}"
            raise PolicyError(msg)
        return policy

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

    def meetings_of(self, forum: str) -> MeetingRules | None:
        """The forum's meeting rules, or None: it records decisions without meetings."""
        return self.meeting_rules.get(forum)

    def decider_of(self, forum: str) -> str:
        return self.forums[forum].decided_by

    def party_of_role(self, role: str) -> str | None:
        """The party a role is tied to: `party_rep:<party>`, or the decider of a party's own forum
        (`secretary:pcc_decision` is PCC's officer); None for a role of no one party."""
        prefix, sep, rest = role.partition(":")
        if prefix == "party_rep" and sep and rest in self.partnership.parties:
            return rest
        for forum in self.forums.values():
            if forum.party is not None and forum.decided_by == role:
                return forum.party
        return None

    def route(self, kind: str) -> Route:
        try:
            return self.routes[kind]
        except KeyError:
            msg = f"the policy has no route for {kind!r}"
            raise PolicyError(msg) from None

    def party_acted_for(self, role: str) -> str | None:
        """The party a role acts for: `party_rep:PCC` for PCC, a party's own body's secretary for
        that party; None for a role that acts for the partnership as a whole."""
        prefix, sep, rest = role.partition(":")
        kind = self.roles.prefixed.get(prefix)
        if not sep or kind is None:
            return None
        if kind == "party":
            return rest
        forum = self.forums.get(rest)
        return forum.party if forum is not None else None

    def is_known_role(self, role: str) -> bool:
        if role == ADMIN_ROLE or role in self.roles.plain:
            return True
        prefix, sep, rest = role.partition(":")
        kind = self.roles.prefixed.get(prefix)
        if not sep or kind is None:
            return False
        return rest in (self.forums if kind == "forum" else self.partnership.parties)

    def roles_that_start(self, kind: str) -> list[str]:
        """The roles that may open a case of `kind` (a `party_rep` of any party for disputes and notices)."""
        if kind in self.routes:
            return list(self.routes[kind].started_by)
        return {
            "fund": self.roles.manages_funds,
            "dispute": ["party_rep"],
            "termination": ["party_rep"],
            "agreement": ["party_rep"],
            "foi": ["party_rep"],
        }[kind]

    @property
    def known_roles_text(self) -> str:
        prefixed = [f"{p}:<{k}>" for p, k in self.roles.prefixed.items()]
        return ", ".join([*self.roles.plain, *prefixed, ADMIN_ROLE])


def _where(source: str, text: str, loc: tuple[str, ...], msg: str) -> str:
    line = locate(text, loc)
    field = ".".join(p for p in loc if not p.isdigit() and p not in ("str", "list[str]"))
    return f"{source}:{line}: {field}: {msg}" if line else f"{source}: {field}: {msg}"


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-.\" ]+?)\s*=")


def locate(text: str, loc: tuple[str, ...]) -> int | None:
    """The line of a TOML file that holds `loc` (a table header or key), or its nearest enclosing
    table: the longest prefix of `loc` that a line names. tomllib keeps no positions; a policy file
    is small and written in the plain style this reads."""
    best, best_len = None, 0
    header: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if (m := _HEADER.match(line)) is not None:
            header = [p.strip().strip('"') for p in m.group(1).split(".")]
            path = header
        elif (m := _KEY.match(line)) is not None:
            path = [*header, *(p.strip().strip('"') for p in m.group(1).split("."))]
        else:
            continue
        n = 0
        while n < len(path) and n < len(loc) and path[n] == loc[n]:
            n += 1
        if n == len(path) and n > best_len:
            best, best_len = number, n
    return best


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
