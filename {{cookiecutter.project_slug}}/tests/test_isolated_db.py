"""The isolated_db marker: a database of the test's own, where commits are real."""

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.harness.servers import Owner, SessionDatabase

pytestmark = pytest.mark.harness


@pytest.mark.isolated_db
async def test_gets_its_own_database(database: SessionDatabase, postgres_url: str) -> None:
    assert database.url.database is not None
    assert database.url.database not in postgres_url
    assert database.template in postgres_url


@pytest.mark.isolated_db
async def test_commits_are_visible_to_other_connections(
    db_session: AsyncSession, db_engine: AsyncEngine, db_owner: Owner
) -> None:
    await db_owner.execute("CREATE TABLE visible (id int)")
    await db_session.execute(text("INSERT INTO visible VALUES (1)"))
    await db_session.commit()
    async with db_engine.connect() as other:
        assert await other.scalar(text("SELECT count(*) FROM visible")) == 1


@pytest.mark.isolated_db
async def test_concurrent_transactions_on_separate_connections(
    db_sessions: async_sessionmaker[AsyncSession], db_engine: AsyncEngine, db_owner: Owner
) -> None:
    await db_owner.execute(
        "CREATE TABLE counter (value int NOT NULL)", "INSERT INTO counter VALUES (0)"
    )

    async def increment() -> None:
        async with db_sessions() as session, session.begin():
            # Row lock: the increments serialise instead of losing updates.
            value = await session.scalar(text("SELECT value FROM counter FOR UPDATE"))
            await asyncio.sleep(0.01)
            await session.execute(text("UPDATE counter SET value = :v"), {"v": value + 1})

    await asyncio.gather(*(increment() for _ in range(5)))
    async with db_engine.connect() as connection:
        assert await connection.scalar(text("SELECT value FROM counter")) == 5
