"""Text output for people: dates in Europe/London, money in pounds, tables by rich.

Everything printed is text, never markup: case text comes from people (titles, notes, minutes refs,
ids), so the console shows it as written, with rich's markup and emoji codes off, and without the
characters a terminal would act on (escape sequences, other control characters, bidi overrides).
CSV cells that a spreadsheet would run as a formula are neutralised as OWASP recommends.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from rich.text import Text

from concordat.money import MONEY_MAPS, format_pence, pounds_text

if TYPE_CHECKING:  # for annotations only: printing a case imports no more of the engine than it used
    from domain.application import CaseService, HistoryEntry
    from domain.audit import Break, Head, Verification
    from domain.case import CaseView
    from domain.ledger import Sealed
    from domain.policy import Policy
    from domain.routes import Route
    from projections.tables import ViewTables
    from workflows.contracts import CaseState

LONDON = ZoneInfo("Europe/London")
VIEW_WAIT_SECONDS = 2.0


# A whole escape sequence (CSI, OSC, or a two-character one, ESC or 8-bit), so no tail of one is shown.
ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[@-Z\\-_]"
)
# C0 and C1 controls but newline, and the bidi controls that reorder what a reader sees (Trojan Source).
UNSHOWN = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def inert(text: str) -> str:
    """Text with nothing a terminal would act on: escape sequences and control and bidi characters
    removed (a tab becomes a space; a newline stays)."""
    return UNSHOWN.sub("", ESCAPE_SEQUENCE.sub("", text.replace("\t", " ")))


class TextConsole(Console):
    """A rich console for which every string is text: markup and emoji codes off, `inert` applied.
    Tables, titles and `print` all turn strings into text here (rich's `render_str`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs.update(markup=False, emoji=False)
        return super().render_str(inert(text), **kwargs)


def console(*, stderr: bool = False) -> Console:
    # A pipe gets wide, uncoloured lines, so scripts and tests read the same words a person does.
    tty = (sys.stderr if stderr else sys.stdout).isatty()
    return TextConsole(width=None if tty else 160, no_color=not tty, soft_wrap=not tty, stderr=stderr)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def when(value: datetime | str | None) -> str:
    if value is None or value == "":
        return "—"
    instant = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    return instant.astimezone(LONDON).strftime("%a %d %b %Y %H:%M")


def after_act(c: Console, state: CaseState | CaseView) -> None:
    """One line after a command: where the case is now, its nearest deadline, and who acts next."""
    if not state.actions:
        upcoming = min(state.timers, key=lambda t: t.at) if state.timers else None
        then = f"; {upcoming.name} at {when(upcoming.at)}" if upcoming else ""
        c.print(f"{state.reference} {state.status}{then}")
        return
    nxt = "; ".join(
        f"{a.name}{' at ' + a.stage if a.stage else ''}: {', '.join(a.roles)}"
        for a in state.actions
        if a.name != "withdraw"
    )
    stages = state.stage.replace(",", ", ") or "—"
    c.print(f"{state.reference} {state.status} at {stages}; deadline {when(state.deadline)}; next: {nxt}")


def case_view(c: Console, s: CaseView, policy: Policy) -> None:
    c.print(f"{s.reference}  {s.title}")
    rows: list[tuple[str, str]] = [("kind", s.kind), ("status", s.status)]
    if s.stage and not s.awaiting:
        rows.append(("stage", s.stage))
    for a in s.awaiting:
        extra = f"; escalated to {a['escalated_to']}" if a["escalated_to"] else ""
        missed = " (missed)" if a["overdue_recorded"] else ""
        rows.append(
            (
                "awaiting",
                f"{a['stage']} ({a['title']}), deadline {when(a['deadline'])}{missed}"
                f"{'; reminder ' + when(a['reminder_at']) if a['reminder_at'] else ''}{extra}",
            )
        )
    if s.deadline and not s.awaiting:
        rows.append(("deadline" if s.kind not in ("termination", "agreement") else "takes effect", when(s.deadline)))
    decisions = s.details.get("decisions") or []
    for key, value in s.details.items():
        if value in (None, "", [], {}) or key in ("decisions", "escalated_to"):
            continue
        if key == "figures" and isinstance(value, dict):
            rows.extend(figure_rows(value))
            continue
        if key.endswith("_pence") and isinstance(value, int):
            key, value = key.removesuffix("_pence"), format_pence(value)
        elif key == "done" and isinstance(value, dict) and "document_ref" in value:
            note = f": {value['note']}" if value.get("note") else ""
            late = "" if value.get("on_time") != "no" else " (late)"
            value = f"{value['document_ref']} by {value['by']} on {when(value['at'])}{late}{note}"
        elif isinstance(value, dict) and {"by", "at"} <= value.keys():
            note = f": {value['note']}" if value.get("note") else ""
            lead = f"{value['outcome']} " if value.get("outcome") else ""
            value = f"{lead}by {value['by']} on {when(value['at'])}{note}"
        elif key in MONEY_MAPS and isinstance(value, dict):
            value = pounds_text(value)
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            value = "; ".join(detail_entry(key, v) for v in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        rows.append((key.replace("_", " "), str(value)))
    for action in s.actions:
        if action.stage:
            extra = f" (in the stage's place: {', '.join(action.stage_outcomes)})" if action.stage_outcomes else ""
            rows.append(
                ("who acts", f"{', '.join(action.roles)} at {action.stage}: {', '.join(action.outcomes)}{extra}")
            )
        else:
            rows.append(("who acts", f"{action.name}: {', '.join(action.roles)}"))
    for timer in s.timers:
        rows.append(("timer", f"{timer.name} at {when(timer.at)}"))
    if s.route:
        rows.append(("route", route_line(s.route)))
    _rows(c, rows + _provenance(s, policy))
    if decisions:
        c.print("decisions:")
        for d in decisions:
            c.print(f"  {when(d['at'])}  {d['stage']}: {_outcome(d)} by {d['by']}{_minutes(d)}")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in counts.items()) or "none"


def figure_rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """A report's figures (`workers/cycles.py`, as they stood when it opened), a row each, in words;
    `--json` has them whole (the public-health money by quarter too)."""
    rows: list[tuple[str, str]] = []
    if figures.get("taken_for"):
        rows.append(("figures", f"as they stood at {when(figures['taken_for'])}"))
    for name, f in figures.items():
        if name == "taken_for" or not isinstance(f, dict | list):
            continue
        if name == "cases" and isinstance(f, dict):
            text = (
                f"{f['open']} open ({_counts(f['open_by_kind'])}); by forum awaited: {_counts(f['open_by_forum'])}; "
                f"{f['overdue']} overdue"
            )
        elif name == "decisions" and isinstance(f, dict):
            text = (
                f"{f['count']} since {f['since']}; by forum: {_counts(f['by_forum'])}; "
                f"by outcome: {_counts(f['by_outcome'])}"
            )
        elif name == "public_health" and isinstance(f, dict):
            balances = [*f.get("parties", []), f.get("total", {})]
            text = f"{f['financial_year']}, balance for the year: " + ", ".join(
                f"{p['party']} {format_pence(p['year']['balance_pence'])}" for p in balances if p
            )
        elif name == "risks_due" and isinstance(f, list):
            text = "; ".join(f"{r['reference']} {r['title']} (score {r['score']})" for r in f) or "none"
        else:
            text = ", ".join(f"{k}={v}" for k, v in f.items()) if isinstance(f, dict) else ", ".join(map(str, f))
        rows.append((f"  {name.replace('_', ' ')}", text))
    return rows


def detail_entry(key: str, entry: dict[str, Any]) -> str:
    """One entry of a case's list of records (a dispute's objections and former mediators), in words."""
    if key == "objections":
        return f"{entry['party']} objected to {entry['nominee']} on {when(entry['at'])}: {entry['reason']}"
    if key == "former_mediators":
        note = f": {entry['note']}" if entry.get("note") else ""
        return f"{entry['id']} ({entry['letter_ref']}) {entry['ended']} on {when(entry['at'])}{note}"
    if key == "clarifications":
        return f"sought {entry['asked_on']}, " + (
            f"arrived {entry['arrived_on']}" if entry["arrived_on"] else "awaited"
        )
    if key == "fees":
        return f"notice {entry['notice_on']}, " + (f"paid {entry['paid_on']}" if entry["paid_on"] else "unpaid")
    if key == "drafts":
        agreed = ", ".join(f"{p} by {by}" for p, by in entry["agreed"].items()) or "none yet"
        cites = f" citing {', '.join(entry['exemptions'])}" if entry["exemptions"] else ""
        return f"{entry['number']}. {entry['draft_ref']}{cites}: {entry['status']}; agreed: {agreed}"
    return ", ".join(f"{k}={v}" for k, v in entry.items())


def route_line(steps: list[dict[str, Any]]) -> str:
    """The route in a line: ✓ done, ● awaited now, ○ still to come."""
    mark = {"done": "✓", "current": "●", "to_come": "○"}
    return "  ".join(f"{mark[s['state']]} {s['stage']}" for s in steps)


def policy_route(c: Console, kind: str, policy: Policy) -> None:
    """One route, readably: each stage with its forum, who decides, deadline and outcomes."""
    route: Route = policy.routes[kind]

    def say(text: str) -> None:
        c.print(text, markup=False, highlight=False)  # policy text is text, never markup

    say(
        f"{kind}: starts at {route.start}; started by {', '.join(route.started_by)}"
        + (f"; withdrawn by {', '.join(route.withdrawn_by)}" if route.withdrawn_by else "")
    )
    for name, stage in route.stages.items():
        deadline = (
            f"{stage.deadline.working_days} working days"
            if stage.deadline.working_days
            else f"next {stage.deadline.next_meeting} meeting"
        )
        only = f"; only when {', '.join(stage.when)}" if stage.when else ""
        needs = f"; requires {', '.join(stage.requires)}" if stage.requires else ""
        escalates = "" if stage.escalates else "; does not escalate"
        say(
            f"  {name} ({stage.title or stage.forum}): {policy.decider_of(stage.forum)} decides; "
            f"{deadline}{only}{needs}{escalates}"
        )
        for outcome, rule in stage.outcomes.items():
            say(f"    {outcome} → {_leads(rule)}")
    for name, join in route.joins.items():
        say(f"  join {name}: when every branch has approved → {join.then}; a refusal → {join.on_rejected}")
    if route.escalation is not None:
        esc = route.escalation
        in_place = f"; decides in place at {', '.join(esc.decides_in_place)}" if esc.decides_in_place else ""
        say(f"  escalation: to {esc.forum} ({policy.decider_of(esc.forum)}), who may {', '.join(esc.may)}{in_place}")
    say(f"  ends: {', '.join(route.ends)}")
    for name, cond in route.conditions.items():
        tests = cond.model_dump(exclude_defaults=True, exclude={"explain"})
        say(f"  condition {name}: " + ", ".join(f"{k}={v}" for k, v in tests.items()))
    for line in policy.separation.lines():
        say(f"  separation: {line}")


def _leads(rule: Any) -> str:
    def target(t: Any) -> str:
        return "[" + " ∥ ".join(t) + "]" if isinstance(t, list) else str(t)

    if rule.stays:
        text = "stays (to the forum's next meeting)"
    else:
        alts = [
            f"{target(a.to)} if {' and '.join(a.when) or 'always'}"
            + (f" unless {' or '.join(a.unless)}" if a.unless else "")
            for a in rule.routes
        ]
        text = "; ".join([*alts, ("otherwise " if alts else "") + target(rule.to)] if rule.to is not None else alts)
    if rule.result:
        text += f" ({rule.result})"
    conds = (f"; offered when {' and '.join(rule.when)}" if rule.when else "") + (
        f"; offered unless {' or '.join(rule.unless)}" if rule.unless else ""
    )
    times = f"; at most {rule.times}×" if rule.times else ""
    return text + conds + times


def _provenance(s: CaseView, policy: Policy) -> list[tuple[str, str]]:
    """Who started the case, its version, and the policy it runs under."""
    in_force = "" if s.policy_hash == policy.content_hash else " (not the policy in force)"
    return [
        ("started", f"{when(s.started_at)} by {s.started_by['role']}:{s.started_by['id']}"),
        ("version", str(s.version)),
        ("policy", s.policy_hash[:12] + in_force),
    ]


def _rows(c: Console, rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        c.print(f"{key:<{width}}  {value}")


def agreement_line(c: Console, s: CaseView) -> None:
    """A termination agreement in a line: what it does, when, who has signed and who is awaited."""
    d = s.details
    what = f"{d['leaving']} leaves the partnership" if d["leaving"] else "the partnership ends"
    if s.status == "open":
        state = f"signed by {', '.join(d['signed'])}; awaiting {', '.join(d['awaiting'])}"
    else:
        state = s.status.replace("_", " ")
    c.print(f"{s.reference} {what} on {d['effective']}: {state}")


def partnership(c: Console, view: dict[str, Any]) -> None:
    c.print(f"members   {', '.join(view['members']) or '—'}")
    c.print(f"since     {when(view['started_on'])[:15]}")
    if view["ended_on"]:
        c.print(f"ended     {when(view['ended_on'])}")
    for d in view["departures"]:
        c.print(f"left      {d['party']} on {when(d['on'])} ({d['notice_ref']})")
    if not view["pending_notices"]:
        c.print("notices   none pending")
    for n in view["pending_notices"]:
        mutual = f"; mutual termination agreed for {n['mutual_termination_on']}" if n["mutual_termination_on"] else ""
        c.print(f"notice    {n['reference']}: {n['party']} served {n['served_on']}, effective {n['effective']}{mutual}")
    for a in view.get("agreements", []):
        what = f"{a['leaving']} leaves" if a["leaving"] else "the partnership ends"
        state = "in force" if a["status"] == "in_force" else f"signed by {', '.join(a['signed'])}"
        c.print(f"agreement {a['reference']}: {what} on {a['effective']} ({state})")


def _outcome(d: dict[str, Any]) -> str:
    return f"{d['outcome']} {d['stage_outcome']}" if d.get("stage_outcome") else d["outcome"]


def _minutes(d: dict[str, Any]) -> str:
    bits = [f"minutes {d['minutes_ref']}" if d.get("minutes_ref") else "", f"“{d['note']}”" if d.get("note") else ""]
    text = ", ".join(b for b in bits if b)
    return f" ({text})" if text else ""


def history(c: Console, reference: str, entries: list[HistoryEntry]) -> None:
    table = Table(title=f"{reference}: {_count(len(entries), 'event')}", title_justify="left", expand=False)
    for col in ("v", "recorded (Europe/London)", "event", "actor", "workflow"):
        table.add_column(col, no_wrap=True)
    table.add_column("what changed", overflow="fold")
    for e in entries:
        actor = f"{e.actor_role}:{e.actor_id}" if e.actor_id else "—"
        changed = ", ".join(
            f"{k}={_short(v) if k != 'figures' else _keys(v)}" for k, v in e.changes.items() if v not in (None, "", [])
        )
        table.add_row(str(e.version), when(e.recorded_at), e.event, actor, e.workflow_id or "—", changed)
    c.print(table)
    if entries:
        c.print(
            f"policy {entries[-1].policy_hash[:12] or '—'}; head hash {entries[-1].hash[:16]}… "
            "(`concordat history --json` has every event's command id, policy and hashes)"
        )


def _keys(value: Any) -> str:
    """A report's figures in a history line: which were taken (`concordat show` has them in words)."""
    return "{" + ", ".join(value) + "}" if isinstance(value, dict) else _short(value)


def _short(value: Any) -> str:
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, str) and len(value) == 64 and all(ch in "0123456789abcdef" for ch in value):
        return value[:12]  # a content hash
    return str(value)


def wait_for_view(view: ViewTables, cases: CaseService) -> int:
    """Give the projection runner a moment to reach the newest event; return how far behind it is."""
    newest = cases.max_notification_id()
    try:
        view.wait(cases.name, newest, timeout=VIEW_WAIT_SECONDS)
    except TimeoutError:
        return newest - (view.max_tracking_id(cases.name) or 0)
    return 0


def _lag_note(c: Console, lag: int) -> None:
    if lag:
        console(stderr=True).print(
            f"note: this view is {lag} events behind the store; is the projection runner (`concordat up`) running?"
        )


def case_list(c: Console, rows: list[dict[str, Any]], lag: int) -> None:
    _lag_note(c, lag)
    now = datetime.now().astimezone()
    table = Table(title=_count(len(rows), "case"), title_justify="left")
    for col in ("reference", "title", "kind", "stage", "deadline", "overdue", "status"):
        table.add_column(col, overflow="fold", no_wrap=col != "title")
    for r in rows:
        overdue = (
            r["status"] == "open"
            and r["deadline"]
            and datetime.fromisoformat(r["deadline"].replace("Z", "+00:00")) < now
        )
        stage = r["stage"] + (f" → {r['escalated_to']}" if r["escalated_to"] else "")
        table.add_row(
            r["reference"],
            r["title"],
            r["kind"],
            stage if r["status"] == "open" else "—",
            when(r["deadline"]),
            "yes" if overdue else "",
            r["status"],
        )
    c.print(table)


def decisions(c: Console, rows: list[dict[str, Any]], lag: int) -> None:
    _lag_note(c, lag)
    table = Table(title=f"{_count(len(rows), 'decision')}, newest first", title_justify="left")
    for col in ("when", "case", "forum", "outcome", "by"):
        table.add_column(col, no_wrap=True)
    for col in ("minutes", "note"):
        table.add_column(col, overflow="fold")
    for r in rows:
        forum = r["forum"] if r["forum"] == r["stage"] else f"{r['forum']} (for {r['stage']})"
        table.add_row(
            when(r["decided_at"]),
            r["reference"],
            forum,
            _outcome(r),
            f"{r['actor_role']}:{r['actor_id']}",
            r["minutes_ref"],
            r["note"],
        )
    c.print(table)


OUTBOX_STATUS = {
    "pending": "waiting to be sent",
    "sent": "sent",
    "no_address": "not sent: no email address",
    "expired": "not sent: too old when queued",
    "refused": "not sent: address refused",
}


def outbox(c: Console, rows: list[dict[str, Any]]) -> None:
    if not rows:
        c.print("no reminders or escalations")
        return
    table = Table(title=f"{_count(len(rows), 'reminder')}, newest first", title_justify="left")
    for col in ("when", "case", "what", "deadline", "to", "status"):
        table.add_column(col, overflow="fold")
    for r in rows:
        deadline = r["deadline"] if r["deadline"] and "T" not in r["deadline"] else when(r["deadline"])
        table.add_row(
            when(r["event_at"]),
            r["reference"],
            f"{r['kind']} at {r['forum']}",
            deadline,
            f"{r['recipient']} ({r['role']})",
            OUTBOX_STATUS.get(r["status"], r["status"]) + (f" {when(r['sent_at'])}" if r["sent_at"] else ""),
        )
    c.print(table)


def fund(c: Console, view: dict[str, Any]) -> None:
    ring = {True: "yes: public-health money", False: "no", None: "not recorded (opened before funds recorded it)"}
    rows = [
        ("fund", f"{view['name']} ({view['type']})"),
        ("ring-fenced", ring[view.get("ring_fenced")]),
        ("balance", format_pence(view["balance_pence"])),
        (
            "opened",
            f"{when(view['opened']['at'])} by {view['opened']['by']}"
            + (f" ({view['opened']['case']})" if view["opened"].get("case") else ""),
        ),
    ]
    for party, pence in view["contributions"].items():
        rows.append((f"  {party}", format_pence(pence)))
    for item in view["ledger"]:
        ring = " (ring-fenced public health)" if item["public_health"] else ""
        rows.append(("change", f"{item['reference']}: {format_pence(item['total_pence'])} on {when(item['at'])}{ring}"))
    _rows(c, rows)


def with_pounds(report: dict[str, Any]) -> dict[str, Any]:
    """The report for people reading JSON: every `*_pence` amount with its pounds beside it."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: walk(v) for k, v in value.items()}
            for k, v in value.items():
                if k.endswith("_pence") and isinstance(v, int):
                    out[k.removesuffix("_pence")] = format_pence(v)
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return {**walk(report), "unit": "pence (pounds beside)"}


def public_health(c: Console, report: dict[str, Any], lag: int) -> None:
    _lag_note(c, lag)
    t = Table(
        title=f"Ring-fenced public-health money, financial year {report['financial_year']} (Q1 = April–June)",
        title_justify="left",
    )
    for col in ("party", "quarter", "contributions", "changes", "balance"):
        t.add_column(col, justify="left" if col in ("party", "quarter") else "right", no_wrap=True)
    for line in [*report["parties"], report["total"]]:
        t.add_row(line["party"], "opening", "", "", format_pence(line["opening_balance_pence"]))
        for q in line["quarters"]:
            t.add_row(
                "",
                q["quarter"],
                format_pence(q["contributions_pence"]),
                format_pence(q["changes_pence"]),
                format_pence(q["balance_pence"]),
            )
    c.print(t)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: text starting with = + - @ tab or CR gets a leading single
    quote (OWASP, "CSV Injection"); numbers stay numbers, so a negative amount is still an amount."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class _CsvWriter:
    """csv.writer with neutralised cells. Python's writer quotes a field with a newline but not one
    with a bare CR when lines end in \\n, which readers then split; such a row is written fully quoted."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\n")
        self._quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, row: list[Any]) -> None:
        cells = [csv_cell(v) for v in row]
        carriage_return = any(isinstance(v, str) and "\r" in v for v in cells)
        (self._quoted if carriage_return else self._writer).writerow(cells)


def pounds_number(pence: int) -> Decimal:
    """Pence as a plain amount in pounds for a spreadsheet (`-600.00`): a number, so a reduction is
    not mistaken for a formula and quoted."""
    return Decimal(pence).scaleb(-2)


def csv_out(report: dict[str, Any], out: TextIO | None = None) -> None:
    """The quarterly report as CSV, amounts in pounds: one row per party (and the total) per quarter."""
    writer = _CsvWriter(out or sys.stdout)
    writer.writerow(["financial_year", "quarter", "months", "party", "contributions_gbp", "changes_gbp", "balance_gbp"])
    for line in [*report["parties"], report["total"]]:
        for q in line["quarters"]:
            writer.writerow(
                [
                    report["financial_year"],
                    q["quarter"],
                    report["quarters"][q["quarter"]],
                    line["party"],
                    pounds_number(q["contributions_pence"]),
                    pounds_number(q["changes_pence"]),
                    pounds_number(q["balance_pence"]),
                ]
            )


def verify(
    c: Console, checked: int, found: list[Break], heads: list[Head] | None, done: Verification | None = None
) -> None:
    seals = ""
    if done is not None and done.seals:
        seals = f", {_count(done.seals, 'seal')} (through notification {done.sealed_through})"
    held = done.heads_checked if done is not None else len(heads or [])
    kept = f" and {_count(held, 'kept head')}" if heads else ""
    if not found:
        c.print(f"verified {_count(checked, 'chain')}{seals}{kept}: no break", highlight=False)
    else:
        c.print(f"verified {_count(checked, 'chain')}{seals}{kept}: {_count(len(found), 'break')}", highlight=False)
    for b in found:
        if b.check == "seal":  # a seal's finding is a sentence that names what it is about
            c.print(f"  {b.kind}: {b.detail}", highlight=False)
        else:
            c.print(f"  {b.reference} v{b.version} {b.kind}: {b.detail}", highlight=False)
    if done is not None and done.unsealed:
        c.print(
            f"{_count(done.unsealed, 'notification')} after the last seal not sealed yet "
            "(`concordat audit seal` seals them)",
            highlight=False,
        )


def heads(c: Console, items: list[Head], signed: dict[str, Any] | None = None) -> None:
    for h in items:
        c.print(f"{h.reference}  v{h.version}  {h.hash}", highlight=False)
    if signed:
        c.print(f"signed by the audit key {signed['public_key']}", highlight=False)
        c.print(f"signature {signed['signature']}", highlight=False)


def sealed(c: Console, done: list[Sealed]) -> None:
    if not done:
        c.print("nothing new to seal", highlight=False)
        return
    events = sum(s.count for s in done)
    c.print(
        f"sealed notifications {done[0].first}–{done[-1].last} ({_count(events, 'event')}) "
        f"in {_count(len(done), 'seal')}",
        highlight=False,
    )


def export(rows: Iterator[dict[str, Any]], fmt: str, out: TextIO | None = None) -> None:
    """The history as JSON lines or CSV, to `out` (standard output by default)."""
    out = out or sys.stdout
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
        return
    writer = _CsvWriter(out)
    columns = [
        "reference",
        "originator_id",
        "version",
        "event",
        "recorded_at",
        "actor_id",
        "actor_role",
        "command_id",
        "workflow_id",
        "policy_hash",
        "prev_hash",
        "hash",
        "fields",
    ]
    writer.writerow(columns)
    for row in rows:
        row = {**row, "fields": json.dumps(row["fields"], default=str, ensure_ascii=False, sort_keys=True)}
        writer.writerow([row[k] for k in columns])


def user(c: Console, view: dict[str, Any]) -> None:
    tokens = [t["id"] + (" (revoked)" if t["revoked"] else "") for t in view.get("tokens", [])]
    c.print(
        f"{view['id']}: {', '.join(view['roles']) or 'no roles'}; "
        f"password {'set' if view['has_password'] else 'not set'}; tokens: {', '.join(tokens) or 'none'}"
        + (f"; email {view['email']}" if view.get("email") else ""),
        highlight=False,
    )


def users(c: Console, people: list[dict[str, Any]]) -> None:
    if not people:
        c.print("no users yet: the first is an administrator, `concordat user add ID --role admin --password-stdin`")
        return
    for view in people:
        user(c, view)


def quarantined(c: Console, found: dict[str, list[dict[str, Any]]]) -> None:
    total = sum(len(rows) for rows in found.values())
    if not total:
        c.print(f"no event quarantined in {', '.join(found)}")
        return
    for name, rows in found.items():
        if rows:
            c.print(f"{name}: {_count(len(rows), 'event')} quarantined")
        for r in rows:
            c.print(
                f"  event {r['notification_id']} ({_topic(r['topic'])} of {r['originator_id']} "
                f"v{r['originator_version']}), since {when(r['quarantined_at'])}, "
                f"{_count(int(r['attempts']), 'attempt')}: {r['error']}"
            )
    c.print("once the cause is fixed, `concordat projections retry` projects them again")


def _topic(topic: str) -> str:
    return topic.rpartition(":")[2] or topic


def retried(c: Console, results: list[Any]) -> None:
    for r in results:
        done = f"reprojected {_count(len(r.reprojected), 'event')}" + (
            f" ({', '.join(map(str, r.reprojected))})" if r.reprojected else ""
        )
        c.print(f"{r.view}: {done}; {len(r.still)} still quarantined")
        for row in r.still:
            c.print(
                f"  event {row['notification_id']} ({_topic(row['topic'])} of {row['originator_id']}): {row['error']}"
            )


def refusals(c: Console, entries: list[Any]) -> None:
    """The refusal log as lines: position, time, door, who, what, why (all text inert)."""
    if not entries:
        c.print("no refusals recorded", highlight=False)
        return
    for e in entries:
        who = e.actor + ("" if e.proven else " (unproven)")
        what = e.command + (f" {e.reference}" if e.reference else "")
        c.print(
            inert(f"#{e.position} {e.at[:19]} {e.door} {who}: {what} — {e.rule}: {e.reason}"),
            highlight=False,
            markup=False,
        )


FOI_COLUMNS = (
    "reference",
    "party",
    "requester_ref",
    "received_on",
    "financial_year",
    "quarter",
    "status",
    "clock",
    "due",
    "extended_to",
    "sent_on",
    "on_time",
    "overdue",
    "exemptions",
    "subject",
)


def foi_register(c: Console, report: dict[str, Any]) -> None:
    """The FOI register: a line per request, then the share answered on time per quarter."""
    if not report["requests"]:
        c.print("no FOI requests")
        return
    for r in report["requests"]:
        if r["status"] == "sent":
            answer = f"sent {r['sent_on']} ({'on time' if r['on_time'] else 'late'})"
        else:
            answer = "OVERDUE" if r["overdue"] else (r["clock"].replace("_", " ") or r["status"])
        due = f"due {r['due']}" if r["due"] else "clock stopped"
        c.print(
            f"{r['reference']}  {r['party']}  received {r['received_on']}  {due}  {answer}  {inert(r['subject'])}",
            highlight=False,
        )
    c.print("on time, by quarter received:")
    for q in report["quarters"]:
        share = f"{q['share_on_time']:.0%}" if q["share_on_time"] is not None else "—"
        c.print(
            f"  {q['financial_year']} Q{q['quarter']}: {q['received']} received, {q['due']} due, "
            f"{q['on_time']} on time ({share})",
            highlight=False,
        )


def foi_csv(report: dict[str, Any], out: TextIO | None = None) -> None:
    """The FOI register as CSV: one row per request (exemptions separated by semicolons)."""
    writer = _CsvWriter(out or sys.stdout)
    writer.writerow(list(FOI_COLUMNS))
    for r in report["requests"]:
        writer.writerow(["; ".join(r[k]) if k == "exemptions" else r[k] for k in FOI_COLUMNS])


def schedules(c: Console, rows: list[dict[str, Any]]) -> None:
    """`concordat schedules`: each schedule, what it opens, its owner and its next firings."""
    if not rows:
        c.print("no schedules: the policy has no [schedules] table")
        return
    table = Table(box=None, pad_edge=False)
    for name in ("schedule", "opens", "owner", "when", "next firings", "state"):
        table.add_column(name)
    for r in rows:
        state = (
            "not created (start a worker)"
            if not r["created"]
            else ("paused: " + r["note"] if r["paused"] else "active")
        )
        table.add_row(
            r["name"],
            r["opens"],
            r["owner"],
            r["every"],
            ", ".join(when(datetime.fromisoformat(t)) for t in r["next"]) or "—",
            state,
        )
    c.print(table)


def cycles(c: Console, rows: list[dict[str, Any]]) -> None:
    """`concordat cycles list`: each review and report case."""
    if not rows:
        c.print("no review or report cases yet")
        return
    table = Table(box=None, pad_edge=False)
    for name in ("case", "title", "owner", "due", "status"):
        table.add_column(name)
    for r in rows:
        d = r["details"]
        done = d.get("done") or {}
        status = f"done ({done.get('document_ref')})" if done else r["status"]
        table.add_row(r["reference"], r["title"], d["owner"], d["due"], status)
    c.print(table)


def risks(c: Console, rows: list[dict[str, Any]]) -> None:
    """`concordat risk register`: highest score first."""
    if not rows:
        c.print("no risks on the register")
        return
    table = Table(box=None, pad_edge=False)
    for name in ("risk", "title", "owner", "L", "I", "score", "review on", "status"):
        table.add_column(name)
    for r in rows:
        table.add_row(
            r["reference"], r["title"], r["owner"], str(r["likelihood"]), str(r["impact"]), str(r["score"]),
            r["review_on"], r["status"],
        )  # fmt: skip
    c.print(table)
