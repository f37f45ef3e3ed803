"""Helpers for the tests of read routing against the harness's real replica."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from pydantic import SecretStr
from sqlalchemy import column, table, text

from {{ cookiecutter.package_name }}.db.database import Database
from {{ cookiecutter.package_name }}.db.replicas.router import ReadReplicas
from {{ cookiecutter.package_name }}.db.replicas.servers import Replica, ReplicaState
from {{ cookiecutter.package_name }}.db.session import AsyncSessionFactory, transaction
from {{ cookiecutter.package_name }}.settings import Settings

NOTES_TABLE = "CREATE TABLE notes (id integer PRIMARY KEY, body text NOT NULL)"
NOTES = table("notes", column("id"), column("body"))
SettingsFor = Callable[..., Settings]


def routed_settings(postgres_url: str, replica_urls: list[str], **overrides: Any) -> Settings:
    """The test's database as primary, the replica's copy of it as the one replica."""
    options: dict[str, Any] = {
        "replica_max_lag_ms": 60_000,
        "replica_check_interval_ms": 20,
    } | overrides
    return Settings(
        database_url=SecretStr(postgres_url),
        database_replica_urls=SecretStr(",".join(replica_urls)),
        **options,
    )


@asynccontextmanager
async def routed_database(settings: Settings, *, usable: bool = True) -> AsyncIterator[Database]:
    """The database the app would build from `settings`, checking its replicas; with
    `usable`, once they serve reads (another process's writes since the replica caught
    up keep a replica starting until it has them)."""
    database = Database.from_settings(settings)
    try:
        await database.start()
        if usable and database.replicas is not None:
            replicas = database.replicas.replicas
            await eventually(lambda: all(r.state is ReplicaState.OK for r in replicas))
        yield database
    finally:
        await database.dispose()


def replicas_of(database: Database) -> ReadReplicas:
    assert database.replicas is not None
    return database.replicas


def the_replica(database: Database) -> Replica:
    [replica] = replicas_of(database).replicas
    return replica


async def on_replica(sessions: AsyncSessionFactory) -> bool:
    """Whether a read-only session from `sessions` runs on a replica."""
    async with sessions() as session:
        in_recovery: bool = (await session.execute(text("SELECT pg_is_in_recovery()"))).scalar_one()
        return in_recovery


async def read_note(sessions: AsyncSessionFactory, note_id: int) -> tuple[str | None, bool]:
    """The note's body (None if the server has not got it) and whether a replica answered."""
    async with sessions() as session:
        row = (
            await session.execute(
                text("SELECT (SELECT body FROM notes WHERE id = :id), pg_is_in_recovery()"),
                {"id": note_id},
            )
        ).one()
        return row[0], row[1]


async def create_notes_table(postgres_url: str) -> None:
    async with (
        routed_database(Settings(database_url=SecretStr(postgres_url))) as database,
        transaction(database.sessions) as session,
    ):
        await session.execute(text(NOTES_TABLE))


async def write_note(database: Database, note_id: int, body: str) -> None:
    async with transaction(database.sessions) as session:
        await session.execute(
            text("INSERT INTO notes (id, body) VALUES (:id, :body)"), {"id": note_id, "body": body}
        )


async def eventually(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    """Wait for `condition` between the background checks; TimeoutError if it never holds."""
    async with asyncio.timeout(seconds):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


async def until_state(database: Database, state: ReplicaState) -> None:
    replica = the_replica(database)
    await eventually(lambda: replica.state is state)
