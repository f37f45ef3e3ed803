"""Sessions with replicas: units of work on the primary, reads where ReadReplicas says.

A unit of work's commit moves its caller's read position (read_after.py). A
read-only session runs on the replica chosen when it is created, or on the
primary. If that replica refuses the connection the session asks for, loses it
during a statement (failures.py), or has not answered within
DB_REPLICA_READ_TIMEOUT_MS (deadline.py), the session moves to the primary with
that statement and all that follow: a read has no effect, so running it again
there is safe, and the caller gets its answer instead of the replica's failure.
"""

from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from {{ cookiecutter.package_name }}.db.errors import connection_lost
from {{ cookiecutter.package_name }}.db.replicas.deadline import Deadline
from {{ cookiecutter.package_name }}.db.replicas.router import FallbackReason, ReadReplicas
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
    # The time limit of the statement running on a replica, if one is.
    _deadline: Deadline | None = None

    def get_bind(self, *args: Any, **kwargs: Any) -> Engine:
        server: AsyncEngine = self.info[SERVER]
        return server.sync_engine

    def _connection_for_bind(self, engine: Any, *args: Any, **kwargs: Any) -> Connection:
        # Where every session connects (SQLAlchemy's own name, unchanged since 1.4; the
        # replica tests fail if that changes). Catching the refusal here costs nothing
        # per read; connecting ahead, as the session is entered, cost 7% more CPU per read.
        try:
            return super()._connection_for_bind(engine, *args, **kwargs)
        except InvalidRequestError:
            # The session's own state (closed, misused): no server was asked.
            raise
        except Exception as error:
            # Whatever else stops a replica's connection, the driver's own errors too:
            # a server that goes away as the pool sets a new connection up raises them
            # unwrapped.
            if self.info[REPLICA] is None:
                raise
            # A full pool is busy, not gone: no reason to stop using the replica.
            primary = self._move_to_primary(error, refused=not isinstance(error, PoolTimeoutError))
            return super()._connection_for_bind(primary.sync_engine, *args, **kwargs)

    def _execute_internal(self, *args: Any, **kwargs: Any) -> Any:
        # Where every statement runs: execute(), scalar(), scalars(), get() (SQLAlchemy's
        # own name since 2.0; the replica tests fail if that changes). An async session
        # has all rows by the time it returns, so a failure leaves nothing half-read;
        # stream() alone hands rows out as they come, and a failure after the first
        # is the caller's.
        replica: Replica | None = self.info[REPLICA]
        # An ORM load's own queries run within the statement that loads.
        if replica is None or self._deadline is not None:
            return super()._execute_internal(*args, **kwargs)
        replicas: ReadReplicas = self.info[REPLICAS]
        try:
            with Deadline(replicas.read_timeout) as self._deadline:
                return super()._execute_internal(*args, **kwargs)
        except Exception as error:
            if self.info[REPLICA] is None or not connection_lost(error):
                raise
            self._move_to_primary(error, refused=True)
        finally:
            self._deadline = None
        return super()._execute_internal(*args, **kwargs)

    def _move_to_primary(self, error: BaseException, *, refused: bool) -> AsyncEngine:
        """Run this statement and the rest of the session on the primary."""
        replicas: ReadReplicas = self.info[REPLICAS]
        replica: Replica = self.info[REPLICA]
        self.info[SERVER], self.info[REPLICA] = replicas.primary_reads, None
        if isinstance(error, PoolTimeoutError):
            reason = FallbackReason.POOL_FULL
        elif isinstance(error, TimeoutError) or (self._deadline and self._deadline.expired):
            reason = FallbackReason.TIMEOUT
        else:
            reason = FallbackReason.CONNECTION_LOST
        replicas.moved_to_primary(replica, reason)
        if self._deadline is not None:
            # The replica's time limit is not the primary's.
            self._deadline.lift()
        if refused:
            replicas.refused(replica, error)
        return replicas.primary_reads


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
