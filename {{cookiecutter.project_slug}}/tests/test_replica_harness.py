"""The streaming replica fixtures: a real hot standby of the test cluster, one per process.

Also what keeps a standby from outliving its run: the last process out of a run,
the reaper of a killed run and Ctrl-C all stop it.
"""

import signal
import uuid
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from {{ cookiecutter.package_name }}.localpg.processes import is_running, postmaster_pid
from {{ cookiecutter.package_name }}.localpg.runs import shared_cluster
from {{ cookiecutter.package_name }}.localpg.scratch import locked, reap, scratch_root
from {{ cookiecutter.package_name }}.localpg.standby import create_standby
from tests.harness.databases import project_migrations
from tests.harness.replicas import ReplicaServer, connect
from tests.harness.servers import Owner, SessionDatabase
from tests.test_harness_runs import output_of, start_run, wait_for_report, write_tests

pytestmark = pytest.mark.harness

REPLICA_WAITING_TEST = """
import asyncio

async def test_wait_with_a_replica(replica, db_session):
    out = Path(os.environ["HARNESS_REPORT_DIR"]) / f"replica-{os.getpid()}.json"
    primary, standby = str(replica.primary.datadir), str(replica.standby.datadir)
    out.write_text(json.dumps({"data_directory": primary, "standby": standby}))
    await asyncio.sleep(120)
"""


async def scalar_on(url: str, statement: str) -> object:
    """The first column of the first row `statement` returns, on a connection of its own."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.scalar(text(statement))
    finally:
        await engine.dispose()


async def commit_on_primary(engine: AsyncEngine, *statements: str) -> None:
    async with engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


async def test_the_standby_is_in_recovery_and_streams(
    replica: ReplicaServer, replica_urls: list[str], db_engine: AsyncEngine, db_owner: Owner
) -> None:
    [url] = replica_urls
    assert await scalar_on(url, "SELECT pg_is_in_recovery()") is True
    # As the superuser: the service's role may not read the receiver's status.
    with connect(replica.standby) as connection:
        receiver = connection.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
    assert receiver == ("streaming",)
    await db_owner.execute("CREATE TABLE streamed (id int)")
    await commit_on_primary(db_engine, "INSERT INTO streamed VALUES (7)")
    replica.wait_caught_up()
    assert await scalar_on(url, "SELECT id FROM streamed") == 7


async def test_paused_replay_hides_a_commit_until_resumed(
    replica: ReplicaServer, replica_urls: list[str], db_engine: AsyncEngine, db_owner: Owner
) -> None:
    [url] = replica_urls
    await db_owner.execute("CREATE TABLE replayed (id int)")
    replica.wait_caught_up()
    replica.pause_replay()
    await commit_on_primary(db_engine, "INSERT INTO replayed VALUES (1)")
    # Received but not applied: the commit is on the standby, invisible.
    replica.wait_received()
    assert await scalar_on(url, "SELECT count(*) FROM replayed") == 0
    replica.resume_replay()
    replica.wait_caught_up()
    assert await scalar_on(url, "SELECT count(*) FROM replayed") == 1


async def test_a_stopped_replica_refuses_connections_then_catches_up_after_start(
    replica: ReplicaServer, replica_urls: list[str], db_engine: AsyncEngine, db_owner: Owner
) -> None:
    [url] = replica_urls
    await db_owner.execute("CREATE TABLE outage (id int)")
    replica.stop()
    assert not replica.running
    with pytest.raises(OSError, match="No such file or directory"):
        await scalar_on(url, "SELECT 1")
    await commit_on_primary(db_engine, "INSERT INTO outage VALUES (1)")
    replica.start()
    replica.wait_caught_up()
    assert await scalar_on(url, "SELECT count(*) FROM outage") == 1


def test_the_next_test_gets_the_replica_running_and_replaying(replica: ReplicaServer) -> None:
    replica.stop()
    replica.ready_for_test()
    assert replica.running
    replica.pause_replay()
    replica.ready_for_test()
    with connect(replica.standby) as connection:
        assert connection.execute("SELECT pg_is_wal_replay_paused()").fetchone() == (False,)


async def test_a_replica_test_is_isolated_without_the_marker(
    database: SessionDatabase,
    postgres_url: str,
    replica: ReplicaServer,
    replica_urls: list[str],
    db_session: AsyncSession,
    db_owner: Owner,
) -> None:
    own = make_url(postgres_url)
    on_standby = make_url(replica_urls[0])
    assert own.database != database.url.database
    assert own.database is not None
    assert own.database.startswith(database.template)
    assert on_standby.database == own.database
    assert on_standby.query["host"] != own.query["host"]
    # The test's session commits for real: what it commits reaches the standby.
    await db_owner.execute("CREATE TABLE committed (id int)")
    await db_session.execute(text("INSERT INTO committed VALUES (1)"))
    await db_session.commit()
    replica.wait_caught_up()
    assert await scalar_on(replica_urls[0], "SELECT count(*) FROM committed") == 1


def test_the_last_process_out_of_a_run_stops_a_standby_left_in_it(server_bindir: Path) -> None:
    name = f"standby-{uuid.uuid4().hex[:8]}"
    with shared_cluster(server_bindir, name, project_migrations()) as cluster:
        # As a killed process leaves it: running, never removed.
        standby = create_standby(cluster, cluster.datadir.parent / "standby-left", "left")
        pid = postmaster_pid(standby.datadir)
        assert pid is not None
        assert is_running(pid)
    assert not is_running(pid)
    assert not cluster.datadir.parent.exists()
    # Collects our child process, which the last one out has stopped.
    standby.stop()


# Runs a private cluster, also when TEST_DATABASE_URL is set.
@pytest.mark.usefixtures("server_bindir")
def test_the_next_session_reaps_a_killed_runs_standby(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    run = start_run(write_tests(tmp_path, extra=REPLICA_WAITING_TEST), reports)
    standby = Path(wait_for_report(run, reports)["standby"])
    pid = postmaster_pid(standby)
    assert pid is not None
    root = scratch_root()
    # Holding the lock keeps other sessions' reapers off this run until we look.
    with locked(root):
        run.send_signal(signal.SIGKILL)
        output_of(run, timeout=60)
        assert is_running(pid), "SIGKILL runs no clean-up: the standby runs on"
        reaped = reap(root)
    assert standby.parent.parent in reaped
    assert not standby.exists()
    assert not is_running(pid)


# Runs a private cluster, also when TEST_DATABASE_URL is set.
@pytest.mark.usefixtures("server_bindir")
def test_ctrl_c_leaves_no_standby(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    run = start_run(write_tests(tmp_path, extra=REPLICA_WAITING_TEST), reports)
    seen = wait_for_report(run, reports)
    standby = Path(seen["standby"])
    pid = postmaster_pid(standby)
    assert pid is not None
    run.send_signal(signal.SIGINT)
    assert "KeyboardInterrupt" in output_of(run, timeout=120)
    assert not is_running(pid)
    assert not Path(seen["data_directory"]).parent.exists()
