"""Database errors become answers a client can act on, never a 500 with driver text."""

import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.api.dependencies import SessionDep
from {{ cookiecutter.package_name }}.api.responses import QUERIES
from {{ cookiecutter.package_name }}.settings import Settings
from tests.api.conftest import checked_client, client_for


async def test_statement_timeout_is_504(postgres_url: str) -> None:
    app = create_app(Settings(database_url=SecretStr(postgres_url), statement_timeout_ms=50))

    @app.get("/slow", responses=QUERIES)
    async def slow(session: SessionDep) -> None:
        await session.execute(text("SELECT pg_sleep(5)"))

    async with client_for(app) as client:
        response = await client.get("/slow")
    assert response.status_code == 504
    assert response.json() == {
        "error": {"code": "query_timeout", "message": "the database took too long to answer"}
    }


async def test_value_the_database_refuses_is_422(postgres_url: str) -> None:
    app = create_app(Settings(database_url=SecretStr(postgres_url)))

    @app.get("/overflow", responses=QUERIES)
    async def overflow(session: SessionDep) -> None:
        await session.execute(text("SELECT CAST(:value AS smallint)"), {"value": "40000"})

    async with client_for(app) as client:
        response = await client.get("/overflow")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


async def test_a_database_behind_its_migrations_is_503_and_says_migrate(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Settings(database_url=SecretStr(postgres_url)))

    @app.get("/ahead", responses=QUERIES)
    async def ahead(session: SessionDep) -> None:
        await session.execute(text("SELECT id FROM a_table_no_migration_created"))

    async with client_for(app) as client:
        response = await client.get("/ahead")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "schema_out_of_date"
    assert "run the migrate command" in caplog.text


async def test_an_unexpected_database_error_is_a_500_with_the_request_id_only(
    own_api: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    @own_api.get("/typo", responses=QUERIES)
    async def typo(session: SessionDep) -> None:
        await session.execute(text("SELEC 'driver text'"))

    async with checked_client(own_api) as client:
        response = await client.get("/typo")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert error["request_id"] == response.headers["x-request-id"]
    assert "driver text" not in response.text
    # Logged once, with the traceback that says which statement failed.
    assert [record.exc_info is not None for record in caplog.records] == [True]
