"""Every connection tells pg_stat_activity who opened it: the package and the role of its
pool, so that a DBA tells the replica checks from the reads from the migrations."""

from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.package_name }}.db.database import Database
from {{ cookiecutter.package_name }}.db.engine import (
    application_name,
    create_async_engine_from_settings,
    create_sync_engine_from_settings,
)
from {{ cookiecutter.package_name }}.db.migrations import connected
from {{ cookiecutter.package_name }}.settings import Settings
from tests.replica_routing import routed_database, routed_settings

NAME = text("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")


async def name_on(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        return str(await connection.scalar(NAME))


async def test_each_pool_names_its_connections(
    postgres_url: str, replica_urls: list[str], db_engine: AsyncEngine
) -> None:
    async with routed_database(routed_settings(postgres_url, replica_urls)) as database:
        assert database.replicas is not None
        (replica,) = database.replicas.replicas
        names = {
            "primary": await name_on(database.engine),
            "read": await name_on(database.read_engine),
            "replica": await name_on(replica.engine),
            "replica-check": await name_on(replica.checks),
            "harness": await name_on(db_engine),
        }
        async with database.read_sessions() as session:
            assert await session.scalar(NAME) == application_name("replica")
    assert names == {role: application_name(role) for role in names}
    assert application_name("primary") == f"{Database.__module__.split('.')[0]}-primary"


def test_migrations_and_the_sync_engine_name_theirs(postgres_url: str) -> None:
    settings = Settings(database_url=SecretStr(postgres_url))
    with connected(settings.url("psycopg")) as connection:
        assert connection.scalar(NAME) == application_name("migrate")
    engine = create_sync_engine_from_settings(settings)
    try:
        with engine.connect() as connection:
            assert connection.scalar(NAME) == application_name("sync")
    finally:
        engine.dispose()


async def test_a_name_in_the_url_wins_on_both_drivers(postgres_url: str) -> None:
    separator = "&" if "?" in postgres_url else "?"
    settings = Settings(
        database_url=SecretStr(f"{postgres_url}{separator}application_name=billing-worker")
    )
    engine = create_async_engine_from_settings(settings)
    try:
        assert await name_on(engine) == "billing-worker"
    finally:
        await engine.dispose()
    sync = create_sync_engine_from_settings(settings)
    try:
        with sync.connect() as connection:
            assert connection.scalar(NAME) == "billing-worker"
    finally:
        sync.dispose()
