"""Value types for paths, queries and bodies: strict, and bounded like their columns.

Clients and API fuzzers build requests from the OpenAPI document, so the schema of
each value says exactly what the service takes: a request the schema allows is never
refused, and one it refuses is never taken. A value the column cannot hold is invalid
input (422) before any query. Hence:

- no coercion: a boolean is true or false (pydantic's StrictBool, not 0, 1 or "true"),
  an integer in a body is a JSON integer (not "1", 1.0 or true), and a path or query
  integer is written in digits (not "1.0", " 1" or "+1");
- a rule about text is a `pattern` in the schema, and the documented pattern is the
  one checked: compiled with Python's re, which reads these patterns as ECMA-262 (the
  dialect of JSON Schema, matching code points, with the u flag) does. So they never
  use \\s, \\d or \\w, which mean other characters to each, and end with (?!\\n)$
  where the last character cannot be a newline: in Python, $ also matches before one.
"""

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from {{ cookiecutter.package_name }}.db.base import Key

# The range of a PostgreSQL bigint (signed 64 bits).
BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**63 - 1
# The upper bound to give as lt=: FastAPI writes the bounds of body schemas as floats,
# and BIGINT_MAX as a float is 2**63, which a bigint cannot hold; 2**63 is exact.
BIGINT_END = 2**63

# PostgreSQL text holds every Unicode character but NUL. JSON can also carry a lone
# surrogate (as an escape such as \ud800), which is no character and cannot be stored;
# a pair of escapes that makes one character (\ud83d\ude80) arrives as that character.
TEXT_PATTERN = r"^[^\u0000\uD800-\uDFFF]*$"
# Storable text: the type of every string a request carries to the database.
DatabaseText = Annotated[str, Field(pattern=re.compile(TEXT_PATTERN))]

# RFC 3339, less what a Python datetime cannot hold: year 0000 and leap seconds.
DATE_TIME_PATTERN = (
    r"^(?!0000)[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])(?!\n)$"
)
_DATE_TIME = re.compile(DATE_TIME_PATTERN)


def _date_time_text(value: object) -> object:
    # Pydantic would also read numbers, digits ("1700000000"), dates and times without
    # an offset, which the column would store as UTC, whatever the client meant.
    if not isinstance(value, str) or _DATE_TIME.search(value) is None:
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2024-05-01T12:00:00Z")
    return value


def _within_python_years(value: datetime) -> datetime:
    # The driver moves it to UTC: within a day of years 1 and 9999, past what Python holds.
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be between years 1 and 9999 in UTC") from None
    return value


# A point in time in a body: an RFC 3339 string with its offset. The few a pattern
# allows and Python cannot hold in UTC, the description states.
Timestamp = Annotated[
    datetime,
    BeforeValidator(_date_time_text),
    AfterValidator(_within_python_years),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": DATE_TIME_PATTERN,
            "description": "RFC 3339, with an offset; in UTC, between years 1 and 9999.",
        }
    ),
]
{% if cookiecutter.id_type == "uuid" %}
# The hyphenated form of RFC 9562, in either case; Python also reads 32 bare digits,
# braces and a urn:uuid: prefix, which the schema's format does not allow.
UUID_PATTERN = (
    r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?!\n)$"
)
_UUID = re.compile(UUID_PATTERN)


def _uuid_text(value: object) -> object:
    if isinstance(value, str) and _UUID.search(value) is None:
        raise ValueError("must be a UUID, as 8-4-4-4-12 hexadecimal digits")
    return value


# A primary key in a path, a query or a body: the schema gives the pattern besides the
# format, for the validators that take formats as mere annotations.
ApiKey = Annotated[
    Key,
    BeforeValidator(_uuid_text),
    WithJsonSchema({"type": "string", "format": "uuid", "pattern": UUID_PATTERN}),
]
BodyKey = ApiKey
{%- endif %}

_INTEGER_TEXT = re.compile(r"-?(0|[1-9][0-9]*)")


def _integer_from_text(value: object) -> object:
    if isinstance(value, str):
        if _INTEGER_TEXT.fullmatch(value) is None:
            raise ValueError("must be an integer, in decimal digits")
        return int(value)
    return value


# Reads a path or query value, which is text, as an integer, refusing the other texts
# Python reads as one (" 1", "+1", "1.0", "1_000", "01"). Put it last in Annotated,
# after Field(strict=True) and the bounds: bounds given after it appear in the schema
# under their Python names (ge, le), which no OpenAPI tool reads.
IntegerText = BeforeValidator(_integer_from_text)
{%- if cookiecutter.id_type == "bigint" %}

# A primary key in a path or a query.
ApiKey = Annotated[Key, Field(strict=True, ge=BIGINT_MIN, lt=BIGINT_END), IntegerText]
# A primary key in a body, a JSON integer.
BodyKey = Annotated[Key, Field(strict=True, ge=BIGINT_MIN, lt=BIGINT_END)]
{%- endif %}
