"""Money as people write it (`180000`, `£180,000.50`) and as the store keeps it (integer pence)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.errors import InvalidInputError

# ASCII only: `\d` alone would read Arabic-Indic and other digits as numbers.
_POUNDS = re.compile(r"^£?\s*(\d{1,3}(,\d{3})+|\d+)(\.\d{1,2})?$", re.ASCII)


def parse_pounds(text: str) -> int:
    """Pounds, with an optional £, thousands commas and up to two decimal places, as pence."""
    cleaned = text.strip()
    if not _POUNDS.match(cleaned):
        msg = f"value {text!r} is not an amount in pounds (e.g. 180000, £180,000 or 180000.50)"
        raise InvalidInputError(msg)
    try:
        pounds = Decimal(cleaned.lstrip("£").strip().replace(",", ""))
    except InvalidOperation:
        msg = f"value {text!r} is not an amount in pounds"
        raise InvalidInputError(msg) from None
    return int(pounds * 100)


def format_pence(pence: int) -> str:
    sign = "-" if pence < 0 else ""
    pounds, rest = divmod(abs(pence), 100)
    return f"{sign}£{pounds:,}.{rest:02d}"


def parse_signed_pounds(text: str) -> int:
    """Like `parse_pounds`, with an optional leading minus for a reduction (`-5000`, `-£5,000`)."""
    cleaned = text.strip()
    if cleaned.startswith("-"):
        return -parse_pounds(cleaned[1:])
    return parse_pounds(cleaned.lstrip("+"))


# A case's details that map parties to amounts in pence (a funding change's changes, a fund's
# contributions, a mediation's cost shares): shown to people in pounds, kept in pence for machines.
MONEY_MAPS = ("changes", "contributions", "cost_shares")


def pounds_text(pence_by_party: dict[str, int]) -> str:
    """`PCC -£20,000.00, CCC £5,000.00`."""
    return ", ".join(f"{p} {format_pence(v)}" for p, v in pence_by_party.items())


def pounds_beside(details: dict[str, Any]) -> dict[str, Any]:
    """Every amount of a case's details in pounds, for people reading the API beside the pence fields:
    `value_pence` → `value`, a map of parties' amounts → the same map in pounds."""
    found: dict[str, Any] = {}
    for key, value in details.items():
        if key.endswith("_pence") and isinstance(value, int) and not isinstance(value, bool):
            found[key.removesuffix("_pence")] = format_pence(value)
        elif key in MONEY_MAPS and isinstance(value, dict):
            found[key] = {p: format_pence(int(v)) for p, v in value.items()}
    return found
