"""The OpenAPI document says what the domain accepts, so that a client (or schemathesis) can tell a
well-formed request from the schema alone.

The request models (concordat/fields.py, with domain/values.py's types) carry the text limits and
patterns. What depends on the running policy is filled in here, from the policy itself, never copied:
the parties, the kinds of proposal, the variation reasons, the stage and outcome names, the roles a
person may name in `X-Concordat-Role`, and the bounds of every amount (`[limits] max_value_pounds`).
"""

from __future__ import annotations

import re
from typing import Any

from domain.policy import Policy
from domain.staged import ESCALATION_OUTCOMES
from domain.values import PARTY_PATTERN, pounds_pattern

PARTIES_TEXT_PATTERN = r"^[A-Z0-9_, ]*$"  # fields.Parties' string form, before the policy is known


def vocabulary(policy: Policy) -> dict[str, list[str]]:
    """Each word list the requests take, from the policy."""
    stages: list[str] = []
    outcomes: list[str] = []
    for route in policy.routes.values():
        stages += list(route.stages)
        outcomes += [o for s in route.stages.values() for o in s.outcomes]
        if route.escalation is not None:
            stages.append(route.escalation.forum)
    stages += [policy.dispute.escalation_forum, *policy.dispute.stages]
    outcomes += list(ESCALATION_OUTCOMES)
    roles = [*policy.roles.plain, "admin"]
    for prefix, kind in policy.roles.prefixed.items():
        roles += [f"{prefix}:{name}" for name in (policy.forums if kind == "forum" else policy.partnership.parties)]
    return {
        "parties": list(policy.partnership.parties),
        "kinds": list(policy.proposal.kinds),
        "reasons": list(policy.variation.reasons),
        "stages": list(dict.fromkeys(stages)),
        "outcomes": list(dict.fromkeys(outcomes)),
        "roles": list(dict.fromkeys(roles)),
        "case_kinds": ["proposal", "dispute", "termination", "variation", "funding", "foi", *policy.proposal.kinds],
    }


# Which request field takes which word list: (schema, property) -> list.
FIELD_WORDS = {
    ("ProposalIn", "kind"): "kinds",
    ("VariationIn", "reason"): "reasons",
    ("DecisionIn", "stage"): "stages",
    ("DecisionIn", "outcome"): "outcomes",
    ("DecisionIn", "stage_outcome"): "outcomes",
}
# Which query parameter or header takes which word list.
# (The list filters `kind`, `stage` and `party` take any well-formed name, and find nothing for an
# unknown one: their patterns are in concordat/web/api.py.)
PARAMETER_WORDS = {"X-Concordat-Role": "roles"}


def complete(schema: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """`schema` (FastAPI's document) with the policy's words and bounds filled in."""
    words = vocabulary(policy)
    most = policy.limits.max_value_pounds
    one = "(" + "|".join(re.escape(p) for p in words["parties"]) + ")"
    parties_text = f"^ *{one}( *, *{one})* *$"

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("pattern") == PARTY_PATTERN:
                del node["pattern"]
                node["enum"] = words["parties"]
            elif node.get("pattern") == PARTIES_TEXT_PATTERN:
                node["pattern"] = parties_text
            keyed = node.get("patternProperties", {})
            if list(keyed) == [PARTY_PATTERN]:
                node["additionalProperties"] = node.pop("patternProperties")[PARTY_PATTERN]
                node["propertyNames"] = {"enum": words["parties"]}
            amount = node.pop("x-concordat-amount", None)
            if amount is not None:
                for branch in node.get("anyOf", []):
                    if branch.get("type") == "integer":
                        branch["maximum"] = most
                        branch["minimum"] = -most if amount == "signed" else 0
                    elif branch.get("type") == "string":
                        branch["pattern"] = pounds_pattern(most, signed=amount == "signed")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    components = schema.get("components", {}).get("schemas", {})
    for (model, prop), name in FIELD_WORDS.items():
        target = components.get(model, {}).get("properties", {}).get(prop)
        if target is None:
            continue
        branches = target.get("anyOf") or [target]
        for branch in branches:
            if branch.get("type") == "string":
                branch.pop("pattern", None)
                branch["enum"] = words[name]
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                name = PARAMETER_WORDS.get(parameter.get("name", ""))
                if name is None:
                    continue
                inner = parameter.get("schema", {})
                for branch in inner.get("anyOf") or [inner]:
                    if branch.get("type") == "string":
                        branch.pop("pattern", None)
                        branch.pop("maxLength", None)
                        branch["enum"] = words[name]
    walk(schema)
    return schema
