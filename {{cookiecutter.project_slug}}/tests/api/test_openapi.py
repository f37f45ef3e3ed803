"""The OpenAPI document tells the truth: error answers, their schema, the bounds of keys.

tests/api/contract.py checks each request and answer of the tests against it; these
tests check the document as a whole, and that the check itself catches an
undocumented answer and a request judged otherwise than the document says.
"""

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Response
from pydantic import AfterValidator, BaseModel, ValidationError

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.api.fields import BIGINT_MAX, BIGINT_MIN
from {{ cookiecutter.package_name }}.api.responses import ANY_OPERATION, WITH_BODY
from {{ cookiecutter.package_name }}.settings import Settings
from tests.api.conftest import checked_client
from tests.api.json_schema import integer_range

ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorResponse"}
# The one operation that never touches the database, and so cannot answer 503. An
# operation without parameters or body (the health checks) cannot answer 422 either.
NO_DATABASE = {("get", "/health/live")}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    openapi: dict[str, Any] = create_app(Settings()).openapi()
    return openapi


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, path_item in document["paths"].items()
        for method, operation in path_item.items()
    ]


def test_every_error_answer_has_the_error_schema(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == ERROR_SCHEMA, (method, path, status)


def test_every_operation_documents_the_errors_it_can_answer(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        documented = set(operation["responses"])
        assert "500" in documented, (method, path)
        if (method, path) not in NO_DATABASE:
            assert "503" in documented, (method, path)
        if operation.get("parameters") or "requestBody" in operation:
            assert "422" in documented, (method, path)
        if "requestBody" in operation:
            assert "400" in documented, (method, path)
        if any(parameter["in"] == "path" for parameter in operation.get("parameters", [])):
            assert "404" in documented, (method, path)


def bounded(schema: dict[str, Any]) -> bool:
    """A key's schema: a UUID, or an integer with both bounds (null allowed besides)."""
    choices = [choice for choice in schema.get("anyOf", [schema]) if choice != {"type": "null"}]
    return all(
        choice.get("format") == "uuid"
        or (choice.get("type") == "integer" and None not in integer_range(choice))
        for choice in choices
    )


def schemas_in(node: object) -> Iterator[dict[str, Any]]:
    """Every schema in the document, and every other object."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from schemas_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from schemas_in(value)


def test_every_key_and_integer_parameter_is_bounded(document: dict[str, Any]) -> None:
    parameters = [
        (path, parameter)
        for _, path, operation in operations(document)
        for parameter in operation.get("parameters", [])
    ]
    for path, parameter in parameters:
        schema = parameter["schema"]
        if parameter["in"] == "path" or "integer" in str(schema) or "uuid" in str(schema):
            assert bounded(schema), (path, parameter["name"], schema)


def test_every_integer_bound_is_one_tools_read_and_a_bigint_holds(
    document: dict[str, Any],
) -> None:
    integers = [schema for schema in schemas_in(document) if schema.get("type") == "integer"]
    for schema in integers:
        # Pydantic's names: bounds given after a BeforeValidator (api/fields.py).
        assert not {"ge", "gt", "le", "lt"} & set(schema), schema
        # Past a bigint: FastAPI writes body bounds as floats, BIGINT_MAX as 2**63.
        low, high = integer_range(schema)
        assert low is None or low >= BIGINT_MIN, schema
        assert high is None or high <= BIGINT_MAX, schema


{% if cookiecutter.include_example_models -%}
def test_every_request_body_refuses_fields_it_does_not_know(document: dict[str, Any]) -> None:
    bodies = [
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for _, _, operation in operations(document)
        if "requestBody" in operation
    ]
    assert bodies
    for reference in bodies:
        schema = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
        assert schema["additionalProperties"] is False, reference


{% endif -%}
def test_the_error_schema_names_code_and_message(document: dict[str, Any]) -> None:
    detail = document["components"]["schemas"]["ErrorDetail"]
    assert detail["required"] == ["code", "message"]
    assert detail["additionalProperties"] is False


async def test_an_answer_the_document_does_not_list_fails_the_test(own_api: FastAPI) -> None:
    @own_api.get("/teapot", responses=ANY_OPERATION)
    async def teapot(response: Response) -> None:
        response.status_code = 418

    async with checked_client(own_api) as client:
        with pytest.raises(AssertionError, match="GET /teapot answered 418"):
            await client.get("/teapot")


async def test_an_error_answer_outside_the_error_shape_fails_the_test(own_api: FastAPI) -> None:
    @own_api.get("/legacy", responses=ANY_OPERATION)
    async def legacy(response: Response) -> dict[str, str]:
        response.status_code = 500
        return {"detail": "the framework's own shape"}

    async with checked_client(own_api) as client:
        with pytest.raises(ValidationError, match="ErrorResponse"):
            await client.get("/legacy")


class Lax(BaseModel):
    flag: bool


def no_x(text: str) -> str:
    if "x" in text:
        raise ValueError("a rule the schema does not state")
    return text


class Hidden(BaseModel):
    text: Annotated[str, AfterValidator(no_x)]


@pytest.mark.parametrize(
    ("path", "request_body", "verdict"),
    [
        pytest.param(
            "/lax", {"flag": 0}, "answered 200 to a request its OpenAPI document refuses", id="lax"
        ),
        pytest.param(
            "/hidden",
            {"text": "x"},
            "refused as invalid_input a request its OpenAPI document allows",
            id="hidden-rule",
        ),
    ],
)
async def test_a_request_judged_otherwise_than_the_document_fails_the_test(
    own_api: FastAPI, path: str, request_body: dict[str, object], verdict: str
) -> None:
    @own_api.post("/lax", responses={**WITH_BODY, **ANY_OPERATION})
    async def lax(body: Lax) -> None:
        pass

    @own_api.post("/hidden", responses={**WITH_BODY, **ANY_OPERATION})
    async def hidden(body: Hidden) -> None:
        pass

    async with checked_client(own_api) as client:
        with pytest.raises(AssertionError, match=f"POST {path} {verdict}"):
            await client.post(path, json=request_body)
