"""Helpers for the tests of read routing against the harness's real replica."""

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from sqlalchemy import column, table, text

from {{ cookiecutter.package_name }}.db.database import Database
from {{ cookiecutter.package_name }}.db.replicas.router import ReadReplicas
from {{ cookiecutter.package_name }}.db.replicas.servers import Replica, ReplicaState
from {{ cookiecutter.package_name }}.db.session import AsyncSessionFactory, transaction
from {{ cookiecutter.package_name }}.localpg.processes import postmaster_pid
from {{ cookiecutter.package_name }}.settings import Settings
from tests.harness.replicas import ReplicaServer
from tests.harness.servers import Owner

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


async def create_notes_table(owner: Owner) -> None:
    await owner.execute(NOTES_TABLE)


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


async def stop_while_serving(replica: ReplicaServer) -> None:
    """Stop the replica as it goes away under a running service: in a thread, while the
    event loop runs on, and for a few turns of the loop after, in which a serving loop
    reads the server's goodbye and the closed sockets."""
    await asyncio.to_thread(replica.stop)
    for _ in range(5):
        await asyncio.sleep(0)


@contextlib.contextmanager
def frozen(replica: ReplicaServer) -> Iterator[None]:
    """Every process of the standby stopped (SIGSTOP) within the block, as on a frozen
    machine: the kernel still accepts connections and queries, nothing answers them."""
    postmaster = postmaster_pid(replica.standby.datadir)
    assert postmaster is not None, "the standby is not running"
    # Each server process is a session of its own: no process group holds them all.
    stopped = [postmaster]
    try:
        # The postmaster first: it starts no process while its children are listed.
        os.kill(postmaster, signal.SIGSTOP)
        for child in children_of(postmaster):
            os.kill(child, signal.SIGSTOP)
            stopped.append(child)
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def children_of(pid: int) -> list[int]:
    listing = subprocess.run(
        ["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True, check=True
    ).stdout
    pairs = (line.split() for line in listing.splitlines() if line.strip())
    return [int(child) for child, parent in pairs if int(parent) == pid]


@dataclass
class Reads:
    """What a stream of reads (`reading`) saw so far."""

    answered: int = 0
    by_replica: int = 0
    # Begun on a replica, answered by the primary.
    moved: int = 0
    slowest_seconds: float = 0.0


@asynccontextmanager
async def reading(sessions: AsyncSessionFactory, readers: int = 8) -> AsyncIterator[Reads]:
    """`readers` tasks each reading through `sessions` back to back within the block; a
    read that fails fails the block, once the readers have stopped."""
    reads, done = Reads(), asyncio.Event()

    async def read() -> None:
        while not done.is_set():
            started = time.monotonic()
            async with sessions() as session:
                begun_on_replica = session.info["read_replica"] is not None
                query = text("SELECT pg_is_in_recovery()")
                in_recovery: bool = (await session.execute(query)).scalar_one()
            reads.answered += 1
            reads.by_replica += in_recovery
            reads.moved += begun_on_replica and not in_recovery
            reads.slowest_seconds = max(reads.slowest_seconds, time.monotonic() - started)

    tasks = [asyncio.create_task(read()) for _ in range(readers)]
    try:
        yield reads
    finally:
        done.set()
        await asyncio.gather(*tasks)
