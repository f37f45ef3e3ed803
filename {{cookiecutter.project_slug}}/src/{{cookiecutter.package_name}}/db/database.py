"""The database of one process: its engines and session factories, built and disposed together.

The app's lifespan, the benchmarks and scripts build one from the settings;
whatever needs a unit of work takes `database.sessions`, and read-only work
`database.read_sessions`.
"""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.package_name }}.db.engine import create_async_engine_from_settings, read_engine_for
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

    @classmethod
    def from_settings(cls, settings: Settings) -> "Database":
        engine = create_async_engine_from_settings(settings)
        read_engine = read_engine_for(engine, settings)
        return cls(
            engine=engine,
            read_engine=read_engine,
            sessions=make_session_factory(engine),
            read_sessions=make_read_session_factory(read_engine),
        )

    async def dispose(self) -> None:
        """Close every pooled connection of both engines."""
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
