"""Read routing against a real streaming replica of the test cluster.

Each test has a database of its own on the primary, which the replica streams;
pausing the replica's replay makes its lag deterministic. Stopping it, or freezing
its processes, is a replica failing under reads, which must never fail a read
while the primary is up.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import event, insert, select, text
from sqlalchemy.exc import DBAPIError

from {{ cookiecutter.package_name }}.cli import parse_arguments, run
from {{ cookiecutter.package_name }}.db.database import Database
from {{ cookiecutter.package_name }}.db.replicas.read_after import reading_after
from {{ cookiecutter.package_name }}.db.replicas.servers import ReplicaState
from {{ cookiecutter.package_name }}.db.session import (
    LockInReadOnlySession,
    WriteInReadOnlySession,
    transaction,
)
from {{ cookiecutter.package_name }}.settings import Settings
from tests.harness.replicas import ReplicaServer
from tests.harness.servers import Owner
from tests.migration_copies import copy_migrations
from tests.replica_routing import (
    NOTES,
    SettingsFor,
    create_notes_table,
    eventually,
    frozen,
    on_replica,
    read_note,
    reading,
    replicas_of,
    routed_database,
    routed_settings,
    stop_while_serving,
    the_replica,
    until_state,
    write_note,
)

# DB_REPLICA_READ_TIMEOUT_MS for the tests that freeze the replica, and what a read
# may take beyond it: the read again on the primary, on a loaded machine.
READ_TIMEOUT_MS = 300
SLACK_SECONDS = 1.0
# A freeze longer than a read may wait (its timeout and the slack): a read held for all
# of it fails the test.
FREEZE_SECONDS = 1.5


@pytest.fixture
def settings_for(postgres_url: str, replica_urls: list[str]) -> SettingsFor:
    def settings(**overrides: Any) -> Settings:
        return routed_settings(postgres_url, replica_urls, **overrides)

    return settings


@pytest.fixture
async def notes_table(db_owner: Owner, replica: ReplicaServer) -> None:
    """The notes table, committed on the primary and replayed by the replica."""
    await create_notes_table(db_owner)
    replica.wait_caught_up()


@pytest.fixture
async def routed(
    settings_for: SettingsFor, notes_table: None, replica: ReplicaServer
) -> AsyncIterator[Database]:
    async with routed_database(settings_for()) as database:
        yield database


async def test_reads_run_on_the_replica_and_units_of_work_on_the_primary(
    routed: Database,
) -> None:
    assert the_replica(routed).state is ReplicaState.OK
    assert await on_replica(routed.read_sessions)
    async with transaction(routed.sessions) as session:
        assert not (await session.execute(text("SELECT pg_is_in_recovery()"))).scalar_one()


async def test_a_read_only_session_on_the_replica_still_refuses_writes_and_locks(
    routed: Database,
) -> None:
    async with routed.read_sessions() as session:
        assert session.info["read_replica"] is the_replica(routed)
        with pytest.raises(WriteInReadOnlySession):
            await session.execute(insert(NOTES).values(id=1, body="refused"))
        with pytest.raises(LockInReadOnlySession, match="inside transaction"):
            await session.execute(select(NOTES).with_for_update())


async def test_a_caller_reads_its_own_write_on_the_primary_until_the_replica_has_it(
    routed: Database, replica: ReplicaServer
) -> None:
    replica.pause_replay()
    with reading_after():
        await write_note(routed, 1, "mine")
        assert await read_note(routed.read_sessions, 1) == ("mine", False)
    replica.resume_replay()
    with reading_after():
        await write_note(routed, 2, "later")
        replica.wait_caught_up()
        await replicas_of(routed).check()
        assert await read_note(routed.read_sessions, 2) == ("later", True)


async def test_another_caller_may_read_older_data_within_the_lag_bound(
    routed: Database, replica: ReplicaServer
) -> None:
    replica.pause_replay()
    with reading_after():
        await write_note(routed, 1, "new")
    with reading_after():
        assert await read_note(routed.read_sessions, 1) == (None, True)


async def test_a_replica_past_the_lag_bound_serves_no_reads_until_it_catches_up(
    settings_for: SettingsFor, notes_table: None, replica: ReplicaServer
) -> None:
    async with routed_database(settings_for(replica_max_lag_ms=100)) as database:
        replica.pause_replay()
        with reading_after():
            await write_note(database, 1, "ahead of the replica")
        await until_state(database, ReplicaState.LAGGING)
        lag_ms = the_replica(database).lag_ms
        assert lag_ms is not None
        assert lag_ms > 100
        assert await read_note(database.read_sessions, 1) == ("ahead of the replica", False)
        replica.resume_replay()
        await until_state(database, ReplicaState.OK)
        assert await read_note(database.read_sessions, 1) == ("ahead of the replica", True)


async def test_reads_survive_the_replica_stopping_and_return_when_it_is_back(
    routed: Database, replica: ReplicaServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert await on_replica(routed.read_sessions)
    await stop_while_serving(replica)
    # The first read finds the replica gone and moves to the primary.
    assert not await on_replica(routed.read_sessions)
    assert the_replica(routed).state is ReplicaState.UNREACHABLE
    for _ in range(5):
        assert not await on_replica(routed.read_sessions)
    warnings = [r.getMessage() for r in caplog.records if "primary" in r.getMessage()]
    assert warnings == ["no replica is usable: reads run on the primary"]
    replica.start()
    await until_state(routed, ReplicaState.OK)
    assert await on_replica(routed.read_sessions)


async def test_a_statement_that_loses_its_replica_runs_on_the_primary_with_the_rest_of_its_session(
    routed: Database, replica: ReplicaServer
) -> None:
    in_recovery = text("SELECT pg_is_in_recovery()")
    async with routed.read_sessions() as session:
        assert (await session.execute(in_recovery)).scalar_one()
        await stop_while_serving(replica)
        assert not (await session.execute(in_recovery)).scalar_one()
        assert session.info["read_replica"] is None
        assert not (await session.scalar(in_recovery))
    assert the_replica(routed).state is ReplicaState.UNREACHABLE
    assert not await on_replica(routed.read_sessions)


async def test_a_statement_that_fails_on_its_own_fails_and_leaves_the_replica_serving(
    routed: Database,
) -> None:
    async with routed.read_sessions() as session:
        with pytest.raises(DBAPIError, match="division by zero"):
            await session.execute(text("SELECT 1 / 0"))
        assert session.info["read_replica"] is the_replica(routed)
        assert (await session.execute(text("SELECT pg_is_in_recovery()"))).scalar_one()
    assert the_replica(routed).state is ReplicaState.OK


async def test_reads_in_flight_as_the_replica_stops_are_answered_by_the_primary(
    routed: Database, replica: ReplicaServer
) -> None:
    # Which reads the stop catches, and where (connecting, between two statements, in
    # one), is a race: a few stops under a stream of reads hit every case.
    async def stop_under_reads() -> int:
        if not replica.running:
            replica.start()
        await until_state(routed, ReplicaState.OK)
        async with reading(routed.read_sessions) as reads:
            await eventually(lambda: reads.by_replica >= 20)
            await stop_while_serving(replica)
            await until_state(routed, ReplicaState.UNREACHABLE)
            answered = reads.answered
            await eventually(lambda: reads.answered >= answered + 20)
        return reads.moved

    moved = [await stop_under_reads() for _ in range(3)]
    assert sum(moved) > 0


async def test_reads_a_frozen_replica_holds_run_on_the_primary_after_the_read_timeout(
    settings_for: SettingsFor,
    notes_table: None,
    replica: ReplicaServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for(replica_read_timeout_ms=READ_TIMEOUT_MS)
    async with routed_database(settings) as database:
        async with reading(database.read_sessions) as reads:
            await eventually(lambda: reads.by_replica >= 20)
            with frozen(replica):
                await until_state(database, ReplicaState.UNREACHABLE)
                await asyncio.sleep(FREEZE_SECONDS)
        assert reads.moved > 0
        assert reads.slowest_seconds < READ_TIMEOUT_MS / 1000 + SLACK_SECONDS
        await until_state(database, ReplicaState.OK)
        assert await on_replica(database.read_sessions)
    assert_unreachable_for_a_timeout(caplog)


async def test_a_replica_that_accepts_no_connection_in_time_leaves_the_read_to_the_primary(
    settings_for: SettingsFor,
    notes_table: None,
    replica: ReplicaServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for(replica_read_timeout_ms=READ_TIMEOUT_MS)
    async with routed_database(settings) as database:
        # No read has run yet: the first one connects, to a server that never answers.
        with frozen(replica):
            started = time.monotonic()
            assert not await on_replica(database.read_sessions)
            elapsed = time.monotonic() - started
        assert elapsed < READ_TIMEOUT_MS / 1000 + SLACK_SECONDS
        assert the_replica(database).state is ReplicaState.UNREACHABLE
    assert_unreachable_for_a_timeout(caplog)


def assert_unreachable_for_a_timeout(caplog: pytest.LogCaptureFixture) -> None:
    """The replica was found unreachable, and the log says it timed out."""
    messages = [r.getMessage() for r in caplog.records]
    assert [m for m in messages if "unreachable (TimeoutError" in m]
    assert not [m for m in messages if "CancelledError" in m]


async def test_a_full_replica_pool_sends_the_next_read_to_the_primary(
    settings_for: SettingsFor, notes_table: None
) -> None:
    async with routed_database(settings_for(pool_size=1)) as database:
        async with database.read_sessions() as holding:
            await holding.execute(text("SELECT 1"))
            assert not await on_replica(database.read_sessions)
        assert await on_replica(database.read_sessions)


async def test_units_of_work_and_row_locks_never_touch_the_replica(
    routed: Database, replica: ReplicaServer
) -> None:
    replica_checkouts = []
    event.listen(
        the_replica(routed).engine.sync_engine,
        "checkout",
        lambda *args: replica_checkouts.append(args),
    )
    replica.pause_replay()
    await write_note(routed, 1, "locked")
    async with transaction(routed.sessions) as session:
        await session.execute(text("SELECT * FROM notes WHERE id = 1 FOR UPDATE"))
        await session.execute(text("UPDATE notes SET body = 'updated' WHERE id = 1"))
    async with transaction(routed.sessions) as session:
        body: str = (
            await session.execute(text("SELECT body FROM notes WHERE id = 1"))
        ).scalar_one()
    assert body == "updated"
    assert replica_checkouts == []


async def test_a_server_that_is_not_in_recovery_is_never_used_and_said_so(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The primary named as a replica: what a promoted replica looks like.
    settings = routed_settings(postgres_url, [postgres_url])
    async with routed_database(settings, usable=False) as database:
        assert the_replica(database).state is ReplicaState.PROMOTED
        assert not await on_replica(database.read_sessions)
        async with database.read_sessions() as session:
            assert session.info["read_replica"] is None
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert "the server DATABASE_URL names" in errors[0]
    assert "until DATABASE_REPLICA_URLS is corrected" in errors[0]


async def test_a_replica_of_another_cluster_is_never_used_and_said_so(
    settings_for: SettingsFor, replica: ReplicaServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Every cluster of a test run is copied from one initdb, so all share one system
    # identifier: the primary's, as this process recorded it, stands for another's.
    async with routed_database(settings_for()) as database:
        replicas = replicas_of(database)
        assert replicas.checks.primary_identity is not None
        replicas.checks.primary_identity += 1
        await replicas.check()
        assert the_replica(database).state is ReplicaState.OTHER_CLUSTER
        assert not await on_replica(database.read_sessions)
    [error] = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "replicates another primary than DATABASE_URL's" in error


async def test_at_start_up_a_replica_serves_no_reads_until_it_has_what_the_primary_had(
    settings_for: SettingsFor, notes_table: None, replica: ReplicaServer
) -> None:
    # Behind by an unknown amount: this process has not seen the primary move.
    replica.pause_replay()
    async with routed_database(settings_for(), usable=False) as ahead:
        await write_note(ahead, 1, "before start-up")
    async with routed_database(settings_for(), usable=False) as database:
        assert the_replica(database).state is ReplicaState.STARTING
        with reading_after():
            assert await read_note(database.read_sessions, 1) == ("before start-up", False)
        replica.resume_replay()
        await until_state(database, ReplicaState.OK)
        with reading_after():
            assert await read_note(database.read_sessions, 1) == ("before start-up", True)


async def test_an_unreachable_replica_is_checked_less_and_less_often(
    routed: Database, replica: ReplicaServer
) -> None:
    await stop_while_serving(replica)
    await until_state(routed, ReplicaState.UNREACHABLE)
    failed = the_replica(routed)
    await eventually(lambda: failed.failures >= 2)
    assert failed.lag_ms is None
    failures = failed.failures
    # Not due yet: a check right now leaves it alone.
    assert failed.next_check > time.monotonic()
    await replicas_of(routed).check()
    assert failed.failures == failures
    replica.start()
    await until_state(routed, ReplicaState.OK)
    assert failed.failures == 0


async def test_without_replicas_reads_are_not_routed(postgres_url: str) -> None:
    async with routed_database(Settings(database_url=SecretStr(postgres_url))) as database:
        assert database.replicas is None
        assert database.primary_read_sessions is database.read_sessions
        assert not await on_replica(database.read_sessions)


async def test_migrations_run_on_the_primary_with_replicas_configured(
    settings_for: SettingsFor,
    replica: ReplicaServer,
    db_owner: Owner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    copy = copy_migrations(tmp_path / "project", monkeypatch)
    copy.add(
        "where_it_ran",
        "op.execute('CREATE TABLE where_it_ran AS SELECT pg_is_in_recovery() AS on_replica')",
        "op.drop_table('where_it_ran')",
    )
    replica.pause_replay()
    migration_url = db_owner.url.render_as_string(hide_password=False)
    migrating = settings_for(migration_url=SecretStr(migration_url))
    await asyncio.to_thread(run, parse_arguments(["migrate"]), migrating)
    async with routed_database(settings_for(), usable=False) as database:
        async with transaction(database.sessions) as session:
            ran: bool | None = (
                await session.execute(text("SELECT on_replica FROM where_it_ran"))
            ).scalar()
        assert ran is False
    # The paused replica has not got the revision: nothing was written to it.
    [replica_url] = settings_for().replica_urls()
    on_the_replica = Settings(database_url=SecretStr(replica_url.render_as_string(False)))
    async with routed_database(on_the_replica) as direct:
        assert await on_replica(direct.read_sessions)
        async with direct.read_sessions() as session:
            exists = await session.execute(text("SELECT to_regclass('where_it_ran')"))
            assert exists.scalar() is None
