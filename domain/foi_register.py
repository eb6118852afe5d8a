"""The register of FOI requests, and the share answered on time per quarter (the figure the
regulator asks public bodies to publish).

Each request counts in the UK financial quarter it was received (the policy's `[reporting]` year;
Q1 = April–June). Of a quarter's requests, those that are *due* are the ones answered and those still
open whose due date has passed; the share on time is those answered on or before their due date (a
public-interest extension's, where one was given) out of those due. A request still open and not yet
due, or whose clock is stopped, is not counted either way.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from domain.case import CaseView, Rules
from domain.funding import financial_quarter


def register(rules: Rules, requests: list[CaseView], today: date) -> dict[str, Any]:
    rows = []
    quarters: dict[tuple[int, int], dict[str, Any]] = {}
    for s in requests:
        d = s.details
        received = date.fromisoformat(d["received_on"])
        due = date.fromisoformat(d["due"]) if d.get("due") else None
        year, quarter = financial_quarter(rules, received)
        late_open = s.status == "open" and due is not None and due < today
        rows.append(
            {
                "reference": s.reference,
                "subject": d["subject"],
                "party": d["party"],
                "requester_ref": d["requester_ref"],
                "received_on": d["received_on"],
                "financial_year": year,
                "quarter": quarter,
                "status": s.status,
                "clock": d["clock"] if s.status == "open" else "",
                "due": d.get("due"),
                "extended_to": (d.get("extension") or {}).get("to"),
                "sent_on": d.get("sent_on"),
                "on_time": d.get("on_time"),
                "overdue": late_open,
                "exemptions": list(d.get("exemptions") or []) if s.status == "sent" else [],
            }
        )
        q = quarters.setdefault(
            (year, quarter),
            {"financial_year": year, "quarter": quarter, "received": 0, "due": 0, "on_time": 0, "share_on_time": None},
        )
        q["received"] += 1
        if s.status == "sent" or late_open:
            q["due"] += 1
        if s.status == "sent" and d.get("on_time"):
            q["on_time"] += 1
    for q in quarters.values():
        q["share_on_time"] = round(q["on_time"] / q["due"], 4) if q["due"] else None
    return {"requests": rows, "quarters": [quarters[k] for k in sorted(quarters)]}
