"""The activity of a schedule's firing (`workflows/schedules.py`): open its review or report case in
the store, with the figures a report attaches, taken by `figures` (built in the composition root,
which holds the views)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.application import CaseService
from domain.case import CaseView
from domain.errors import ConcordatError
from workers.activities import case_state
from workflows.contracts import OPEN_SCHEDULED_CASE, CaseState, OpenScheduledInput

log = structlog.get_logger("concordat.cycles")
# (schedule name, the instant it fired for) -> the figures its report attaches
Figures = Callable[[str, datetime], dict[str, Any]]


def _forum(app: CaseService, state: CaseView, stage: str) -> str:
    route = app.policy.routes.get(state.kind)
    if route is not None and stage in route.stages:
        return route.stages[stage].forum
    return stage or "—"


def case_figures(app: CaseService, at: datetime) -> dict[str, Any]:
    by_kind: Counter[str] = Counter()
    by_forum: Counter[str] = Counter()
    overdue: Counter[str] = Counter()
    for reference in app.references():
        state = app.state(reference, history=False)
        if not (state.actions or state.timers) or state.started_at > at:
            continue
        by_kind[state.kind] += 1
        for stage in [s.strip() for s in state.stage.split(",")] or [""]:
            forum = _forum(app, state, stage)
            by_forum[forum] += 1
            if state.deadline is not None and state.deadline < at:
                overdue[forum] += 1
    return {
        "open_by_kind": dict(sorted(by_kind.items())),
        "open_by_forum": dict(sorted(by_forum.items())),
        "overdue_by_forum": dict(sorted(overdue.items())),
        "open": sum(by_kind.values()),
        "overdue": sum(overdue.values()),
    }


class CycleActivities:
    def __init__(self, app: CaseService, figures: Figures) -> None:
        self.app = app
        self.figures = figures

    @activity.defn(name=OPEN_SCHEDULED_CASE)
    def open_scheduled_case(self, input: OpenScheduledInput) -> CaseState:
        try:
            state = self.app.open_scheduled(
                schedule=input.schedule,
                scheduled_at=input.scheduled_at,
                figures=lambda: self.figures(input.schedule, input.scheduled_at),
                command_id=input.command_id,
                at=input.at,
            )
        except ConcordatError as err:
            log.warning("schedule.refused", schedule=input.schedule, error=str(err))
            raise ApplicationError(str(err), type=type(err).__name__, non_retryable=True) from None
        log.info("schedule.fired", schedule=input.schedule, case=state.reference, at=input.scheduled_at.isoformat())
        return case_state(state)

    def all(self) -> list[Callable[..., CaseState]]:
        return [self.open_scheduled_case]
