"""The fields of each way to start a case, declared once.

Each model is what a person gives to start a case of one kind, named as the CLI's options and the
API's fields. The API takes it as its request body (and its OpenAPI schema comes from it); the CLI's
options are made from it (`cli_options`); the web form's fields are made from it (`form_fields`).
`title` is the form's label, `description` the help the CLI and the API show, and `input` (in the
field's extra schema) the kind of form input; `hint` a line under the form's label.

Nothing here decides a rule: the domain checks the values (`concordat.commands` turns pounds into
pence and names into the domain's fields).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from domain.values import (
    CASE_REFERENCE_PATTERN,
    FundName,
    LongText,
    MediatorId,
    Name,
    Note,
    OptionalReference,
    OptionalTitle,
    PartyCode,
    Pattern,
    Pounds,
    ProviderName,
    Reference,
    SignedPounds,
    Title,
)

OptionalCaseReference = Pattern(f"^$|{CASE_REFERENCE_PATTERN}", "a case reference (e.g. PRO-2026-0001)")


def _f(default: Any = ..., *, label: str, help: str, input: str = "text", hint: str = "", **kw: Any) -> Any:
    return Field(default, title=label, description=help, json_schema_extra={"input": input, "hint": hint}, **kw)


class Fields(BaseModel):
    # Validators are built when a kind's input is first checked, not at import: the CLI reads every
    # kind's fields to make its options, and building all their validators took most of its start.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


# A list of parties, or one comma-separated string (as the CLI and the forms give them).
Parties = list[PartyCode] | Annotated[str, Field(max_length=200, pattern=r"^[A-Z0-9_, ]*$")]
# Members of a forum by their names as recorded (a list, or one comma-separated string).
Members = (
    list[Name]
    | Annotated[str, Field(max_length=2000, pattern=r"^$|^ *[a-z][a-z0-9_]{0,63} *(, *[a-z][a-z0-9_]{0,63} *)*$")]
)
PARTIES_HELP = "Parties it concerns: PCC, CCC, CPCCG (a list, or comma-separated)."


class ProposalIn(Fields):
    """Start a proposal"""

    title: Title = _f(label="Title", help="What the proposal is, in a line.")
    kind: Name = _f(
        label="Kind of proposal",
        input="kind",
        help="service_commissioning, pathway_change, minor_redesign, major_redesign or procurement.",
    )
    value: Pounds = _f(label="Annual value in pounds", help="Annual value in pounds, e.g. 180000 or £180,000.50.")
    parties: Parties = _f(label="Parties", input="parties", help=PARTIES_HELP)
    public_health: bool = _f(
        False,
        label="Public-health ring-fenced money is involved",
        input="checkbox",
        help="Public-health ring-fenced money is involved.",
    )


class DisputeIn(Fields):
    """Raise a dispute"""

    against: Parties = _f(
        label="Parties the concern is against",
        input="parties",
        help="The parties the concern is against, e.g. CCC (a list, or comma-separated).",
    )
    subject: Title = _f(
        label="What the dispute is about",
        help="What the dispute is about, in a line.",
        hint="In a line.",
    )
    description: Note = _f("", label="The concern in full", input="textarea", help="The concern in full.")
    case: OptionalCaseReference | None = _f(
        None,
        label="A case it concerns (optional)",
        help="A case it concerns, e.g. PRO-2026-0001.",
        hint="For example, PRO-2026-0001.",
    )


class TerminationIn(Fields):
    """Serve notice to leave the partnership"""

    letter_ref: Reference = _f(
        label="Reference of the notice letter",
        hint="Notice is given in writing.",
        help="Reference of the notice letter (notice is given in writing).",
    )
    served_on: date | None = _f(
        None,
        label="Served on (optional)",
        hint="YYYY-MM-DD; today if empty.",
        help="When it was served, YYYY-MM-DD (default today; not in the future).",
    )
    effective: date | None = _f(
        None,
        label="Takes effect on (optional)",
        hint="YYYY-MM-DD; six calendar months after service at the earliest.",
        help="When it takes effect, YYYY-MM-DD (six months after service at least).",
    )
    year_end: bool = _f(
        False,
        label="Take effect on the first 31 March at least six months on",
        input="checkbox",
        help="Take effect on the first 31 March at least six months on.",
    )


class AgreementIn(Fields):
    """Propose termination by mutual consent"""

    leaving: PartyCode | None = _f(
        None,
        label="The party that leaves (empty: the partnership ends)",
        hint="PCC, CCC or CPCCG; leave empty to end the partnership.",
        help="The party that leaves, e.g. PCC (leave it out: the partnership ends).",
    )
    effective: date = _f(
        label="Agreed date",
        hint="YYYY-MM-DD, today or later; no notice period applies.",
        help="The agreed date, YYYY-MM-DD (today or later); it takes effect at the start of that day.",
    )
    agreement_ref: Reference = _f(
        label="Reference of the written agreement",
        hint="Signed by every party.",
        help="Reference of the written agreement every party signs.",
    )
    note: Note = _f("", label="Note (optional)", input="textarea", help="A note for the record.")


class VariationIn(Fields):
    """Start a contract variation"""

    provider: ProviderName = _f(label="Provider", help="The provider whose contract varies.")
    contract_ref: Reference = _f(label="Contract reference", help="The contract's reference.")
    reason: Name = _f(
        label="Reason",
        input="reason",
        help="performance_review, contract_performance_notice, managing_activity_and_referrals or other.",
    )
    value_change: SignedPounds = _f(
        label="Change in annual value, in pounds",
        hint="Negative for a reduction, e.g. -40000.",
        help="Change in annual value in pounds; negative for a reduction.",
    )
    parties: Parties = _f(
        label="Parties to the contract",
        input="parties",
        help="Parties to the contract: PCC, CCC, CPCCG (a list, or comma-separated).",
    )
    effective: date = _f(
        label="Takes effect on", hint="YYYY-MM-DD, once agreed.", help="When it takes effect once agreed, YYYY-MM-DD."
    )
    fund: list[FundName] | Annotated[str, Field(max_length=2000)] = _f(
        [],
        label="Funds the contract draws on (optional)",
        hint="Their names, comma-separated.",
        help="The funds the contract draws on, comma-separated: a ring-fenced one means Public Health signs off.",
    )
    public_health: bool | None = _f(
        None,
        label="Public-health money is in the contract",
        input="checkbox",
        help="Optional: the funds named decide whether ring-fenced money is in the contract; given, it must agree "
        "(with no fund named, it decides: Public Health signs off).",
    )
    title: OptionalTitle = _f("", label="Title (optional)", help="A title (default: provider, contract and reason).")


class FundingIn(Fields):
    """Start an in-year funding change"""

    fund: FundName = _f(label="Fund", hint="Its name, as opened.", help="The fund's name.")
    change: dict[PartyCode, SignedPounds] = _f(
        label="Each party's change in contribution, in pounds",
        input="changes",
        hint="Negative for a reduction; leave a party empty for no change.",
        help='Each party\'s change in pounds, e.g. {"PCC": -20000}; on the CLI PARTY=POUNDS, repeated for each party.',
        min_length=1,
    )
    public_health: bool | None = _f(
        None,
        label="Ring-fenced public-health money is involved",
        input="checkbox",
        help="Optional: whether the fund holds ring-fenced public-health money decides the consultation; "
        "given, it must agree with the fund (for a fund opened before that was recorded, it decides).",
    )
    public_health_service: bool = _f(
        False,
        label="A public-health service (its Directors of Public Health decide)",
        input="checkbox",
        help="A public-health service: each council's Director of Public Health decides.",
    )
    title: OptionalTitle = _f("", label="Title (optional)", help="A title (default: the fund and the net change).")


class FundIn(Fields):
    """Propose to open an aligned or pooled fund (the Programme Board agrees it)"""

    # Each party's contribution (a ring-fenced fund's are identified separately: Cabinet report
    # 4.5.1), or, for a fund that is not ring-fenced, an opening balance alone (the earlier form).
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "anyOf": [
                {"required": ["contribution"], "properties": {"contribution": {"minProperties": 1}}},
                {
                    "required": ["balance"],
                    "properties": {"balance": {"not": {"type": "null"}}, "ring_fenced": {"const": False}},
                },
            ]
        },
    )

    name: FundName = _f(label="Name of the fund", help="The fund's name.")
    type: Literal["aligned", "pooled"] = _f(label="Aligned or pooled", input="fund_type", help="aligned or pooled.")
    contribution: dict[PartyCode, Pounds] = _f(
        {},
        label="Each party's contribution, in pounds",
        input="changes",
        hint="Leave a party empty if it puts nothing in.",
        help='Each party\'s contribution in pounds, e.g. {"PCC": 300000}; on the CLI PARTY=POUNDS, repeated.',
    )
    ring_fenced: bool = _f(
        False,
        label="Holds ring-fenced public-health money",
        input="checkbox",
        help="The fund holds ring-fenced public-health money (Public Health is consulted on it and every change "
        "to it; its contributions are reported quarterly).",
    )
    balance: Pounds | None = _f(
        None,
        label="Opening balance in pounds (optional)",
        help="Opening balance in pounds: the sum of the contributions if both are given; alone, for a fund that "
        "is not ring-fenced.",
    )
    title: OptionalTitle = _f("", label="Title (optional)", help="A title (default: the fund, its type and balance).")


class FoiIn(Fields):
    """Record a Freedom of Information request"""

    subject: Title = _f(label="Subject", help="What the request asks for, in a line.")
    requester_ref: Reference = _f(
        label="Your reference for the request",
        hint="Your party's own FOI log number (not the requester's name).",
        help="Your party's own reference for the request (its FOI log number; not the requester's name).",
    )
    received_on: date | None = _f(
        None,
        label="Received on",
        input="date",
        hint="YYYY-MM-DD; today if empty.",
        help="The day your party received it, YYYY-MM-DD (default today): the clock counts from it.",
    )


# --- commands on a case: the API's request bodies, and what the CLI's and the pages' fields are
# checked against (`concordat.commands`) ---------------------------------------------------------


class DecisionIn(Fields):
    stage: Name = Field(description="The stage (or escalation forum) deciding, e.g. board")
    outcome: Name = Field(description="e.g. approve, refer, recommend, reject, defer")
    minutes_ref: OptionalReference = ""
    note: Note = ""
    stage_outcome: Name | None = Field(
        None, description="With outcome `decide` at an escalation: the stage's own outcome"
    )
    deadline: date | None = Field(None, description="With outcome `extend`: the new deadline")
    meeting: OptionalReference = Field("", description="The meeting it was taken at (MTG-…), for a forum that meets")
    taking_part: Members = Field(
        [], description="With a meeting: the members who took part (default: those present with no declared interest)"
    )
    written_procedure: bool = Field(False, description="Taken by written procedure, without a meeting")


class CallInIn(Fields):
    stage: Name = Field(description="The stage whose held decision is called in, e.g. pcc_decision")
    members: Members = Field(description="The scrutiny members calling it in (a list, or comma-separated)")
    reason: Note = Field("", description="Why it is called in")


class WithdrawIn(Fields):
    note: Note = ""


class ResolveIn(Fields):
    outcome: Literal["resolved", "mediation", "no_mediation"]
    note: Note = ""


class NominateIn(Fields):
    mediator: MediatorId = Field(
        description="The nominee's user id (e.g. mo): a person of the directory who holds the mediator role"
    )
    note: Note = ""


class ObjectIn(Fields):
    reason: LongText = Field(description="Why the nominee is not independent")


class ExtendIn(Fields):
    deadline: date | None = Field(None, description="The new deadline (empty: the stage's own time from today)")
    note: Note = ""


class NoteIn(Fields):
    note: Note = ""


class EmptyIn(Fields):
    pass


class AppointIn(Fields):
    letter_ref: Reference


class FindingsIn(Fields):
    findings: LongText
    cost: Pounds


class ConsentIn(Fields):
    effective: date


class OnDateIn(Fields):
    on: date | None = Field(None, description="The day it happened, YYYY-MM-DD (default today)")
    note: Note = ""


class PublicInterestIn(Fields):
    to: date = Field(description="The new date the answer is due, YYYY-MM-DD (a UK working day)")
    reason: Reference = Field(description="Why: the exemption whose public interest test needs the time")


Exemptions = list[Reference] | Annotated[str, Field(max_length=400)]


class DraftIn(Fields):
    draft_ref: Reference = Field(description="The draft response's document reference")
    exemptions: Exemptions = Field(
        default_factory=list, description="Exemptions it cites, e.g. s.40(2), s.43(2) (a list, or comma-separated)"
    )
    note: Note = ""


class RecordDoneIn(Fields):
    document_ref: Reference = Field(description="The review's or report's document reference (where it is kept)")
    note: Note = ""


# Each command on a case by its CLI name: the fields it takes.
ACT_MODELS: dict[str, type[Fields]] = {
    "decide": DecisionIn,
    "withdraw": WithdrawIn,
    "resolve": ResolveIn,
    "nominate": NominateIn,
    "agree": EmptyIn,
    "refuse": NoteIn,
    "object": ObjectIn,
    "appoint": AppointIn,
    "findings": FindingsIn,
    "consent": ConsentIn,
    "inform-ce": NoteIn,
    "extend": ExtendIn,
    "call-in": CallInIn,
    "seek-clarification": OnDateIn,
    "clarification-received": OnDateIn,
    "fees-notice": OnDateIn,
    "fee-paid": OnDateIn,
    "extend-public-interest": PublicInterestIn,
    "draft-response": DraftIn,
    "send-response": OnDateIn,
    "record-done": RecordDoneIn,
}


START_MODELS: dict[str, type[Fields]] = {
    "proposal": ProposalIn,
    "dispute": DisputeIn,
    "termination": TerminationIn,
    "agreement": AgreementIn,
    "variation": VariationIn,
    "funding": FundingIn,
    "fund": FundIn,
    "foi": FoiIn,
}


def extra(info: FieldInfo, key: str) -> str:
    data = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return str(data.get(key, ""))


def form_fields(model: type[Fields]) -> list[tuple[str, str, str, str, bool]]:
    """A web form's fields: (name, label, input, hint, required)."""
    return [
        (name, info.title or name, extra(info, "input") or "text", extra(info, "hint"), info.is_required())
        for name, info in model.model_fields.items()
    ]
