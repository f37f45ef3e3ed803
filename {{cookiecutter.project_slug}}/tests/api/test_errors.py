"""Every error answer has the error shape, whoever makes it: a route, the framework, a bug.

Routes that exist only for a test are added to the test's own app instance.
"""

import io
import json
import logging
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, SecretStr

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.api.fields import DatabaseText
from {{ cookiecutter.package_name }}.api.responses import ANY_OPERATION, WITH_BODY
from {{ cookiecutter.package_name }}.settings import Settings
from tests.api.conftest import assert_database_unavailable, checked_client, client_for, error_of

SECRET_DETAIL = "detail-the-client-must-not-see"


class Note(BaseModel):
    text: DatabaseText


async def test_an_unknown_path_is_404_in_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/path")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "no route matches /no/such/path"}
    }


async def test_a_method_the_path_lacks_is_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.post("/health/live")
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET, OPTIONS"


async def test_options_answers_what_the_path_allows(client: httpx.AsyncClient) -> None:
    response = await client.options("/health/live")
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, OPTIONS"
    assert (await client.options("/no/such/path")).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(b"\xff", 400, "malformed_request", id="not-utf-8"),
        pytest.param(b'{"text": ', 422, "invalid_input", id="truncated-json"),
        pytest.param(b'{"text": 1}', 422, "invalid_input", id="wrong-type"),
        pytest.param(b'{"text": "\\u0000"}', 422, "invalid_input", id="nul"),
        pytest.param(b'{"text": "\\ud800"}', 422, "invalid_input", id="lone-surrogate"),
    ],
)
async def test_a_body_that_cannot_be_read_is_an_error_in_the_error_shape(
    own_api: FastAPI, body: bytes, status: int, code: str
) -> None:
    @own_api.post("/notes", responses={**WITH_BODY, **ANY_OPERATION})
    async def take_note(note: Note) -> Note:
        return note

    async with checked_client(own_api) as client:
        response = await client.post(
            "/notes", content=body, headers={"content-type": "application/json"}
        )
    assert error_of(response, status)["code"] == code


async def test_a_lone_surrogate_is_quoted_back_as_a_replacement_character(
    own_api: FastAPI,
) -> None:
    # A JSON escape carries it; UTF-8, so the answer, cannot.
    @own_api.post("/notes", responses={**WITH_BODY, **ANY_OPERATION})
    async def take_note(note: Note) -> Note:
        return note

    async with checked_client(own_api) as client:
        response = await client.post(
            "/notes", content=b'{"text": "a\\ud800"}', headers={"content-type": "application/json"}
        )
    assert error_of(response, 422)["details"][0]["input"] == "a\ufffd"


async def test_a_bug_is_a_500_with_the_request_id_and_one_logged_traceback(
    own_api: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    @own_api.get("/bug", responses=ANY_OPERATION)
    async def bug() -> None:
        raise RuntimeError(SECRET_DETAIL)

    # The default transport raises whatever the app raises: a traceback handed on to
    # the server would fail the request here.
    async with checked_client(own_api) as client:
        response = await client.get("/bug")
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert response.json() == {
        "error": {
            "code": "internal_error",
            "message": "an unexpected error occurred; quote the request id when reporting it",
            "request_id": request_id,
        }
    }
    assert SECRET_DETAIL not in response.text
    with_traceback = [record for record in caplog.records if record.exc_info]
    assert len(with_traceback) == 1
    assert with_traceback[0].getMessage() == "unhandled error in GET /bug"
    assert SECRET_DETAIL in caplog.text


async def test_an_oserror_in_a_route_is_a_bug_not_an_unavailable_database(
    own_api: FastAPI, tmp_path: Path
) -> None:
    @own_api.get("/read-file", responses=ANY_OPERATION)
    async def read_file() -> str:
        return (tmp_path / "missing.txt").read_text()

    async with checked_client(own_api) as client:
        response = await client.get("/read-file")
    assert error_of(response, 500)["code"] == "internal_error"


async def test_a_missing_unix_socket_is_an_unavailable_database(tmp_path: Path) -> None:
    # The same FileNotFoundError as above, raised as the pool connects: not a bug.
    settings = Settings(database_url=SecretStr(f"postgresql://app@/app?host={tmp_path}"))
    async with client_for(create_app(settings)) as client:
        assert_database_unavailable(await client.get("/health/ready"))


async def test_a_valid_request_id_is_kept_and_logged(
    own_api: FastAPI, service_log: io.StringIO
) -> None:
    @own_api.get("/logs", responses=ANY_OPERATION)
    async def logs() -> None:
        logging.getLogger("{{ cookiecutter.package_name }}.test").warning("handling it")

    async with checked_client(own_api) as client:
        response = await client.get("/logs", headers={"X-Request-ID": "trace-42.a:b_c"})
    assert response.headers["x-request-id"] == "trace-42.a:b_c"
    [line] = service_log.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["request_id"] == "trace-42.a:b_c"
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "WARNING",
        "{{ cookiecutter.package_name }}.test",
        "handling it",
    )


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("x" * 129, id="too-long"),
        pytest.param("has space", id="space"),
        pytest.param('quote"and<tag>', id="unsafe-characters"),
    ],
)
async def test_a_missing_or_unsafe_request_id_is_replaced(
    client: httpx.AsyncClient, given: str | None
) -> None:
    headers = {} if given is None else {"X-Request-ID": given}
    first = await client.get("/health/live", headers=headers)
    second = await client.get("/health/live", headers=headers)
    generated = first.headers["x-request-id"]
    assert generated != given
    assert len(generated) == 32
    assert int(generated, 16) >= 0
    assert second.headers["x-request-id"] != generated
