"""transaction(): commit on success, roll back on any exception."""

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from {{ cookiecutter.package_name }}.db.session import transaction


class Boom(Exception):
    pass


@pytest.fixture
async def probe(db_session: AsyncSession) -> AsyncSession:
    await db_session.execute(text("CREATE TABLE uow_probe (id int PRIMARY KEY)"))
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
