"""Database errors become answers a client can act on, never a 500 with driver text."""

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from functools import partial

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.api.dependencies import SessionDep
from {{ cookiecutter.package_name }}.api.responses import QUERIES
from {{ cookiecutter.package_name }}.settings import Settings
from tests.api.conftest import checked_client, client_for, error_of

ClientFor = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


async def answer_to(
    app: FastAPI,
    statement: str,
    parameters: Mapping[str, object] | None = None,
    client: ClientFor = client_for,
) -> httpx.Response:
    """The answer to a request whose route runs `statement` in the request's unit of work."""

    @app.get("/statement", responses=QUERIES)
    async def run_statement(session: SessionDep) -> None:
        await session.execute(text(statement), parameters)

    async with client(app) as http:
        return await http.get("/statement")


async def test_statement_timeout_is_504(postgres_url: str) -> None:
    # Not much lower: the timeout also bounds the driver's own queries as it connects.
    app = create_app(Settings(database_url=SecretStr(postgres_url), statement_timeout_ms=250))
    response = await answer_to(app, "SELECT pg_sleep(5)")
    assert response.status_code == 504
    assert response.json() == {
        "error": {"code": "query_timeout", "message": "the database took too long to answer"}
    }


async def test_value_the_database_refuses_is_422(postgres_url: str) -> None:
    app = create_app(Settings(database_url=SecretStr(postgres_url)))
    # A request its document allows, refused: what contract.py reports, and the point here.
    unchecked = partial(client_for, requests=False)
    response = await answer_to(
        app, "SELECT CAST(:value AS smallint)", {"value": "40000"}, client=unchecked
    )
    assert error_of(response, 422)["code"] == "invalid_input"


async def test_a_database_behind_its_migrations_is_503_and_says_migrate(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Settings(database_url=SecretStr(postgres_url)))
    response = await answer_to(app, "SELECT id FROM a_table_no_migration_created")
    assert error_of(response, 503)["code"] == "schema_out_of_date"
    assert response.headers["retry-after"] == "1"
    assert "run the migrate command" in caplog.text


async def test_an_unexpected_database_error_is_a_500_with_the_request_id_only(
    own_api: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    response = await answer_to(own_api, "SELEC 'driver text'", client=checked_client)
    error = error_of(response, 500)
    assert error["code"] == "internal_error"
    assert error["request_id"] == response.headers["x-request-id"]
    assert "driver text" not in response.text
    # Logged once, with the traceback that says which statement failed.
    assert [record.exc_info is not None for record in caplog.records] == [True]
