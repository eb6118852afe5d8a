"""The figures a report case attaches when its schedule fires (`[schedules.NAME] figures`), taken
from the store and the views at that moment and kept on the case's record:

- `cases`: the live cases by kind and by forum (the forum of the stage each awaits, where its route
  names one), and how many of them are past their deadline;
- `decisions`: the decisions recorded since the schedule's previous case (or the partnership's start),
  counted by forum and outcome (from the decisions view, as far as it has caught up);
- `public_health`: the ring-fenced public-health money of the financial year the firing falls in,
  per party per quarter (the `concordat report public-health` report, in pence).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from concordat import bootstrap
from concordat.settings import Settings
from domain.application import CaseService
from workers.cycles import Figures, case_figures


def since_last(app: CaseService, schedule: str) -> str:
    """When the schedule's previous case was due to open (its period starts there)."""
    last = ""
    for reference in app.references(("REV", "RPT")):
        details = app.state(reference).details
        if details.get("schedule") == schedule:
            last = max(last, str(details.get("scheduled_at", "")))
    return last or app.policy.partnership.started_on.isoformat()


def figures_for(settings: Settings, app: CaseService) -> Figures:
    def take(schedule: str, at: datetime) -> dict[str, Any]:
        rule = app.policy.schedules[schedule]
        found: dict[str, Any] = {"taken_for": at.isoformat()}
        if "cases" in rule.figures:
            found["cases"] = case_figures(app, at)
        if "decisions" in rule.figures:
            start = since_last(app, schedule)
            view = bootstrap.open_decisions(settings)
            try:
                rows = [r for r in view.list_decisions(limit=100_000) if start <= str(r["decided_at"]) < at.isoformat()]
            finally:
                view.datastore.close()
            found["decisions"] = {
                "since": start,
                "count": len(rows),
                "by_forum": dict(sorted(Counter(str(r["forum"]) for r in rows).items())),
                "by_outcome": dict(sorted(Counter(str(r["outcome"]) for r in rows).items())),
            }
        if "public_health" in rule.figures:
            starts = app.policy.reporting.financial_year_starts
            day = app.rules.calendar.local_date(at)
            year = day.year if (day.month, day.day) >= (starts.month, starts.day) else day.year - 1
            ph = bootstrap.open_public_health(settings)
            try:
                found["public_health"] = ph.report(year, list(app.policy.partnership.parties))
            finally:
                ph.datastore.close()
        return found

    return take
