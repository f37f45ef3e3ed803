"""The database of one process: its engines and session factories, built and disposed together.

The app's lifespan, the benchmarks and scripts build one from the settings;
whatever needs a unit of work takes `database.sessions`, and read-only work
`database.read_sessions`, which run on the replicas when DATABASE_REPLICA_URLS
names any (db/replicas/).
"""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.package_name }}.db.engine import create_async_engine_from_settings, read_engine_for
from {{ cookiecutter.package_name }}.db.replicas.router import ReadReplicas
from {{ cookiecutter.package_name }}.db.replicas.sessions import RoutedReadSessions, make_tracked_session_factory
from {{ cookiecutter.package_name }}.db.session import (
    AsyncSessionFactory,
    make_read_session_factory,
    make_session_factory,
)
from {{ cookiecutter.package_name }}.settings import Settings


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    # Autocommit connections for read-only sessions (the engine itself behind PgBouncer).
    read_engine: AsyncEngine
    sessions: AsyncSessionFactory
    read_sessions: AsyncSessionFactory
    # Where reads may run besides the primary; None without replicas.
    replicas: ReadReplicas | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Database":
        engine = create_async_engine_from_settings(settings)
        read_engine = read_engine_for(engine, settings)
        if not settings.replica_urls():
            return cls(
                engine=engine,
                read_engine=read_engine,
                sessions=make_session_factory(engine),
                read_sessions=make_read_session_factory(read_engine),
            )
        replicas = ReadReplicas.from_settings(settings, read_engine)
        return cls(
            engine=engine,
            read_engine=read_engine,
            sessions=make_tracked_session_factory(engine, replicas),
            read_sessions=RoutedReadSessions(replicas),
            replicas=replicas,
        )

    @property
    def primary_read_sessions(self) -> AsyncSessionFactory:
        """Read-only sessions that always run on the primary, such as readiness checks."""
        if self.replicas is None:
            return self.read_sessions
        return make_read_session_factory(self.read_engine)

    async def start(self) -> None:
        """Know the replicas' states before the first read (else reads start on the primary)."""
        if self.replicas is not None:
            await self.replicas.check()
            self.replicas.start()

    async def dispose(self) -> None:
        """Stop checking replicas; close every pooled connection of every engine."""
        if self.replicas is not None:
            await self.replicas.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
