"""json_schema.py reads schemas as JSON Schema does, bar the two points it states.

contract.py and test_request_contract.py trust its verdicts: a checker that took too
much would hide a lax service, one that took too little would blame a strict one.
"""

import math
import re
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.api.fields import DATE_TIME_PATTERN, TEXT_PATTERN
from tests.api.json_schema import problems, text_problems

DOCUMENT = {
    "components": {
        "schemas": {
            "Status": {"type": "string", "enum": ["draft", "published"]},
            "Body": {
                "type": "object",
                "properties": {"status": {"$ref": "#/components/schemas/Status"}},
                "required": ["status"],
                "additionalProperties": False,
            },
        }
    }
}
BODY = {"$ref": "#/components/schemas/Body"}
# FastAPI writes the bounds of body schemas as floats: 2**63 - 1 becomes 2**63.
BIGINT_AS_FASTAPI_WRITES_IT = float(2**63 - 1)


def valid(schema: dict[str, Any], value: object) -> bool:
    return not problems(schema, value, DOCUMENT)


@pytest.mark.parametrize(
    ("schema", "value", "expected"),
    [
        ({"type": "boolean"}, True, True),
        ({"type": "boolean"}, 0, False),
        ({"type": "boolean"}, 1, False),
        ({"type": "boolean"}, "true", False),
        ({"type": "integer"}, 2**70, True),
        ({"type": "integer"}, True, False),
        ({"type": "integer"}, "1", False),
        # JSON Schema would take it; the service does not (json_schema.py says why).
        ({"type": "integer"}, 12.0, False),
        ({"type": "number"}, 1.5, True),
        ({"type": "number"}, math.nan, False),
        ({"type": "string"}, 0, False),
        ({"type": ["string", "null"]}, None, True),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, None, True),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, False, False),
        ({"enum": [1]}, True, False),
        ({"enum": [1]}, 1.0, True),
    ],
)
def test_types_are_json_types(schema: dict[str, Any], value: object, expected: bool) -> None:
    assert valid(schema, value) is expected


def test_bounds_compare_exactly() -> None:
    exclusive = {"type": "integer", "exclusiveMaximum": BIGINT_AS_FASTAPI_WRITES_IT}
    assert valid(exclusive, 2**63 - 1)
    assert not valid(exclusive, 2**63)
    # Why api/fields.py bounds keys with lt=2**63, not le=2**63 - 1.
    assert valid({"type": "integer", "maximum": BIGINT_AS_FASTAPI_WRITES_IT}, 2**63)


def test_lengths_count_code_points() -> None:
    assert valid({"type": "string", "maxLength": 2}, "🚀🚀")
    assert not valid({"type": "string", "maxLength": 2}, "🚀🚀🚀")


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        # Python's $ also matches before a final newline; ECMA-262's does not.
        (r"^x$", "x\n", False),
        (r"^x(?!\n)$", "x", True),
        # ECMA-262's \d and \w are ASCII; Python's are Unicode.
        (r"^\d$", "\u0661", False),
        (r"^\w$", "é", False),
        # Their \s differ both ways.
        (r"^\s$", "\x1c", False),
        (r"^\s$", "\ufeff", True),
        (r"^[^\s]$", "\ufeff", False),
        # ECMA-262's . leaves out every line terminator.
        (r"^.$", "\r", False),
        (r"^.$", "🚀", True),
    ],
)
def test_patterns_match_as_ecma_262_with_the_u_flag(
    pattern: str, text: str, expected: bool
) -> None:
    assert valid({"type": "string", "pattern": pattern}, text) is expected


def test_a_pattern_it_cannot_translate_fails_loudly() -> None:
    with pytest.raises(AssertionError, match="teach it"):
        valid({"type": "string", "pattern": r"^\p{L}+$"}, "x")


@pytest.mark.parametrize("text", ["", "a\nb", "\t", "🚀", "\U0010ffff", "\uffff", "\u202e"])
def test_the_text_pattern_takes_what_postgresql_stores(text: str) -> None:
    assert valid({"type": "string", "pattern": TEXT_PATTERN}, text)
    assert re.search(TEXT_PATTERN, text)


@pytest.mark.parametrize("text", ["\x00", "a\x00", "\ud800", "a\udfff", "\udc00\ud800"])
def test_the_text_pattern_refuses_nul_and_lone_surrogates(text: str) -> None:
    assert not valid({"type": "string", "pattern": TEXT_PATTERN}, text)
    assert not re.search(TEXT_PATTERN, text)


@pytest.mark.parametrize(
    ("text", "rfc_3339", "service"),
    [
        ("2024-05-01T12:00:00Z", True, True),
        ("2024-05-01t12:00:00.5+23:59", True, True),
        ("2024-02-29T00:00:00-00:00", True, True),
        # What RFC 3339 allows and a Python datetime cannot hold: the pattern says so.
        ("1990-12-31T23:59:60Z", True, False),
        ("0000-01-01T00:00:00Z", True, False),
        ("2023-02-29T00:00:00Z", False, False),
        ("2024-05-01T12:00:00", False, False),
        ("2024-05-01 12:00:00Z", False, False),
        ("1700000000", False, False),
        ("2024-05-01T12:00:00Z\n", False, False),
    ],
)
def test_date_times_are_rfc_3339_and_the_pattern_narrows_them(
    text: str, rfc_3339: bool, service: bool
) -> None:
    assert valid({"type": "string", "format": "date-time"}, text) is rfc_3339
    schema = {"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN}
    assert valid(schema, text) is service


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0192f0a0-0000-7000-8000-00000000000a", True),
        ("0192F0A0-0000-7000-8000-00000000000A", True),
        ("0192f0a0000070008000000000000000", False),
        ("{0192f0a0-0000-7000-8000-00000000000a}", False),
    ],
)
def test_uuids_are_hyphenated(text: str, expected: bool) -> None:
    assert valid({"type": "string", "format": "uuid"}, text) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"status": "draft"}, True),
        ({"status": "secret"}, False),
        ({}, False),
        ({"status": "draft", "other": 1}, False),
        (["draft"], False),
    ],
)
def test_objects_follow_references(value: object, expected: bool) -> None:
    assert valid(BODY, value) is expected


def test_a_keyword_it_does_not_know_fails_loudly() -> None:
    with pytest.raises(AssertionError, match="does not check 'multipleOf'"):
        valid({"type": "integer", "multipleOf": 2}, 4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5", True), ("-0", True), ("05", False), ("5.0", False), (" 5", False), ("true", False)],
)
def test_a_parameter_text_is_valid_if_a_value_it_spells_is(text: str, expected: bool) -> None:
    assert (not text_problems({"type": "integer"}, text, DOCUMENT, "")) is expected
    assert not text_problems({"type": "string"}, text, DOCUMENT, "")
