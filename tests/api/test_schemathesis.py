"""Property-based tests of the served OpenAPI document (schemathesis, every check: the equivalent of
`--checks all`): whatever a client sends, the API answers without a server error; every answer and
status code is one the document declares; a request the document calls valid is never refused as
malformed (422), and one it calls invalid is never accepted. With the tokens of several roles (a JCU
lead, a board secretary, an auditor, an administrator), so requests reach the rules, not just 401.

(schemathesis' pytest plugin cannot read a fixture's schema under this pytest, so the test walks the
operations itself, with a bounded number of generated requests each, in both generation modes.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from tests.api.conftest import Api

# A rule on a well-formed request that no JSON Schema can state: a variation takes effect after today
# (a date the schema can only call a date). Refused with a 422 naming the rule; listed here, narrowly,
# so that every other schema-valid request refused is a failure.
# Rules between values no JSON Schema states: a variation takes effect after today; a fund's opening
# balance, given beside its contributions, is their sum.
RULES_BEYOND_A_SCHEMA = ("must be after today", "is not the sum of the contributions")
EXAMPLES = {GenerationMode.POSITIVE: 5, GenerationMode.NEGATIVE: 4}
ROLES = ("jo", "sam", "audrey", "admin")


def every_check() -> list[object]:
    """Every check schemathesis registers (what `--checks all` runs)."""
    load_all_checks()
    return [c for c in CHECKS.get_all() if not isinstance(c, type)]


def run(
    strategy: Any, examples: int, headers: dict[str, str], mode: GenerationMode, checks: list[object]
) -> Callable[[], None]:
    """A Hypothesis test sending `examples` requests drawn from `strategy`, checked by `checks`."""

    @given(case=strategy)
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        sent = dict(headers)
        if mode is GenerationMode.POSITIVE and case.method == "POST":
            # A new request with a new key, as a client makes them: a key generated twice for two
            # bodies is, rightly, a 422 (the same key, another request).
            sent["Idempotency-Key"] = uuid.uuid4().hex
        case.call_and_validate(headers=sent, checks=checks)  # type: ignore[arg-type]

    return check  # type: ignore[no-any-return]


def test_every_check_passes_for_every_operation_with_the_tokens_of_several_roles(api: Api) -> None:
    schema = schemathesis.openapi.from_url(f"{api.engine.web}/api/v1/openapi.json")
    tokens = {**api.tokens, "admin": api.engine.token_of("admin:root")}
    checks = every_check()
    names = {getattr(c, "__name__", "") for c in checks}
    assert {"negative_data_rejection", "positive_data_acceptance", "status_code_conformance"} <= names, names
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 27
    failures: dict[str, str] = {}
    for operation in operations:
        for mode, examples in EXAMPLES.items():
            for who in ROLES:
                headers = {"Authorization": f"Bearer {tokens[who]}"}

                check = run(operation.as_strategy(generation_mode=mode), examples, headers, mode, checks)
                try:
                    check()
                except (Exception, BaseExceptionGroup) as err:  # noqa: BLE001 - collected: one run names every failure
                    text = str(err).strip()
                    if "ST202" in text and text.count("- ST") == 1 and any(r in text for r in RULES_BEYOND_A_SCHEMA):
                        continue
                    failures[f"{operation.label} [{mode.value}, {who}]"] = text[:600] or type(err).__name__
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
