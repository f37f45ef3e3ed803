"""Requests to try on an operation, made from its OpenAPI schemas, as an API fuzzer would.

From a valid request (a value for every parameter and body property, made from its
schema), each case changes one thing: a parameter or a property of the body gets a
value near the valid one, or goes missing, or the body is replaced. The values are
those a lax service takes and a schema refuses, and those a schema allows and a
careless service refuses: 0 and 1 for a boolean; "1", 1.0 and one past each bound
for an integer; text with NUL, lone surrogates, a final newline, characters outside
the BMP, at and past its length limits; date-times and UUIDs in the forms Python
reads and RFC 3339 or RFC 9562 do not. Which of them are valid, json_schema.py says.
"""

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from tests.api.json_schema import Schema, integer_range, problems, resolve

# The body of a request that sends none.
NO_BODY = object()
# Put before a valid text: characters PostgreSQL cannot store, and some it can.
CHARACTERS = [
    "\x00",
    "\ud800",
    "\udfff",
    "\t\n\r",
    "\x7f",
    "\x85",
    "\u00a0",
    "\u202e",
    "\u2028",
    "\ufeff",
    "\uffff",
    "\U0010ffff",
    "🚀",
    "名前",
    "é",
]
# Put after a valid text: Python's $ matches before a final newline, ECMA-262's does not.
ENDINGS = ["\n", "\x00", "\udc00"]
# Not those within a day of years 1 and 9999 that no Python datetime holds in UTC: the
# service refuses them, which the schema's description says, as no keyword can.
DATE_TIMES = [
    "2024-05-01T12:00:00Z",
    "2024-05-01t12:00:00z",
    "2024-05-01T12:00:00.123456789+23:59",
    "2024-05-01T12:00:00-00:00",
    "2024-02-29T00:00:00+01:00",
    "0001-01-02T00:00:00Z",
    "9999-12-30T23:59:59Z",
    "2023-02-29T00:00:00Z",
    "1990-12-31T23:59:60Z",
    "0000-01-01T00:00:00Z",
    "2024-05-01T24:00:00Z",
    "2024-05-01",
    "2024-05-01T12:00:00",
    "2024-05-01 12:00:00Z",
    "2024-05-01T12:00Z",
    "2024-05-01T12:00:00,5Z",
    "2024-05-01T12:00:00+0100",
    "1700000000",
]
# Wrong in any body: null, booleans for numbers, numbers for booleans, text for both...
ODD_VALUES: tuple[object, ...] = (None, True, False, 0, 1, -1, 1.5, 12.0, "", "1", "true", [], {})
# Texts Python or pydantic read as integers.
INTEGER_TEXTS = ["-0", "01", "1.0", "1e2", " 1", "1 ", "+1", "1_0", "0x1", "\u0661", "true", "null"]


@dataclass(frozen=True)
class Case:
    """One request: what it changes from the valid one, its parameters, its body."""

    change: str
    path: Mapping[str, str]
    query: Mapping[str, str]
    body: object = NO_BODY

    def url(self, template: str) -> str:
        return template.format(**{name: quote(text, safe="") for name, text in self.path.items()})

    def content(self) -> bytes:
        # ensure_ascii writes a lone surrogate as an escape (\ud800): UTF-8 cannot hold it.
        return b"" if self.body is NO_BODY else json.dumps(self.body).encode()


def choices(schema: Schema, document: Schema) -> list[Schema]:
    """The schemas a value may match: those of an anyOf or oneOf, references followed."""
    if "$ref" in schema:
        siblings = {key: value for key, value in schema.items() if key != "$ref"}
        return choices({**resolve(schema, document), **siblings}, document)
    alternatives = schema.get("anyOf", schema.get("oneOf"))
    if alternatives is None:
        return [schema]
    return [one for alternative in alternatives for one in choices(alternative, document)]


def example(schema: Schema, document: Schema, index: int = 0) -> Any:
    """A value `schema` allows; `index` keeps the integers of different properties apart."""
    candidates = choices(schema, document)
    chosen = next((one for one in candidates if one.get("type") != "null"), candidates[0])
    kind = chosen.get("type")
    if "examples" in chosen:
        return chosen["examples"][0]
    if "enum" in chosen:
        return chosen["enum"][0]
    if kind == "object":
        properties = chosen.get("properties", {}).items()
        return {name: example(item, document, n) for n, (name, item) in enumerate(properties)}
    if kind == "integer":
        low, high = integer_range(chosen)
        value = 1 + index
        return max(value if high is None else min(value, high), value if low is None else low)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "string" and chosen.get("format") == "date-time":
        return DATE_TIMES[0]
    if kind == "string" and chosen.get("format") == "uuid":
        return f"00000000-0000-7000-8000-{index + 1:012x}"
    for text in ("ada", "ada@example.com"):
        text = text.ljust(chosen.get("minLength", 0), "a")
        if not problems(chosen, text, document):
            return text
    raise AssertionError(f"request_cases.py cannot make a valid {chosen}: give it `examples`")


def variants(schema: Schema, document: Schema, valid: Any) -> Iterator[tuple[str, object]]:
    """(label, value) near `valid`, a value `schema` allows: valid ones and invalid ones."""
    yield from ((repr(value), value) for value in ODD_VALUES)
    for choice in choices(schema, document):
        kind = choice.get("type")
        if kind == "integer" and isinstance(valid, int):
            low, high = integer_range(choice)
            yield from ((f"{value}", value) for value in bounds(low, high))
            yield f"{valid} as text", str(valid)
            yield f"{valid} as a float", float(valid)
        if kind == "string" and isinstance(valid, str):
            yield from ((f"{valid!r} after {c!r}", c + valid) for c in CHARACTERS)
            yield from ((f"{valid!r} before {c!r}", valid + c) for c in ENDINGS)
            yield from text_variants(choice, valid)
        for member in choice.get("enum", []):
            yield repr(member), member
            if isinstance(member, str):
                yield f"{member!r} in capitals", member.upper()


def bounds(low: int | None, high: int | None) -> list[int]:
    """Each bound, and one past it."""
    found = [] if low is None else [low, low - 1]
    return found + ([] if high is None else [high, high + 1])


def text_variants(schema: Schema, valid: str) -> Iterator[tuple[str, str]]:
    if "maxLength" in schema:
        # One character to JSON Schema, Python and PostgreSQL, two UTF-16 units.
        longest = valid + "🚀" * (schema["maxLength"] - len(valid))
        yield "the longest", longest
        yield "one too long", longest + "🚀"
    if schema.get("minLength", 0) > 1:
        yield "one too short", valid[: schema["minLength"] - 1]
    if schema.get("format") == "date-time":
        yield from ((text, text) for text in DATE_TIMES)
    if schema.get("format") == "uuid":
        yield "in capitals", valid.upper()
        yield "without hyphens", valid.replace("-", "")
        yield "in braces", "{" + valid + "}"
        yield "as a URN", f"urn:uuid:{valid}"
        yield "a digit short", valid[:-1]


def parameter_texts(schema: Schema, document: Schema, valid: str) -> Iterator[str]:
    """Texts near `valid`, a text `schema` allows, for a parameter: valid ones and invalid ones."""
    yield from ("", "abc", "true", "1", valid + "\n", valid + "\x00")
    for choice in choices(schema, document):
        if choice.get("type") == "integer":
            yield from (str(value) for value in bounds(*integer_range(choice)))
            yield from INTEGER_TEXTS
        if choice.get("type") == "string":
            # A URL carries UTF-8, which holds no lone surrogate.
            yield from (c + valid for c in CHARACTERS if not "\ud800" <= c <= "\udfff")
            yield from (text for _, text in text_variants(choice, valid))


def as_text(value: object) -> str:
    """A parameter's value as OpenAPI's simple and form styles write it."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


def cases(operation: Mapping[str, Any], document: Schema) -> Iterator[Case]:
    """A valid request to `operation`, then each change to it."""
    parameters = [p for p in operation.get("parameters", []) if p["in"] in ("path", "query")]
    valid: dict[str, dict[str, str]] = {"path": {}, "query": {}}
    for parameter in parameters:
        valid[parameter["in"]][parameter["name"]] = as_text(example(parameter["schema"], document))
    request_body = operation.get("requestBody", {})
    media = request_body.get("content", {}).get("application/json")
    body = NO_BODY if media is None else example(media["schema"], document)
    base = Case("nothing", path=valid["path"], query=valid["query"], body=body)
    yield base
    for parameter in parameters:
        place, name = parameter["in"], parameter["name"]
        values = valid[place]
        for text in parameter_texts(parameter["schema"], document, values[name]):
            # Without a value, or with a slash in it, a path is another route's.
            if place == "query" or (text and "/" not in text):
                change = f"{place} {name} = {text!r}"
                yield replace(base, change=change, **{place: {**values, name: text}})
        if place == "query":
            others = {key: text for key, text in values.items() if key != name}
            yield replace(base, change=f"query {name} left out", query=others)
    if not isinstance(body, dict):
        return
    replacements = {
        "none": NO_BODY,
        "null": None,
        "[]": [],
        "a string": "text",
        "{}": {},
        "with an unknown property": {**body, "unknown_property": 1},
    }
    for label, replacement in replacements.items():
        yield replace(base, change=f"body {label}", body=replacement)
    schema = next(c for c in choices(media["schema"], document) if c.get("type") == "object")
    for name, value in body.items():
        others = {key: item for key, item in body.items() if key != name}
        yield replace(base, change=f"body {name} left out", body=others)
        for label, variant in variants(schema["properties"][name], document, value):
            yield replace(base, change=f"body {name} = {label}", body={**others, name: variant})
