"""The API's answer when the workflow could not tell whether a command was recorded: a 503 the client
may retry (with `Retry-After`), saying to repeat it with the same Idempotency-Key, never a 409 or a
refusal (nothing was refused). `tests/workflows/test_unknown_outcome.py` shows the repeat finishing it."""

from __future__ import annotations

import json

from concordat.engine import CommandRefusedError
from concordat.web.problems import problem_for, problem_response


def test_an_unknown_outcome_is_a_503_to_repeat_with_the_same_key() -> None:
    unknown = CommandRefusedError("the store did not answer in time", "StoreUnavailable")
    status, detail = problem_for(unknown)
    assert status == 503
    assert "repeat it with the same Idempotency-Key" in detail
    answer = problem_response(status, detail)
    assert answer.headers["Retry-After"] and json.loads(answer.body)["status"] == 503


def test_a_refusal_from_the_workflow_keeps_its_status() -> None:
    assert problem_for(CommandRefusedError("no", "NotAllowedError"))[0] == 403
    assert problem_for(CommandRefusedError("awaiting jcu, not board", "WrongStageError"))[0] == 409
