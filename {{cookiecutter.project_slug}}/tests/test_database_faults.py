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


# DATABASE_URL alone, then with DATABASE_MIGRATION_URL, which migrate uses: the message
# names the URL that failed, by its setting, without its password.
OWNER_URL = UNREACHABLE_URL.replace("app:", "owner:", 1)
ANSWERING_URL = "postgresql://app:fine@127.0.0.1:5432/app"


@pytest.mark.parametrize(
    ("environment", "named", "not_named"),
    [
        (
            {"DATABASE_URL": UNREACHABLE_URL},
            "postgresql://app:***@127.0.0.1:1/app (DATABASE_URL)",
            "DATABASE_MIGRATION_URL",
        ),
        (
            {"DATABASE_URL": ANSWERING_URL, "DATABASE_MIGRATION_URL": OWNER_URL},
            "postgresql://owner:***@127.0.0.1:1/app (DATABASE_MIGRATION_URL)",
            "(DATABASE_URL)",
        ),
    ],
    ids=["service url", "migration url"],
)
def test_migrate_names_the_unreachable_url_it_used_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    environment: dict[str, str],
    named: str,
    not_named: str,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        with caplog.at_level(logging.ERROR):
            assert cli.main(["migrate"]) == 1
    finally:
        get_settings.cache_clear()
    expected = f"cannot connect to the database at {named}: connection refused on 127.0.0.1:1"
    assert expected in caplog.text
    assert not_named not in caplog.text
    assert SECRET not in caplog.text
