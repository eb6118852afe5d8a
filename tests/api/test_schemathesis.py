"""Property-based tests of the served OpenAPI document (schemathesis): whatever a client sends, the
API answers without a server error, and every answer matches the schema the document declares.

(schemathesis' pytest plugin cannot read a fixture's schema under this pytest, so the test walks the
operations itself, with a bounded number of generated requests each.)"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.api.conftest import Api

EXAMPLES = 12


def test_no_server_error_and_every_answer_matches_the_schema(api: Api) -> None:
    schema = schemathesis.openapi.from_url(f"{api.engine.web}/api/v1/openapi.json")
    # A person who may start proposals and read everything, so requests reach the rules, not just 401.
    headers = {"Authorization": f"Bearer {api.tokens['multi']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 27
    failures: dict[str, str] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error, response_schema_conformance])

        try:
            check()
        except Exception as err:  # noqa: BLE001 - collected, so one run names every failing operation
            failures[operation.label] = str(err).splitlines()[0] if str(err) else type(err).__name__
    assert not failures, "\n".join(f"{k}: {v}" for k, v in failures.items())
