"""What the partnership's records accept as text, ids and money, declared once.

Every door (CLI, API, web pages) checks a command's fields with these types before anything is
written, and the domain's command models use the same types, so a command that slipped past a door
is refused again (defence in depth). The rules exist because one bad value once stopped the whole
engine: a NUL byte that PostgreSQL cannot store stopped the projections, a 10^23-pound change
overflowed a view's integer column, a 10 MB note exceeded Temporal's payload limit.

Text: no NUL, no C0/C1 control characters (a multi-line field keeps tab, newline and carriage return),
no bidirectional overrides or isolates (they make text read differently from what it is), no lone
surrogates (not storable as UTF-8); at least one visible character (a title of only spaces or
zero-width characters says nothing); a length limit per field that keeps every payload far below
Temporal's. Text is NFC-normalised, so the same words are stored the same way.

Each type publishes its rule in its JSON schema (`pattern`, `maxLength`), and the check here *is*
that pattern (matched against the whole value, as sent), so the API's OpenAPI document says exactly
what the domain accepts.

Money: integer pence within 64 bits and below the policy's maximum (`[limits] max_value_pounds`);
a JSON boolean is not an amount (pydantic would read `true` as 1), nor are non-ASCII digits
(`١٢٣`), NaN or infinity.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, JsonValue, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from domain.errors import InvalidInputError

# Characters never accepted in text. (Written as regex class ranges, so the published pattern and
# the check are one string.)
_C0 = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f"  # C0 controls but tab, newline and carriage return
_LINE_BREAKS = "\\t\\n\\r"
_C1 = "\\x7f-\\x9f"  # DEL and the C1 controls (ESC's 8-bit cousins: CSI is \x9b)
_BIDI = "\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069"  # marks, embeddings, overrides, isolates
_SEPARATORS = "\\u2028\\u2029"  # line and paragraph separators: line breaks a reader cannot see
# A lone surrogate cannot be stored as UTF-8. (Refused apart from the published pattern: JSON Schema's
# regular expressions run on Unicode scalar values, which have none, and some engines reject the range.)
_SURROGATES = "\\ud800-\\udfff"
# Characters that show nothing: allowed inside text (a zero-width joiner builds an emoji), but not
# as its only content.
_INVISIBLE = (
    "\\u00ad\\u034f\\u115f\\u1160\\u17b4\\u17b5\\u180b-\\u180f\\u200b-\\u200d"
    "\\u2060-\\u2064\\u206a-\\u206f\\u2800\\u3164\\ufe00-\\ufe0f\\ufeff\\uffa0"
)

TITLE_MAX = 300  # titles and subjects: a line
NAME_MAX = 200  # a provider's name
REFERENCE_MAX = 100  # letter, minutes and contract references
TEXT_MAX = 10_000  # notes, descriptions, findings
# Person ids, as the directory has always taken them (domain/identity.py's USER_ID).
PERSON_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
PARTY_PATTERN = r"^[A-Z][A-Z0-9_]{0,19}$"
FUND_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,79}$"
CASE_REFERENCE_PATTERN = r"^(PRO|VAR|FUN|FND|DSP|TRM|AGR|FOI|REV|RPT|RSK)-[0-9]{4}-[0-9]{4}$"
# A stage, forum or outcome name as the policy spells them.
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
MAX_PENCE = 2**63 - 1  # what a 64-bit integer column holds
DEFAULT_MAX_VALUE_POUNDS = 1_000_000_000


def text_pattern(*, multiline: bool, optional: bool = False) -> str:
    """The whole rule for a text field as one regular expression (the OpenAPI `pattern`)."""
    refused = _C0 + _C1 + _BIDI + _SEPARATORS + ("" if multiline else _LINE_BREAKS)
    allowed = f"[^{refused}]"
    content = f"[^\\s{refused}{_INVISIBLE}]"
    body = f"{allowed}*{content}{allowed}*"
    return f"^({body})?$" if optional else f"^{body}$"


_SURROGATE = re.compile(f"[{_SURROGATES}]")
_REFUSED_CHAR = re.compile(f"[{_C0 + _C1 + _BIDI + _SEPARATORS + _SURROGATES + _LINE_BREAKS}]")


def _describe(value: str, multiline: bool) -> str:
    """Why a value that fails the pattern fails it, in words a person can act on."""
    for char in value:
        if multiline and char in "\t\n\r":
            continue
        if _REFUSED_CHAR.match(char):
            if char in "\t\n\r":
                return "must be one line (no tab or line break)"
            name = unicodedata.name(char, "") if not 0xD800 <= ord(char) <= 0xDFFF else "a lone surrogate"
            what = (
                "a bidirectional-text control"
                if re.match(f"[{_BIDI}]", char)
                else "a control character"
                if name != "a lone surrogate"
                else "a lone surrogate"
            )
            return f"contains {what} (U+{ord(char):04X}); only printable text is accepted"
    return "has no visible text; give some words"


def _text_check(max_length: int, *, multiline: bool, optional: bool) -> Any:
    compiled = re.compile(text_pattern(multiline=multiline, optional=optional))

    def check(value: Any) -> Any:
        if value is None or not isinstance(value, str):
            return value  # the field's type says what else it takes
        if len(value) > max_length:
            raise PydanticCustomError(
                "text_too_long",
                "is {length} characters long; at most {max} are accepted",
                {"length": len(value), "max": max_length},
            )
        if not compiled.fullmatch(value) or _SURROGATE.search(value):
            raise PydanticCustomError("text_refused", _describe(value, multiline))
        text = unicodedata.normalize("NFC", value)
        return text.replace("\r\n", "\n").replace("\r", "\n") if multiline else text

    return BeforeValidator(check)


def Text(max_length: int, *, multiline: bool = False, optional: bool = False) -> Any:  # noqa: N802 - a type
    """A text field of at most `max_length` characters (`optional`: or empty)."""
    return Annotated[
        str,
        _text_check(max_length, multiline=multiline, optional=optional),
        Field(
            json_schema_extra={"maxLength": max_length, "pattern": text_pattern(multiline=multiline, optional=optional)}
        ),
    ]


def _pattern_check(pattern: str, what: str) -> Any:
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str) and not compiled.fullmatch(value):
            shown = value if len(value) <= 40 else value[:40] + "…"
            raise PydanticCustomError("id_refused", "{value} is not {what}", {"value": ascii(shown), "what": what})
        return value

    return BeforeValidator(check)


def Pattern(pattern: str, what: str) -> Any:  # noqa: N802 - a type
    return Annotated[str, _pattern_check(pattern, what), Field(json_schema_extra={"pattern": pattern})]


Title = Text(TITLE_MAX)
OptionalTitle = Text(TITLE_MAX, optional=True)
ProviderName = Text(NAME_MAX)
Reference = Text(REFERENCE_MAX)
OptionalReference = Text(REFERENCE_MAX, optional=True)
Note = Text(TEXT_MAX, multiline=True, optional=True)
LongText = Text(TEXT_MAX, multiline=True)
PersonId = Pattern(PERSON_ID_PATTERN, "a person id (lower-case letters, digits, '.', '_' or '-', at most 63)")
PartyCode = Pattern(PARTY_PATTERN, "a party code (e.g. PCC)")
# A mediator by their person id; `mediator:mo` names the same person (an earlier field description
# suggested that form, and the domain reads it as `mo`).
MediatorId = Pattern(
    "^(mediator:)?" + PERSON_ID_PATTERN.removeprefix("^"),
    "a person id (e.g. mo), or mediator:ID",
)
FundName = Pattern(FUND_NAME_PATTERN, "a fund name (letters, digits, spaces, '_', '.' or '-', at most 80)")
CaseReference = Pattern(CASE_REFERENCE_PATTERN, "a case reference (e.g. PRO-2026-0001)")
Name = Pattern(NAME_PATTERN, "a name as the policy spells it (e.g. board)")


# --- money -------------------------------------------------------------------------------------------

# ASCII digits and spaces only: `\\d` and `\\s` would take Arabic-Indic digits and other spaces.
_POUNDS_TEXT = "£? *([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\\.[0-9]{1,2})?"
POUNDS_PATTERN = f"^ *{_POUNDS_TEXT} *$"
SIGNED_POUNDS_PATTERN = f"^ *-? *{_POUNDS_TEXT} *$"
_AMOUNT = {False: re.compile(POUNDS_PATTERN), True: re.compile(SIGNED_POUNDS_PATTERN)}
POUNDS_TEXT_MAX = 40


def amount_as_text(value: Any, *, field: str, signed: bool = True) -> str:
    """An amount as a person or a JSON client gave it, as text for `concordat.money` to read: a
    number (not a boolean, not NaN or infinite) or a string of ASCII digits."""
    if isinstance(value, bool):
        raise InvalidInputError(f"{field}: true/false is not an amount; give pounds, e.g. 180000")
    if isinstance(value, float):
        # A JSON number is whole pounds: binary fractions are no way to carry pence.
        if not math.isfinite(value) or not value.is_integer():
            raise InvalidInputError(f'{field}: {value} is not whole pounds; give pence as a string, e.g. "180000.50"')
        return f"{value:.0f}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if len(value) > POUNDS_TEXT_MAX or not _AMOUNT[signed].fullmatch(value):
            example = "-20000 or -£20,000.50" if signed else "180000 or £180,000.50"
            raise InvalidInputError(f"{field}: not an amount in pounds; give ASCII digits, e.g. {example}")
        return value
    raise InvalidInputError(f"{field}: give an amount in pounds, e.g. 180000")


def _money_check(signed: bool) -> Any:
    def check(value: Any) -> Any:
        try:
            if value is not None:
                amount_as_text(value, field="amount", signed=signed)
            return value  # as given: the door reads it against the policy (`concordat.commands`)
        except InvalidInputError as err:
            raise PydanticCustomError("amount_refused", str(err).removeprefix("amount: ")) from None

    return BeforeValidator(check)


def Money(*, signed: bool) -> Any:  # noqa: N802 - a type
    """Pounds as the CLI takes them, as a number or a string. The schema's numeric bounds come from
    the policy (`x-concordat-amount` marks where the OpenAPI document puts them)."""
    number: dict[str, JsonValue] = {"type": "integer"}
    text: dict[str, JsonValue] = {
        "type": "string",
        "maxLength": POUNDS_TEXT_MAX,
        "pattern": SIGNED_POUNDS_PATTERN if signed else POUNDS_PATTERN,
    }
    description = (
        "Pounds, negative for a reduction, e.g. -20000." if signed else 'Pounds, e.g. 180000 or "£180,000.50".'
    )
    return Annotated[
        str | int | float,
        _money_check(signed),
        Field(
            description=description,
            json_schema_extra={"anyOf": [text, number], "x-concordat-amount": "signed" if signed else "unsigned"},
        ),
    ]


Pounds = Money(signed=False)
SignedPounds = Money(signed=True)


def pounds_pattern(max_value_pounds: int, *, signed: bool) -> str:
    """The amounts in pounds, as text, that are within `max_value_pounds` by their digits alone: at
    most as many digits before the point as every such amount (pence included) stays within it."""
    digits = max(len(str(max_value_pounds)) - 1, 1)
    grouped = "|".join(
        f"[0-9]{{1,{min(3, digits - 3 * groups)}}}(,[0-9]{{3}}){{{groups}}}"
        for groups in range(1, (digits - 1) // 3 + 1)
    )
    whole = f"({grouped}|[0-9]{{1,{digits}}})" if grouped else f"[0-9]{{1,{digits}}}"
    return f"^ *{'-? *' if signed else ''}£? *{whole}(\\.[0-9]{{1,2}})? *$"


def check_pounds_text(text: str, max_value_pounds: int, *, field: str, signed: bool) -> str:
    """An amount given as text, within the policy's maximum by its digits (the OpenAPI pattern)."""
    if not re.fullmatch(pounds_pattern(max_value_pounds, signed=signed), text):
        raise InvalidInputError(
            f"{field}: not an amount in pounds up to the policy's maximum of £{max_value_pounds:,} "
            f'(e.g. {"-20000" if signed else "180000"} or "£180,000.50")'
        )
    return text


def check_pence(pence: int, max_value_pounds: int, *, field: str) -> int:
    """The domain's bound on any amount: within 64 bits and the policy's maximum, either way."""
    limit = min(max_value_pounds * 100, MAX_PENCE)
    if not isinstance(pence, int) or isinstance(pence, bool):
        raise InvalidInputError(f"{field}: not an amount in pence")
    if abs(pence) > limit:
        raise InvalidInputError(f"{field}: more than the policy's maximum of £{max_value_pounds:,}")
    return pence


def checked(kind: Any, value: Any, *, field: str) -> Any:
    """`value` checked as `kind` (one of the types above) outside a model: the first problem as an
    `InvalidInputError` naming `field`."""
    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as err:
        raise InvalidInputError(f"{field}: {err.errors()[0]['msg']}") from None


def field_path(loc: tuple[Any, ...]) -> str:
    """Where in a command a problem is (`changes.PCC`), safe to print: a name that is not a plain
    identifier (a dict key as sent) is shown escaped, and dict-key markers are dropped."""
    parts = []
    for p in loc:
        text = str(p)
        if text == "[key]":
            continue
        parts.append(text if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text) else ascii(text[:40]))
    return ".".join(parts)
