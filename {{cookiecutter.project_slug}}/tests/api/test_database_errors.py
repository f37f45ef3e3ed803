"""Database errors become answers a client can act on, never a 500 with driver text."""

from pydantic import SecretStr
from sqlalchemy import text

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.api.dependencies import SessionDep
from {{ cookiecutter.package_name }}.db.engine import create_async_engine_from_settings
from {{ cookiecutter.package_name }}.settings import Settings
from tests.api.conftest import client_for


async def test_statement_timeout_is_504(postgres_url: str) -> None:
    settings = Settings(database_url=SecretStr(postgres_url), statement_timeout_ms=50)
    engine = create_async_engine_from_settings(settings)
    app = create_app(settings)

    @app.get("/slow")
    async def slow(session: SessionDep) -> None:
        await session.execute(text("SELECT pg_sleep(5)"))

    async with client_for(app, engine) as client:
        response = await client.get("/slow")
    await engine.dispose()
    assert response.status_code == 504
    assert response.json() == {
        "error": {"code": "query_timeout", "message": "the database took too long to answer"}
    }


async def test_value_the_database_refuses_is_422(postgres_url: str) -> None:
    settings = Settings(database_url=SecretStr(postgres_url))
    engine = create_async_engine_from_settings(settings)
    app = create_app(settings)

    @app.get("/overflow")
    async def overflow(session: SessionDep) -> None:
        await session.execute(text("SELECT CAST(:value AS smallint)"), {"value": "40000"})

    async with client_for(app, engine) as client:
        response = await client.get("/overflow")
    await engine.dispose()
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"
