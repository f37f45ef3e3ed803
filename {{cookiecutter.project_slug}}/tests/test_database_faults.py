"""Units of work when the database is unreachable, restarting, or out of connections."""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.db.engine import create_async_engine_from_settings
from {{ cookiecutter.package_name }}.db.session import make_session_factory, transaction
from {{ cookiecutter.package_name }}.localpg.cache import MIGRATED_DATABASE
from {{ cookiecutter.package_name }}.localpg.runs import shared_cluster
from {{ cookiecutter.package_name }}.settings import Settings, get_settings
from tests.harness.databases import project_migrations

SECRET = "s3cret-Pa55"
POOL_TIMEOUT = 0.1


async def select_one(engine: AsyncEngine) -> int:
    async with transaction(make_session_factory(engine)) as session:
        return int(await session.scalar(text("SELECT 1")))


@pytest.fixture
async def one_connection_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    settings = Settings(
        database_url=SecretStr(postgres_url),
        pool_size=1,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT,
    )
    engine = create_async_engine_from_settings(settings)
    yield engine
    await engine.dispose()


async def test_an_exhausted_pool_fails_in_about_pool_timeout(
    one_connection_engine: AsyncEngine,
) -> None:
    async with one_connection_engine.connect():
        # The bound only catches a hang; the pool gives up after POOL_TIMEOUT.
        async with asyncio.timeout(POOL_TIMEOUT * 40):
            with pytest.raises(PoolTimeoutError):
                await select_one(one_connection_engine)
    assert await select_one(one_connection_engine) == 1


async def test_a_connection_the_server_closed_is_replaced_without_a_failed_request(
    one_connection_engine: AsyncEngine, db_engine: AsyncEngine
) -> None:
    async with one_connection_engine.connect() as connection:
        pid = await connection.scalar(text("SELECT pg_backend_pid()"))
    async with db_engine.connect() as admin:
        # Waits (up to 5 s) until the backend is gone, as after a server restart.
        await admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    # Give the event loop the moment it needs to read the closed socket.
    await asyncio.sleep(0.1)
    assert await select_one(one_connection_engine) == 1


async def test_the_next_unit_of_work_succeeds_after_a_database_restart(server_bindir: Path) -> None:
    # A cluster of this test's own: stopping the shared one would break other tests.
    with shared_cluster(
        server_bindir, f"restart-{uuid.uuid4().hex[:8]}", project_migrations()
    ) as cluster:
        url = cluster.url(MIGRATED_DATABASE).render_as_string(hide_password=False)
        # One pooled connection, so the one the restart killed is the one reused.
        settings = Settings(database_url=SecretStr(url), pool_size=1, max_overflow=0)
        engine = create_async_engine_from_settings(settings)
        try:
            assert await select_one(engine) == 1
            cluster.stop()
            # With the socket gone, asyncpg raises a bare OSError that SQLAlchemy does not wrap.
            with pytest.raises((DBAPIError, OSError)):
                await select_one(engine)
            cluster.start()
            assert await select_one(engine) == 1
        finally:
            await engine.dispose()


def test_migrate_names_an_unreachable_database_without_its_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1:1/app")
    get_settings.cache_clear()
    try:
        with caplog.at_level(logging.ERROR):
            assert cli.main(["migrate"]) == 1
    finally:
        get_settings.cache_clear()
    assert "cannot reach the database at postgresql+asyncpg://app:***@127.0.0.1:1/app" in (
        caplog.text
    )
    assert "DATABASE_URL" in caplog.text
    assert SECRET not in caplog.text
