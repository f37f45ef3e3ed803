"""transaction() commits or rolls back as a whole; read-only sessions never write."""

import asyncio

import pytest
from pydantic import SecretStr
from sqlalchemy import column, delete, insert, table, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from {{ cookiecutter.package_name }}.db.engine import (
    create_async_engine_from_settings,
    read_engine_for,
)
from {{ cookiecutter.package_name }}.db.session import (
    WriteInReadOnlySession,
    make_read_session_factory,
    make_session_factory,
    transaction,
)
from {{ cookiecutter.package_name }}.settings import Settings


class Boom(Exception):
    pass


@pytest.fixture
async def probe(db_session: AsyncSession) -> AsyncSession:
    # Temporary: the service's role may not create tables, and the test's sessions share
    # its connection.
    await db_session.execute(text("CREATE TEMPORARY TABLE uow_probe (id int PRIMARY KEY)"))
    await db_session.commit()
    return db_session


async def ids(session: AsyncSession) -> list[int]:
    return list((await session.scalars(text("SELECT id FROM uow_probe ORDER BY id"))).all())


async def test_commits_when_the_block_succeeds(
    db_sessions: async_sessionmaker[AsyncSession], probe: AsyncSession
) -> None:
    async with transaction(db_sessions) as session:
        await session.execute(text("INSERT INTO uow_probe VALUES (1)"))
    assert await ids(probe) == [1]


async def test_rolls_back_on_any_exception(
    db_sessions: async_sessionmaker[AsyncSession], probe: AsyncSession
) -> None:
    with pytest.raises(Boom):
        async with transaction(db_sessions) as session:
            await session.execute(text("INSERT INTO uow_probe VALUES (1)"))
            raise Boom
    assert await ids(probe) == []


async def test_rolls_back_when_the_database_refuses(
    db_sessions: async_sessionmaker[AsyncSession], probe: AsyncSession
) -> None:
    with pytest.raises(Exception, match="duplicate key"):
        async with transaction(db_sessions) as session:
            await session.execute(text("INSERT INTO uow_probe VALUES (1)"))
            await session.execute(text("INSERT INTO uow_probe VALUES (1)"))
    assert await ids(probe) == []


PROBE = table("uow_probe", column("id"))


async def test_a_read_only_session_refuses_to_write(
    db_read_sessions: async_sessionmaker[AsyncSession], probe: AsyncSession
) -> None:
    async with db_read_sessions() as session:
        with pytest.raises(WriteInReadOnlySession, match="use transaction"):
            await session.execute(insert(PROBE).values(id=1))
        with pytest.raises(WriteInReadOnlySession):
            await session.execute(delete(PROBE))
    assert await ids(probe) == []


@pytest.mark.isolated_db
async def test_a_read_only_session_runs_each_statement_on_its_own(postgres_url: str) -> None:
    settings = Settings(database_url=SecretStr(postgres_url))
    engine = create_async_engine_from_settings(settings)
    read_engine = read_engine_for(engine, settings)
    try:
        # now() is the transaction's start time: it moves only without a transaction.
        async with make_read_session_factory(read_engine)() as session:
            first = await session.scalar(text("SELECT now()"))
            await asyncio.sleep(0.01)
            assert await session.scalar(text("SELECT now()")) != first
        async with transaction(make_session_factory(engine)) as session:
            first = await session.scalar(text("SELECT now()"))
            await asyncio.sleep(0.01)
            assert await session.scalar(text("SELECT now()")) == first
    finally:
        await engine.dispose()
        await read_engine.dispose()
