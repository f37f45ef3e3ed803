"""Per-test isolation.

By default each test runs inside a transaction that is rolled back; sessions
join it through savepoints, so code under test may call commit() and rollback()
freely and nothing it does survives the test. Tests marked `isolated_db` get a
database of their own instead, cloned from the migrated template, for code that
needs real commits: several connections, advisory locks, concurrent transactions.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

# Loaded with the plugins rather than on the first engine: the dialect import
# would otherwise count against every session's start-up.
import sqlalchemy.dialects.postgresql.asyncpg  # noqa: F401
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from {{ cookiecutter.package_name }}.db.database import Database
from {{ cookiecutter.package_name }}.db.engine import create_async_engine_from_settings
from {{ cookiecutter.package_name }}.db.session import (
    ReadOnlySession,
    make_read_session_factory,
    make_session_factory,
)
from {{ cookiecutter.package_name }}.settings import Settings
from tests.harness.servers import SessionDatabase

ISOLATED_MARKER = "isolated_db"


def engine_for(url: str) -> AsyncEngine:
    return create_async_engine_from_settings(Settings(database_url=SecretStr(url)), pool="harness")


@asynccontextmanager
async def isolated_engine(database: SessionDatabase) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh clone of the migrated template, as the application role;
    the clone is dropped afterwards."""
    name, url = database.clones.take()
    engine = engine_for(database.app_role.login(url).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        await engine.dispose()
        database.clones.release(name)


@asynccontextmanager
async def rolled_back_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            if transaction.is_active:
                await transaction.rollback()


def savepoint_sessions(
    connection: AsyncConnection, session_class: type[Session] = Session
) -> async_sessionmaker[AsyncSession]:
    """Sessions bound to the test's connection; their commits release savepoints."""
    return async_sessionmaker(
        bind=connection,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
        sync_session_class=session_class,
    )


@dataclass(frozen=True)
class DatabaseScope:
    """What one test works with: a connection, session factories and a session."""

    connection: AsyncConnection
    sessions: async_sessionmaker[AsyncSession]
    session: AsyncSession
    engine: AsyncEngine
    isolated: bool

    @property
    def read_sessions(self) -> async_sessionmaker[AsyncSession]:
        """Read-only sessions: autocommit when isolated, else inside the test's transaction."""
        if self.isolated:
            return make_read_session_factory(
                self.engine.execution_options(isolation_level="AUTOCOMMIT")
            )
        return savepoint_sessions(self.connection, ReadOnlySession)

    @property
    def database(self) -> Database:
        """The test's sessions in the shape the app holds its database in."""
        return Database(
            engine=self.engine,
            read_engine=self.engine,
            sessions=self.sessions,
            read_sessions=self.read_sessions,
        )


@asynccontextmanager
async def database_scope(engine: AsyncEngine, *, isolated: bool) -> AsyncIterator[DatabaseScope]:
    """Savepoint sessions in a rolled-back transaction, or, isolated, sessions that commit."""
    sessions: async_sessionmaker[AsyncSession] | None = None
    session: AsyncSession | None = None
    try:
        async with rolled_back_connection(engine) as connection:
            sessions = make_session_factory(engine) if isolated else savepoint_sessions(connection)
            session = sessions()
            yield DatabaseScope(connection, sessions, session, engine, isolated)
    finally:
        # Closed after the outer rollback, which already discarded its savepoint:
        # one round trip fewer per test.
        if session is not None:
            await session.close()
