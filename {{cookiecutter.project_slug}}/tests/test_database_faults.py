"""Units of work when the database is unreachable, restarting, or out of connections."""

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.db.engine import create_async_engine_from_settings
from {{ cookiecutter.package_name }}.db.session import make_session_factory, transaction
from {{ cookiecutter.package_name }}.localpg.cache import MIGRATED_DATABASE
from {{ cookiecutter.package_name }}.localpg.cluster import APP_ROLE, Cluster
from {{ cookiecutter.package_name }}.settings import get_settings
from tests.faults import POOL_TIMEOUT, SECRET, UNREACHABLE_URL, one_connection_settings


async def select_one(engine: AsyncEngine) -> int:
    async with transaction(make_session_factory(engine)) as session:
        return int(await session.scalar(text("SELECT 1")))


@pytest.fixture
async def one_connection_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine_from_settings(one_connection_settings(postgres_url))
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


async def test_the_next_unit_of_work_succeeds_after_a_database_restart(
    restartable_cluster: Cluster,
) -> None:
    settings = one_connection_settings(
        restartable_cluster.url(MIGRATED_DATABASE).set(username=APP_ROLE)
    )
    engine = create_async_engine_from_settings(settings)
    try:
        assert await select_one(engine) == 1
        restartable_cluster.stop()
        # With the socket gone, asyncpg raises a bare OSError that SQLAlchemy does not wrap.
        with pytest.raises((DBAPIError, OSError)):
            await select_one(engine)
        restartable_cluster.start()
        assert await select_one(engine) == 1
    finally:
        await engine.dispose()


def test_migrate_names_an_unreachable_database_without_its_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE_URL)
    get_settings.cache_clear()
    try:
        with caplog.at_level(logging.ERROR):
            assert cli.main(["migrate"]) == 1
    finally:
        get_settings.cache_clear()
    assert (
        "cannot connect to the database at postgresql://app:***@127.0.0.1:1/app (DATABASE_URL): "
        "connection refused on 127.0.0.1:1"
    ) in caplog.text
    assert "DATABASE_URL" in caplog.text
    assert SECRET not in caplog.text


def test_migrate_names_the_migration_url_it_could_not_use(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # DATABASE_URL would answer; the owner's URL is the one that fails.
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:fine@127.0.0.1:5432/app")
    monkeypatch.setenv("DATABASE_MIGRATION_URL", UNREACHABLE_URL.replace("app:", "owner:", 1))
    get_settings.cache_clear()
    try:
        with caplog.at_level(logging.ERROR):
            assert cli.main(["migrate"]) == 1
    finally:
        get_settings.cache_clear()
    assert (
        "cannot connect to the database at postgresql://owner:***@127.0.0.1:1/app "
        "(DATABASE_MIGRATION_URL): connection refused on 127.0.0.1:1"
    ) in caplog.text
    assert "(DATABASE_URL)" not in caplog.text
    assert SECRET not in caplog.text
