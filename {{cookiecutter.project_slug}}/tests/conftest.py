"""Fixtures: one throwaway PostgreSQL per session, one rolled-back transaction per test."""

from collections.abc import AsyncIterator, Iterator
{% if cookiecutter.use_fastapi %}
import httpx
{%- endif %}
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
{% if cookiecutter.use_fastapi %}
from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.api.dependencies import get_session_factory
{%- endif %}
from {{ cookiecutter.package_name }}.db.engine import create_async_engine_from_settings
from {{ cookiecutter.package_name }}.settings import Settings
from tests.harness.isolation import rolled_back_connection, savepoint_sessions
from tests.harness.postgres import SessionDatabase, session_database


@pytest.fixture(scope="session")
def database() -> Iterator[SessionDatabase]:
    with session_database() as database:
        yield database


@pytest.fixture(scope="session")
def postgres_url(database: SessionDatabase) -> str:
    """The migrated test database (asyncpg URL)."""
    return database.url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
async def db_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    # The server is local and private: checking connections on checkout only costs time.
    settings = Settings(database_url=SecretStr(postgres_url), pool_pre_ping=False)
    engine = create_async_engine_from_settings(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db_connection(db_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with rolled_back_connection(db_engine) as connection:
        yield connection


@pytest.fixture
def db_sessions(db_connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """A session factory for code under test; every session joins the test's transaction."""
    return savepoint_sessions(db_connection)


@pytest.fixture
async def db_session(
    db_sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with db_sessions() as session:
        yield session
{%- if cookiecutter.use_fastapi %}


@pytest.fixture
async def client(
    db_sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[httpx.AsyncClient]:
    """The API over ASGI; each request's unit of work runs in the test's transaction."""
    app = create_app(Settings())
    app.dependency_overrides[get_session_factory] = lambda: db_sessions
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
{%- endif %}
