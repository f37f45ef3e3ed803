"""Request-scoped dependencies, as Annotated aliases for route signatures."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.package_name }}.db.database import Database
from {{ cookiecutter.package_name }}.db.session import AsyncSessionFactory, transaction
from {{ cookiecutter.package_name }}.settings import Settings


def get_settings_of_the_app(request: Request) -> Settings:
    """The Settings the app was made with."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_of_the_app)]


def get_database(request: Request) -> Database:
    """The Database the app's lifespan built."""
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(get_database)]


def get_session_factory(database: DatabaseDep) -> AsyncSessionFactory:
    return database.sessions


SessionFactoryDep = Annotated[AsyncSessionFactory, Depends(get_session_factory)]


async def get_session(sessions: SessionFactoryDep) -> AsyncIterator[AsyncSession]:
    async with transaction(sessions) as session:
        yield session


# scope="function" ends the unit of work when the route returns, before the
# response is sent: a client that got a 2xx can read its write back at once.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def get_read_session_factory(database: DatabaseDep) -> AsyncSessionFactory:
    return database.read_sessions


ReadSessionFactoryDep = Annotated[AsyncSessionFactory, Depends(get_read_session_factory)]


async def get_read_session(sessions: ReadSessionFactoryDep) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session


# For routes that only read: no transaction, one round trip per query; writes raise.
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
