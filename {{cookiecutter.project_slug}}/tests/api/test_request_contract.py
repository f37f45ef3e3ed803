"""The service judges each request as its OpenAPI document does, as API fuzzers check.

Each operation with parameters or a JSON body gets the requests request_cases.py
makes from its schemas, and json_schema.py says which of them the document allows.
The service must refuse each one the document refuses, as invalid_input (422), and
refuse none it allows as such, though an allowed request may name no row (404),
conflict (409), name a missing reference (422 missing_reference) or break a rule
across the fields of its body, which a schema cannot state. contract.py checks the
same of every request the other tests happen to make.
"""

from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import BaseModel, Field, StrictBool

from {{ cookiecutter.package_name }}.api.fields import ApiKey, BodyKey, DatabaseText, Timestamp
from {{ cookiecutter.package_name }}.api.pages import PageParamsDep
from {{ cookiecutter.package_name }}.api.responses import ANY_OPERATION, WITH_BODY
from tests.api.conftest import checked_client
from tests.api.contract import invalid_input_details, refused_by_a_body_rule, request_problems
from tests.api.request_cases import NO_BODY, cases


async def misjudged(
    client: httpx.AsyncClient, document: dict[str, Any], method: str, path: str
) -> list[str]:
    """The requests to an operation that the service judges otherwise than its document."""
    operation = document["paths"][path][method]
    wrong, judged = [], {True: 0, False: 0}
    for case in cases(operation, document):
        content = case.content()
        parameters = {"path": case.path, "query": case.query, "header": {}, "cookie": {}}
        refused = request_problems(operation, document, parameters, content, None)
        assert refused is not None
        judged[bool(refused)] += 1
        headers = {} if case.body is NO_BODY else {"content-type": "application/json"}
        where = f"{method.upper()} {path} with {case.change}"
        try:
            response = await client.request(
                method, case.url(path), params=case.query, content=content, headers=headers
            )
        except AssertionError as verdict:
            # contract.py's, naming what the document refuses or allows.
            wrong.append(f"{where}: {verdict}")
            continue
        details = invalid_input_details(response.status_code, response.content)
        if refused and details is None:
            wrong.append(f"{where}: answered {response.status_code}, but the document refuses it")
        elif not refused and response.status_code >= 500:
            wrong.append(f"{where}: answered {response.status_code}")
        elif not refused and details is not None and not refused_by_a_body_rule(details):
            wrong.append(f"{where}: refused, but the document allows it: {response.text}")
    # The cases include both kinds, or json_schema.py or request_cases.py went wrong.
    assert all(judged.values()), (method, path, judged)
    return wrong


async def test_the_service_judges_each_request_as_its_document_does(
    client: httpx.AsyncClient, api: FastAPI
) -> None:
    document = api.openapi()
    wrong = [
        found
        for path, path_item in document["paths"].items()
        for method, operation in path_item.items()
        if operation.get("parameters") or "requestBody" in operation
        for found in await misjudged(client, document, method, path)
    ]
    assert not wrong, "\n".join(wrong)


class Probe(BaseModel):
    text: DatabaseText = Field(min_length=1, max_length=5)
    flag: StrictBool
    key: BodyKey
    at: Timestamp | None = None


async def test_each_value_type_is_judged_as_its_schema_says(own_api: FastAPI) -> None:
    """The types of api/fields.py, whichever example features the project has."""

    @own_api.put("/probes/{key}", responses={**WITH_BODY, **ANY_OPERATION})
    async def probe(key: ApiKey, body: Probe, page: PageParamsDep) -> None:
        """Takes a valid request, and does nothing."""

    async with checked_client(own_api) as client:
        wrong = await misjudged(client, own_api.openapi(), "put", "/probes/{key}")
    assert not wrong, "\n".join(wrong)
