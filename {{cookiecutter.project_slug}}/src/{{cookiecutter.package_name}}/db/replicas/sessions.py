"""Sessions with replicas: units of work on the primary, reads where ReadReplicas says.

A unit of work's commit moves its caller's read position (read_after.py). A
read-only session runs on the replica chosen when it is created, or on the
primary; if that replica refuses the connection its first statement asks for,
the session moves to the primary, so the read still succeeds.
"""

from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from {{ cookiecutter.package_name }}.db.errors import CONNECTION_ERRORS
from {{ cookiecutter.package_name }}.db.replicas.router import ReadReplicas
from {{ cookiecutter.package_name }}.db.replicas.servers import Replica
from {{ cookiecutter.package_name }}.db.session import AsyncSessionFactory, ReadOnlySession

# Keys of Session.info.
REPLICAS = "read_replicas"
SERVER = "read_server"
REPLICA = "read_replica"


class UnitOfWorkSession(Session):
    """Tells the read routing about each commit, so that the caller's reads see it."""


@event.listens_for(UnitOfWorkSession, "after_commit")
def _remember_commit(session: Session) -> None:
    replicas: ReadReplicas = session.info[REPLICAS]
    replicas.remember_commit()


def make_tracked_session_factory(
    engine: AsyncEngine, replicas: ReadReplicas
) -> AsyncSessionFactory:
    """Units of work on the primary whose commits the read routing hears of."""
    return async_sessionmaker(
        engine,
        expire_on_commit=False,
        sync_session_class=UnitOfWorkSession,
        info={REPLICAS: replicas},
    )


class RoutedReadOnlySession(ReadOnlySession):
    def get_bind(self, *args: Any, **kwargs: Any) -> Engine:
        server: AsyncEngine = self.info[SERVER]
        return server.sync_engine

    def _connection_for_bind(self, engine: Any, *args: Any, **kwargs: Any) -> Connection:
        # Where every session connects (SQLAlchemy's own name, unchanged since 1.4; the
        # replica tests fail if that changes). Catching the refusal here costs nothing
        # per read; connecting ahead, as the session is entered, cost 7% more CPU per read.
        try:
            return super()._connection_for_bind(engine, *args, **kwargs)
        except (*CONNECTION_ERRORS, DBAPIError, PoolTimeoutError) as error:
            replica: Replica | None = self.info[REPLICA]
            if replica is None:
                raise
            replicas: ReadReplicas = self.info[REPLICAS]
            self.info[SERVER], self.info[REPLICA] = replicas.primary_reads, None
            # A full pool is busy, not gone: no reason to stop using the replica.
            if not isinstance(error, PoolTimeoutError):
                replicas.refused(replica, error)
            primary = replicas.primary_reads.sync_engine
            return super()._connection_for_bind(primary, *args, **kwargs)


class RoutedReadSessions(async_sessionmaker[AsyncSession]):
    """Read-only sessions, each on the server ReadReplicas chooses as it is created."""

    def __init__(self, replicas: ReadReplicas) -> None:
        super().__init__(
            sync_session_class=RoutedReadOnlySession,
            expire_on_commit=False,
        )
        self.replicas = replicas

    def __call__(self, **local_kw: Any) -> AsyncSession:
        self.replicas.start()
        replica = self.replicas.choose()
        server = replica.engine if replica is not None else self.replicas.primary_reads
        info = {REPLICAS: self.replicas, SERVER: server, REPLICA: replica}
        return super().__call__(info=info, **local_kw)
