"""Session factories and the unit of work.

`expire_on_commit=False` keeps loaded attributes readable after commit; with
async sessions an expired attribute would need an implicit query, which fails.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

from {{ cookiecutter.package_name }}.db.engine import create_async_engine_from_settings
from {{ cookiecutter.package_name }}.settings import get_settings

AsyncSessionFactory = async_sessionmaker[AsyncSession]


def make_session_factory(engine: AsyncEngine) -> AsyncSessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


def make_sync_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@lru_cache
def default_session_factory() -> AsyncSessionFactory:
    """The process-wide factory, built from settings on first use."""
    return make_session_factory(create_async_engine_from_settings(get_settings()))


@asynccontextmanager
async def transaction(sessions: AsyncSessionFactory | None = None) -> AsyncIterator[AsyncSession]:
    """A unit of work: commits when the block succeeds, rolls back on any exception."""
    async with (sessions or default_session_factory())() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
