"""Every command a person can give, for the CLI, the web pages and the JSON API: one path to the
store and the workflows (`engine.send_update`, `engine.ensure_workflow`).

Nothing here decides a rule. It turns request fields into the domain's command fields (pounds into
pence, `case` into `linked_case`), picks which of a signed-in person's roles they act in from the
roles the domain says may give the command, and runs the store's blocking calls off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from temporalio.client import Client
from temporalio.service import RPCError

from concordat import bootstrap, keys
from concordat.engine import TemporalUnavailableError, ensure_workflow, send_update
from concordat.fields import ACT_MODELS, START_MODELS, DecisionIn, Fields, WithdrawIn
from concordat.money import parse_pounds, parse_signed_pounds
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.case import CaseView
from domain.directory import Directory
from domain.errors import CaseNotFoundError, IdempotencyKeyReusedError, InvalidInputError, NotAllowedError
from domain.idempotency import reused_text, scoped_command_id
from domain.identity import Identity, role_fits
from domain.values import amount_as_text, check_pence, check_pounds_text, field_path
from workers.proof import sign
from workflows.contracts import ActInput, ActorRef

START_KINDS = ("proposal", "dispute", "termination", "agreement", "variation", "funding", "fund", "foi")
# What the store's receipt of each kind of start names: a case reference's prefix, or a fund.
OPENS = {
    "proposal": "PRO-",
    "dispute": "DSP-",
    "termination": "TRM-",
    "agreement": "AGR-",
    "variation": "VAR-",
    "funding": "FUN-",
    "fund": "FND-",
    "foi": "FOI-",
}
# Each command of the other case kinds: the CLI command, the domain action and its fields.
CASE_ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "resolve": ("resolve", ("outcome", "note")),
    "nominate": ("nominate", ("mediator", "note")),
    "agree": ("agree", ()),
    "refuse": ("refuse", ("note",)),
    "object": ("object", ("reason",)),
    "appoint": ("appoint", ("letter_ref",)),
    "findings": ("findings", ("findings", "cost")),
    "inform-ce": ("inform_chief_executive", ("note",)),
    "extend": ("extend", ("deadline", "note")),
    "call-in": ("call_in", ("stage", "members", "reason")),
    # FOI requests (domain/foi.py)
    "seek-clarification": ("seek_clarification", ("on", "note")),
    "clarification-received": ("clarification_received", ("on", "note")),
    "fees-notice": ("fees_notice", ("on", "note")),
    "fee-paid": ("fee_paid", ("on", "note")),
    "extend-public-interest": ("extend_public_interest", ("to", "reason")),
    "draft-response": ("draft_response", ("draft_ref", "exemptions", "note")),
    "send-response": ("send_response", ("on", "note")),
    # review and report cases (domain/cycles.py)
    "record-done": ("record_done", ("document_ref", "note")),
}
# Fields that are dates, sent to the domain as YYYY-MM-DD (or left out).
_DATES = ("on", "to")


def _names(value: Any) -> list[str]:
    """Names given as a list or as one comma-separated string (the CLI's and the forms' way)."""
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(n).strip() for n in items if str(n).strip()]


@dataclass
class Commands:
    """`door` names the tier that proved the person (`cli`, `api`, `web`); every command sent into
    Temporal is signed for that door with the command key (`workers/proof.py`)."""

    settings: Settings
    cases: CaseService
    directory: Directory
    door: str = "cli"
    connect: Callable[[Settings], Awaitable[Client]] = bootstrap.connect
    _client: Client | None = None
    _key: bytes | None = None

    @classmethod
    def open(cls, settings: Settings, door: str = "cli") -> Commands:
        cases = bootstrap.open_cases(settings)
        return cls(settings=settings, cases=cases, directory=Directory(cases), door=door)

    @property
    def command_key(self) -> bytes:
        if self._key is None:
            self._key = keys.command_key(self.settings)
        return self._key

    async def client(self) -> Client:
        if self._client is None:
            try:
                self._client = await self.connect(self.settings)
            except RuntimeError:
                raise TemporalUnavailableError(
                    f"cannot reach Temporal at {self.settings.temporal_address}; the engine is not running, try again"
                ) from None
        return self._client

    # --- starting cases ---------------------------------------------------------------------------

    async def start(
        self, kind: str, who: Identity, fields: dict[str, Any], command_id: str, role: str | None = None
    ) -> Any:
        """Open a case of `kind` from request fields named as the CLI's options; start its workflow."""
        actor = who.acting_as(self.cases.policy.roles_that_start(kind), role)
        if kind not in START_MODELS:
            raise InvalidInputError(f"cannot start a {kind!r}; kinds: {', '.join(START_KINDS)}")
        fields = self._checked(START_MODELS[kind], fields)
        start = self._start(kind, fields)  # the request's own mistakes first, whatever the engine's state
        client = await self.client()  # before writing: a case with no engine to run it helps nobody
        cid = await asyncio.to_thread(self._start_id, who, kind, command_id, fields)
        with _reused(command_id):
            state = await asyncio.to_thread(start, actor, cid)
        try:
            await ensure_workflow(client, self.settings, state, self.cases)
        except (RPCError, RuntimeError) as err:
            # The case is stored; its workflow is not running yet. A repeat with the same command id
            # (Idempotency-Key) finds the case and starts it; so does the worker's sweep on its own.
            cause = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise TemporalUnavailableError(
                f"{state.reference} is recorded but Temporal did not start its workflow ({cause}); the engine "
                "starts it by itself, or repeat the command with the same command id to start it now"
            ) from None
        # As shown: with the case's decision history (none yet for a new case), which the store's answer leaves out.
        return await asyncio.to_thread(lambda: self.cases.state(state.reference, version=state.version))

    async def consent(
        self, who: Identity, reference: str, effective: date, command_id: str, role: str | None = None
    ) -> tuple[Any, bool]:
        """`termination consent` of earlier releases, on today's agreements: sign, for the person's
        party, the open agreement that ends the partnership on `effective`, or propose one that names
        the notice `reference` (the notice must exist). The agreement is in force once every party
        has signed it, and then no one party can undo it. Answers the agreement, and whether it is new."""
        await asyncio.to_thread(self.cases.get, reference, actor=who.any_role())  # unknown: 404, not a proposal

        def open_agreement() -> str | None:
            # From the store, not the case list: a consent given a moment ago must be found.
            for ref in self.cases.references(prefixes=("AGR",)):
                try:
                    state = self.cases.state(ref)
                except CaseNotFoundError:
                    continue
                details = state.details
                same = str(details.get("effective")) == effective.isoformat() and not details.get("leaving")
                if same and state.status == "open":
                    return ref
            return None

        found = await asyncio.to_thread(open_agreement)
        if found is not None:
            return await self.act(who, found, "agree", {}, command_id, role), False
        fields = {"effective": effective, "agreement_ref": f"consent to {reference}", "note": f"consent on {reference}"}
        return await self.start("agreement", who, fields, command_id, role), True

    def _checked(self, model: type[Fields], given: dict[str, Any]) -> dict[str, Any]:
        """The request's fields checked by the command's one declaration (concordat/fields.py, with
        the rules of domain/values.py), whichever door they came through: the first problem as one
        line naming the field as that door spells it (`--letter-ref` on the command line)."""
        fields = {}
        for name, info in model.model_fields.items():
            value = given.get(name)
            if value is None or (value == "" and info.default is None):
                continue  # not given: the field's default
            fields[name] = value
        try:
            checked = model.model_validate(fields)
        except ValidationError as err:
            first = err.errors()[0]
            where = field_path(first["loc"]) or model.__name__
            if self.door == "cli":
                where = "--" + where.replace("_", "-")
            if str(first["type"]).startswith("date"):  # pydantic's words for a date are about datetimes
                raise InvalidInputError(f"{where} {first['input']!r} is not a date YYYY-MM-DD") from None
            raise InvalidInputError(f"{where}: {first['msg']}") from None
        return checked.model_dump()

    def _pence(self, value: Any, field: str, *, signed: bool = False) -> int:
        """An amount in pounds as pence, within the policy's maximum."""
        text = amount_as_text(value, field=field, signed=signed)
        if isinstance(value, str):
            check_pounds_text(text, self.cases.policy.limits.max_value_pounds, field=field, signed=signed)
        pence = parse_signed_pounds(text) if signed else parse_pounds(text)
        return check_pence(pence, self.cases.policy.limits.max_value_pounds, field=field)

    def _start_id(self, who: Identity, kind: str, key: str, fields: dict[str, Any]) -> str:
        """The command id the store records for a start: scoped to the person, the kind and the
        fields (domain/idempotency.py), or the key itself if this person used it for a start of this
        kind before keys were scoped (the store then answers it as before)."""
        earlier = self.cases.started_by(key)
        if earlier is not None and earlier[1] == who.user_id and earlier[0].startswith(OPENS[kind]):
            return key
        return scoped_command_id(who.user_id, f"start:{kind}", key, fields)

    def _start(self, kind: str, f: dict[str, Any]) -> Callable[[Actor, str], Any]:
        """The store call that opens the case, with the request's fields turned into the domain's."""
        app = self.cases
        if kind == "proposal":
            pence, parties = self._pence(f.get("value"), "value"), _parties(f.get("parties"))
            return lambda actor, cid: app.start_proposal(
                actor=actor,
                title=f.get("title", ""),
                kind=f.get("kind", ""),
                value_pence=pence,
                parties=parties,
                public_health=bool(f.get("public_health")),
                command_id=cid,
            )
        if kind == "dispute":
            fields = {
                "against": _parties(f.get("against")),
                "subject": f.get("subject", ""),
                "description": f.get("description", ""),
                "linked_case": f.get("case") or None,
            }
            return lambda actor, cid: app.raise_dispute(actor=actor, fields=fields, command_id=cid)
        if kind == "termination":
            fields = {
                "letter_ref": f.get("letter_ref", ""),
                "served_on": _day(f.get("served_on"), "served_on"),
                "effective": _day(f.get("effective"), "effective"),
                "year_end": bool(f.get("year_end")),
            }
            return lambda actor, cid: app.serve_notice(actor=actor, fields=fields, command_id=cid)
        if kind == "agreement":
            effective = _day(f.get("effective"), "effective")
            fields = {
                "leaving": str(f.get("leaving") or "").strip() or None,
                "effective": effective.isoformat() if effective else None,
                "agreement_ref": f.get("agreement_ref", ""),
                "note": f.get("note", ""),
            }
            return lambda actor, cid: app.propose_agreement(actor=actor, fields=fields, command_id=cid)
        if kind == "variation":
            fields = {
                "provider": f.get("provider", ""),
                "contract_ref": f.get("contract_ref", ""),
                "reason": f.get("reason", ""),
                "value_change_pence": self._pence(f.get("value_change"), "value_change", signed=True),
                "parties": _parties(f.get("parties")),
                "effective_on": _day(f.get("effective"), "effective"),
                "funds": _parties(f.get("fund")),
                "public_health": None if f.get("public_health") is None else bool(f.get("public_health")),
                "title": f.get("title", ""),
            }
            return lambda actor, cid: app.start_variation(actor=actor, fields=fields, command_id=cid)
        if kind == "funding":
            changes = f.get("change") or {}
            if not isinstance(changes, dict) or not changes:
                raise InvalidInputError('change: give each party\'s change in pounds, e.g. {"PCC": "-20000"}')
            fields = {
                "fund": f.get("fund", ""),
                "changes": {str(p): self._pence(v, f"change.{p}", signed=True) for p, v in changes.items()},
                "public_health": None if f.get("public_health") is None else bool(f.get("public_health")),
                "public_health_service": bool(f.get("public_health_service")),
                "title": f.get("title", ""),
            }
            return lambda actor, cid: app.start_funding_change(actor=actor, fields=fields, command_id=cid)
        if kind == "fund":
            given = f.get("contribution") or {}
            if not isinstance(given, dict):
                raise InvalidInputError(
                    'contribution: give each party\'s contribution in pounds, e.g. {"PCC": "300000"}'
                )
            balance = f.get("balance")
            fields = {
                "name": f.get("name", ""),
                "type": f.get("type", ""),
                "ring_fenced": bool(f.get("ring_fenced")),
                "contributions": {str(p): self._pence(v, f"contribution.{p}") for p, v in given.items()},
                "balance_pence": None if balance in (None, "") else self._pence(balance, "balance"),
                "title": f.get("title", ""),
            }
            return lambda actor, cid: app.open_fund(actor=actor, fields=fields, command_id=cid)
        if kind == "foi":
            received = _day(f.get("received_on"), "received_on")
            fields = {
                "subject": f.get("subject", ""),
                "requester_ref": f.get("requester_ref", ""),
                "received_on": received.isoformat() if received else None,
            }
            return lambda actor, cid: app.receive_foi(actor=actor, fields=fields, command_id=cid)
        raise InvalidInputError(f"cannot start a {kind!r}; kinds: {', '.join(START_KINDS)}")

    # --- commands on a case -----------------------------------------------------------------------

    async def decide(
        self, who: Identity, reference: str, fields: dict[str, Any], command_id: str, role: str | None = None
    ) -> Any:
        """A forum's decision at one of the stages the case awaits (or an escalation's outcome)."""
        fields = self._checked(DecisionIn, fields)
        stage = str(fields.get("stage") or "").strip()
        new_deadline = _day(fields.get("deadline"), "deadline")
        act = {
            "stage": stage,
            "outcome": str(fields.get("outcome") or "").strip(),
            "minutes_ref": fields.get("minutes_ref") or "",
            "note": fields.get("note") or "",
            "stage_outcome": fields.get("stage_outcome") or None,
            "new_deadline": new_deadline.isoformat() if new_deadline else None,
        }
        # Where a forum that meets took it (domain/meeting.py); left out when not said, so a decision
        # without them is the command it always was.
        if fields.get("meeting"):
            act["meeting"] = str(fields["meeting"]).strip()
        if taking_part := _names(fields.get("taking_part")):
            act["taking_part"] = taking_part
        if fields.get("written_procedure"):
            act["written_procedure"] = True
        cid, earlier = await self._earlier(who, reference, "decide", command_id, act)
        if earlier is not None:
            return earlier
        allowed, current = await asyncio.to_thread(self._allowed, reference, "decide", stage)
        actor = await self._acting(who, reference, allowed, role)
        return await self._act(actor, reference, "decide", act, cid, current)

    async def withdraw(self, who: Identity, reference: str, note: str, command_id: str, role: str | None = None) -> Any:
        act = {"note": self._checked(WithdrawIn, {"note": note})["note"]}
        cid, earlier = await self._earlier(who, reference, "withdraw", command_id, act)
        if earlier is not None:
            return earlier
        allowed, current = await asyncio.to_thread(self._allowed, reference, "withdraw")
        actor = await self._acting(who, reference, allowed, role)
        return await self._act(actor, reference, "withdraw", act, cid, current)

    async def act(
        self,
        who: Identity,
        reference: str,
        command: str,
        fields: dict[str, Any],
        command_id: str,
        role: str | None = None,
    ) -> Any:
        """A case's own command by its CLI name (`nominate`, `inform-ce`, …)."""
        action, names = CASE_ACTIONS[command]
        fields = self._checked(ACT_MODELS[command], fields)
        given = {n: fields.get(n) for n in names}
        if "cost" in given:
            given = {"findings": given["findings"] or "", "cost_pence": self._pence(given["cost"], "cost")}
        if "effective" in given:
            given["effective"] = _day(given["effective"], "effective")
        if "members" in given:
            given["members"] = _names(given["members"])
        if "deadline" in given:
            day = _day(given.pop("deadline"), "deadline")
            given["new_deadline"] = day.isoformat() if day else None
        for name in _DATES:
            if name in given:
                day = _day(given[name], name)
                given[name] = day.isoformat() if day else None
        if "exemptions" in given:
            given["exemptions"] = _parties(given["exemptions"])
        act = {k: ("" if v is None and k not in ("new_deadline", *_DATES) else v) for k, v in given.items()}
        cid, earlier = await self._earlier(who, reference, action, command_id, act)
        if earlier is not None:
            return earlier
        allowed, current = await asyncio.to_thread(self._allowed, reference, action)
        actor = await self._acting(who, reference, allowed, role)
        return await self._act(actor, reference, action, act, cid, current)

    async def _acting(self, who: Identity, reference: str, allowed: list[str], role: str | None) -> Actor:
        """The actor for a command on a case. A person the case does not await who holds a role of a
        party that has left the partnership learns that, not only which roles the case awaits."""
        try:
            return who.acting_as(allowed, role)
        except NotAllowedError:
            for held in [role] if role else who.roles:
                await asyncio.to_thread(self.cases.check_role_takes_part, held, reference)
            raise

    def _allowed(self, reference: str, action: str, stage: str = "") -> tuple[list[str], CaseView]:
        """The roles that may give `action` (at `stage`) now; when nobody may now (the case has moved
        on), the roles that could when the case last awaited it. So a person who never could is
        refused as such (403), whatever key they send, before the domain says the case moved on (409)
        to one who could (who then learns what was recorded instead). And the case as it stands, which
        the update is sent on (one read of the case for both)."""
        current = self.cases.state(reference, history=False)
        allowed = allowed_roles(current, action, stage)
        version = current.version - 1
        while not allowed and version >= 1:
            allowed = allowed_roles(self.cases.state(reference, version=version, history=False), action, stage)
            version -= 1
        return allowed, current

    async def _earlier(
        self, who: Identity, reference: str, action: str, key: str, fields: dict[str, Any]
    ) -> tuple[str, Any]:
        """The command id to record for `who`'s `key` on this case and action (domain/idempotency.py),
        and the first answer if that command was applied already: the same answer again, before any
        check that the case has since moved past it, but only to the person who gave it and only while
        they hold the role they gave it in. The same key with other fields is refused (422)."""
        cid = scoped_command_id(who.user_id, f"{reference}:{action}", key, fields)
        with _reused(key):
            found = await asyncio.to_thread(self.cases.replay, reference, cid, user_id=who.user_id, legacy_key=key)
        if found is None:
            return cid, None
        version, role = found
        who.acting_as([role] if role else [])  # authorisation before any replay
        return cid, await asyncio.to_thread(lambda: self.cases.state(reference, version=version))

    async def _act(
        self, actor: Actor, reference: str, action: str, fields: dict[str, Any], command_id: str, current: CaseView
    ) -> Any:
        plain = ActInput(actor=ActorRef(id=actor.id, role=actor.role), action=action, fields=fields)
        act = sign(self.command_key, plain, reference=reference, command_id=command_id, door=self.door)
        client = await self.client()
        answer = await send_update(client, self.settings, self.cases, reference, act, command_id, current=current)
        # The whole case as the command left it (the workflow's answer carries only what it waits on).
        return await asyncio.to_thread(lambda: self.cases.state(reference, version=answer.version))


@contextmanager
def _reused(key: str) -> Iterator[None]:
    """The store's refusal of a key reused with other fields, in words naming the client's key."""
    try:
        yield
    except IdempotencyKeyReusedError:
        raise IdempotencyKeyReusedError(reused_text(key)) from None


def allowed_roles(state: Any, action: str, stage: str = "") -> list[str]:
    """The roles the domain says may give `action` now (for a decision: at `stage`)."""
    return list(
        dict.fromkeys(r for a in state.actions if a.name == action and (not stage or a.stage == stage) for r in a.roles)
    )


def actions_for(state: Any, who: Identity) -> list[dict[str, Any]]:
    """What the signed-in person may do on this case now, each with the role they would act in.
    A decision the policy's separation of duties would refuse them (`barred`) is not offered."""
    return [
        {
            "action": a.name,
            "stage": a.stage,
            "role": role,
            "outcomes": list(a.outcomes),
            "stage_outcomes": list(a.stage_outcomes),
        }
        for a in state.actions
        if who.user_id not in getattr(a, "barred", ())
        for role in who.roles
        if role_fits(role, a.roles)
    ]


def _parties(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, list):
        return [str(p).strip() for p in value if str(p).strip()]
    raise InvalidInputError('parties: give a list like ["PCC", "CPCCG"] or a string like "PCC,CPCCG"')


def _day(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidInputError(f"{name} {value!r} is not a date YYYY-MM-DD") from None
