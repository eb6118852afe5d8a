"""A case as JSON, for `--json` and the API: kept apart from the engine so that printing a case
read from the store imports nothing of Temporal."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from concordat.money import pounds_beside

if TYPE_CHECKING:
    from domain.case import CaseView
    from workflows.contracts import CaseState


def state_dict(state: CaseView | CaseState) -> dict[str, Any]:
    """A case as JSON; its amounts are in pence (`value_pence`, `changes`) and, for people, in pounds
    beside them (`details.pounds`)."""
    contracts = sys.modules.get("workflows.contracts")  # a CaseState only if the command loaded them
    if contracts is not None and isinstance(state, contracts.CaseState):
        return state.model_dump(mode="json")
    data: dict[str, Any] = _jsonable(asdict(state))
    pounds = pounds_beside(data.get("details") or {})
    if pounds:
        data["details"]["pounds"] = pounds
    return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
