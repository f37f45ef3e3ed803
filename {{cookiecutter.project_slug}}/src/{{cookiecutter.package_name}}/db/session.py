"""Session factories, the unit of work, and read-only sessions.

`expire_on_commit=False` keeps loaded attributes readable after commit; with
async sessions an expired attribute would need an implicit query, which fails.

Reads that need no transaction use read-only sessions on an engine whose
connections stay in autocommit mode: one round trip per query instead of three
(BEGIN, query, COMMIT). Each statement then sees its own snapshot; when
several reads must agree with each other, or for any write, use `transaction()`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session

from {{ cookiecutter.package_name }}.observability.tracing import span

AsyncSessionFactory = async_sessionmaker[AsyncSession]


class WriteInReadOnlySession(RuntimeError):
    def __init__(
        self, message: str = "a read-only session cannot write; use transaction() for changes"
    ) -> None:
        super().__init__(message)


class LockInReadOnlySession(WriteInReadOnlySession):
    def __init__(self) -> None:
        super().__init__(
            "a read-only session cannot lock rows (FOR UPDATE, FOR SHARE): its lock would "
            "end with the statement, and a replica refuses it; lock inside transaction()"
        )


class ReadOnlySession(Session):
    """Refuses INSERT, UPDATE, DELETE, row locks and flushes: an autocommit read never
    writes or locks, so it may run on a replica."""


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _refuse_write_statements(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise WriteInReadOnlySession
    # SQLAlchemy has no public accessor for a select's FOR UPDATE clause.
    if state.is_select and getattr(state.statement, "_for_update_arg", None) is not None:
        raise LockInReadOnlySession


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_flush(session: Session, flush_context: object, instances: object) -> None:
    raise WriteInReadOnlySession


def make_session_factory(engine: AsyncEngine) -> AsyncSessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


def make_read_session_factory(engine: AsyncEngine) -> AsyncSessionFactory:
    """Read-only sessions on `engine`: one round trip per query on an autocommit
    engine (create_read_engine_from_settings), in transactions on any other.

    Behind PgBouncer in transaction mode each statement of an autocommit session
    could land on another server connection than the one it was prepared on, so
    there reads use the ordinary engine (read_engine_for).
    """
    return async_sessionmaker(engine, sync_session_class=ReadOnlySession, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: AsyncSessionFactory) -> AsyncIterator[AsyncSession]:
    """A unit of work: commits when the block succeeds, rolls back on any exception."""
    with span("unit of work"):
        async with sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
