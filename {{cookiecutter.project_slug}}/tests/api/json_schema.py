"""A checker of the part of JSON Schema the app's OpenAPI document uses (for contract.py).

Not a validator package: that would be one more locked development dependency for a
document that uses a dozen keywords. The checker knows those, and fails on any other
rather than pass over it, since a keyword skipped would let it call valid what the
document refuses. It reads schemas as JSON Schema 2020-12 does, but for two points
where it reads them as the service does (api/fields.py):

- an integer is a JSON number without a fraction or an exponent: JSON Schema also
  counts 12.0, which the service refuses, and which no generator sends for one;
- `format` asserts, it does not just annotate: a date-time must be RFC 3339 and a
  uuid hyphenated, as the service checks.

Patterns are matched as ECMA-262 matches them, JSON Schema's dialect, with the u
flag (code points, not UTF-16 units): Python's re, once the few constructs it reads
otherwise ($ . \\d \\s \\w) are translated. Python validators skip that step, so the
app's patterns avoid those constructs, or use them where the readings agree.
"""

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

Schema = Mapping[str, Any]
# Keywords that describe and never refuse.
ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly"}
)
RFC_3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-]([0-9]{2}):([0-9]{2}))"
)
HYPHENATED_UUID = re.compile(r"[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")
JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
# ECMA-262's \s, and its \d and \w, which Python widens to Unicode, as class contents.
ECMA_CLASSES = {
    "s": r"\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff",
    "d": "0-9",
    "w": "A-Za-z0-9_",
}
# ECMA-262's . leaves out every line terminator, Python's only \n.
ECMA_DOT = r"[^\n\r\u2028\u2029]"
# Escapes with another meaning, or none, in Python: \b, \p{...}, \cX, \k<name>...
UNTRANSLATED = frozenset("bBpPcAZzk")


@functools.cache
def python_pattern(pattern: str) -> re.Pattern[str]:
    """`pattern` for Python's re.search, matching what ECMA-262 (u flag, no other) matches."""
    out, in_class, index = [], False, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            escaped = pattern[index + 1]
            index += 2
            if escaped in UNTRANSLATED or (escaped == "u" and pattern.startswith("{", index)):
                raise AssertionError(f"json_schema.py cannot translate {pattern!r}: teach it")
            if escaped.lower() in ECMA_CLASSES:
                contents, negated = ECMA_CLASSES[escaped.lower()], escaped.isupper()
                assert not (in_class and negated), f"cannot translate \\{escaped} in a class"
                out.append(contents if in_class else f"[{'^' if negated else ''}{contents}]")
            else:
                out.append(char + escaped)
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            # [] and [^] match nothing and anything in ECMA-262, and open a class in Python.
            if pattern.startswith(("]", "^]"), index + 1):
                raise AssertionError(f"json_schema.py cannot translate {pattern!r}: teach it")
            in_class = True
        elif char == "$":
            # The end of the text, without Python's leeway for a final newline.
            char = r"\Z"
        elif char == ".":
            char = ECMA_DOT
        elif pattern.startswith("(?<", index) and pattern[index + 3] not in "=!":
            raise AssertionError(f"json_schema.py cannot translate named groups: {pattern!r}")
        out.append(char)
        index += 1
    return re.compile("".join(out))


def integer_range(schema: Schema) -> tuple[int | None, int | None]:
    """The least and greatest integers `schema` allows (None: no bound), exactly."""
    lows = [math.ceil(schema["minimum"])] if "minimum" in schema else []
    lows += [math.floor(schema["exclusiveMinimum"]) + 1] if "exclusiveMinimum" in schema else []
    highs = [math.floor(schema["maximum"])] if "maximum" in schema else []
    highs += [math.ceil(schema["exclusiveMaximum"]) - 1] if "exclusiveMaximum" in schema else []
    return max(lows, default=None), min(highs, default=None)


def resolve(schema: Schema, document: Schema) -> Schema:
    """The schema a {"$ref": "#/..."} points to."""
    pointer = schema["$ref"]
    assert pointer.startswith("#/"), f"json_schema.py follows local references only: {pointer}"
    node: Any = document
    for part in pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    resolved: Schema = node
    return resolved


def is_a(type_name: str, value: object) -> bool:
    if isinstance(value, bool):
        # An int to Python, never a number to JSON.
        return type_name == "boolean"
    if type_name == "integer":
        return isinstance(value, int)
    if type_name == "number":
        # Python's json reads NaN and Infinity, which are no JSON numbers.
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    kinds = {"null": type(None), "boolean": bool, "string": str, "array": list, "object": dict}
    return isinstance(value, kinds[type_name])


def same(a: object, b: object) -> bool:
    """JSON equality: 1 and 1.0 are equal, true and 1 are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if is_a("number", a) and is_a("number", b):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    return type(a) is type(b) and a == b


def is_date_time(text: str) -> bool:
    match = RFC_3339.fullmatch(text)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    offset = [int(part) for part in match.groups()[8:] if part is not None]
    return (
        1 <= month <= 12
        and 1 <= day <= days[month - 1]
        and hour <= 23
        and minute <= 59
        and second <= 60
        and (not offset or (offset[0] <= 23 and offset[1] <= 59))
    )


FORMATS: dict[str, Callable[[str], bool]] = {
    "date-time": is_date_time,
    "uuid": lambda text: HYPHENATED_UUID.fullmatch(text) is not None,
}


def passes_format(name: str, value: object) -> bool:
    assert name in FORMATS, f"json_schema.py does not check format {name!r}: teach it"
    return not isinstance(value, str) or FORMATS[name](value)


def types(names: str | list[str]) -> list[str]:
    return [names] if isinstance(names, str) else names


def numeric(value: object) -> bool:
    return is_a("number", value)


# keyword -> whether a value passes it, given the keyword's value. As in JSON Schema,
# a keyword about one type (minimum, maxLength, pattern) lets the other types through.
VALUE_KEYWORDS: dict[str, Callable[[Any, Any], bool]] = {
    "type": lambda names, value: any(is_a(name, value) for name in types(names)),
    "enum": lambda members, value: any(same(value, member) for member in members),
    "const": lambda constant, value: same(value, constant),
    # Python compares an int with a float exactly: 2**63 - 1 < 9.223372036854776e18.
    "minimum": lambda limit, value: not numeric(value) or value >= limit,
    "maximum": lambda limit, value: not numeric(value) or value <= limit,
    "exclusiveMinimum": lambda limit, value: not numeric(value) or value > limit,
    "exclusiveMaximum": lambda limit, value: not numeric(value) or value < limit,
    # Characters are code points, for JSON Schema as for Python and PostgreSQL.
    "minLength": lambda limit, value: not isinstance(value, str) or len(value) >= limit,
    "maxLength": lambda limit, value: not isinstance(value, str) or len(value) <= limit,
    "pattern": lambda pattern, value: (
        not isinstance(value, str) or python_pattern(pattern).search(value) is not None
    ),
    "format": passes_format,
    "minItems": lambda limit, value: not isinstance(value, list) or len(value) >= limit,
    "maxItems": lambda limit, value: not isinstance(value, list) or len(value) <= limit,
}


def problems(schema: Schema, value: object, document: Schema, at: str = "") -> list[str]:
    """What `schema` refuses in `value` (nothing if it is valid), each naming where."""
    found: list[str] = []
    for keyword, argument in schema.items():
        if keyword in ANNOTATIONS:
            continue
        if keyword in VALUE_KEYWORDS:
            if not VALUE_KEYWORDS[keyword](argument, value):
                found.append(f"{at or 'the value'}: {value!r} fails {keyword} {argument!r}")
        elif keyword == "$ref":
            found += problems(resolve(schema, document), value, document, at)
        elif keyword in ("anyOf", "oneOf"):
            each = [problems(choice, value, document, at) for choice in argument]
            matching = sum(not choice_found for choice_found in each)
            if matching == 0 or (keyword == "oneOf" and matching > 1):
                found.append(f"{at or 'the value'}: matches {matching} {keyword} choices: {each}")
        elif keyword == "allOf":
            found += [one for part in argument for one in problems(part, value, document, at)]
        elif keyword == "items":
            for index, item in enumerate(value if isinstance(value, list) else []):
                found += problems(argument, item, document, f"{at}[{index}]")
        elif keyword in ("properties", "required", "additionalProperties"):
            if isinstance(value, dict):
                found += object_problems(keyword, argument, value, schema, document, at)
        else:
            raise AssertionError(f"json_schema.py does not check {keyword!r}: teach it")
    return found


def object_problems(
    keyword: str, argument: Any, value: dict[str, Any], schema: Schema, document: Schema, at: str
) -> list[str]:
    if keyword == "properties":
        return [
            one
            for name, item in value.items()
            if name in argument
            for one in problems(argument[name], item, document, f"{at}.{name}")
        ]
    if keyword == "required":
        return [f"{at}.{name}: missing" for name in argument if name not in value]
    others = [name for name in value if name not in schema.get("properties", {})]
    if argument is True:
        return []
    if argument is False:
        return [f"{at}.{name}: not allowed" for name in others]
    return [one for name in others for one in problems(argument, value[name], document, at)]


def spelled(text: str) -> list[object]:
    """The values a path or query text can stand for: itself, or the number or boolean it spells.

    OpenAPI writes a scalar parameter as its plain text, so 5 and "5" look the same;
    a text is valid if one of the values it can stand for is.
    """
    values: list[object] = [text]
    if JSON_NUMBER.fullmatch(text):
        values.append(json.loads(text))
    if text in ("true", "false"):
        values.append(text == "true")
    return values


def text_problems(schema: Schema, text: str, document: Schema, at: str) -> list[str]:
    """What `schema` refuses in a parameter's text (nothing if one of its readings is valid)."""
    readings = [problems(schema, value, document, at) for value in spelled(text)]
    return [] if any(not found for found in readings) else readings[0]
