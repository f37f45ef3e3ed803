"""A migration stuck behind a long transaction: it gives up after the lock timeout, so
readers queued behind it get through; `migrate` tries again, and applies nothing by half.
A statement past the statement timeout fails, unless its revision raised the limit.

The revisions are the test's own, in a copy of migrations/, on a database of the
test's own cloned from the migrated one.
"""

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from pydantic import ValidationError
from sqlalchemy import URL

from {{ cookiecutter.package_name }}.db import migrations
from {{ cookiecutter.package_name }}.db.migration_limits import (
    MigrationLimits,
    MigrationLockTimeout,
    MigrationStatementTimeout,
)
from {{ cookiecutter.package_name }}.db.migrations import MIGRATION_LOCK, upgrade_database
from {{ cookiecutter.package_name }}.settings import Settings
from tests.harness.servers import SessionDatabase, connect
from tests.migration_copies import MigrationsCopy, copy_migrations

# Long enough for a reader to queue behind the waiting ALTER, short enough for a quick test.
QUEUEING = MigrationLimits(
    lock_timeout_ms=200, statement_timeout_ms=5000, lock_attempts=2, first_backoff_seconds=0.05
)
MODES = {
    "revision per transaction": QUEUEING,
    "one transaction (PgBouncer)": replace(QUEUEING, one_transaction=True),
}
# A revision that creates a table, then one that alters it: ALTER TABLE needs
# ACCESS EXCLUSIVE, which waits for every open transaction that read the table.
CREATE_PROBE = "op.create_table('lock_probe', sa.Column('id', sa.Integer, primary_key=True))"
ALTER_PROBE = """
op.create_table('lock_probe_side', sa.Column('id', sa.Integer, primary_key=True))
op.add_column('lock_probe', sa.Column('note', sa.Text))
"""
WAITING_ON_PROBE = """
    SELECT pid FROM pg_locks
    WHERE relation = 'lock_probe'::regclass AND mode = %s AND NOT granted
"""
READER_BEHIND = """
    SELECT coalesce(bool_or(%s = ANY(pg_blocking_pids(pid))), false) FROM pg_locks
    WHERE relation = 'lock_probe'::regclass AND mode = 'AccessShareLock' AND NOT granted
"""


@pytest.fixture
def clone_url(database: SessionDatabase) -> Iterator[URL]:
    """A database of the test's own, cloned from the migrated one."""
    name, url = database.clones.take()
    try:
        yield url.set(drivername="postgresql+psycopg")
    finally:
        database.clones.release(name)


@pytest.fixture
def copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MigrationsCopy:
    return copy_migrations(tmp_path / "project", monkeypatch)


@pytest.fixture
def probe_url(clone_url: URL, copy: MigrationsCopy) -> URL:
    """The clone with lock_probe created; the revision that alters it is pending."""
    copy.add("lock_probe_table", CREATE_PROBE, "op.drop_table('lock_probe')")
    copy.add("lock_probe_column", ALTER_PROBE)
    upgrade_database(clone_url, "lock_probe_table", QUEUEING)
    return clone_url


def wait_for(condition: Callable[[], object], what: str) -> object:
    deadline = time.monotonic() + 30
    while not (result := condition()):
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.005)
    return result


def waiting_pid(monitor: psycopg.Connection[tuple[object, ...]], mode: str) -> object:
    row = monitor.execute(WAITING_ON_PROBE, (mode,)).fetchone()
    return row[0] if row else None


def version_and_slow_probe(url: URL) -> tuple[object, ...]:
    with connect(url) as connection:
        row = connection.execute(
            "SELECT version_num, to_regclass('slow_probe') IS NOT NULL FROM alembic_version"
        ).fetchone()
    assert row is not None
    return tuple(row)


def schema_state(monitor: psycopg.Connection[tuple[object, ...]]) -> tuple[object, ...]:
    row = monitor.execute(
        """
        SELECT (SELECT version_num FROM alembic_version),
               to_regclass('lock_probe_side') IS NOT NULL,
               EXISTS (SELECT FROM information_schema.columns
                       WHERE table_name = 'lock_probe' AND column_name = 'note'),
               (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))
        """,
        (MIGRATION_LOCK,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def count_probe_rows(reader: psycopg.Connection[tuple[object, ...]]) -> object:
    row = reader.execute("SELECT count(*) FROM lock_probe").fetchone()
    return row[0] if row else None


@pytest.mark.parametrize("limits", MODES.values(), ids=MODES.keys())
def test_a_migration_behind_a_long_transaction_gives_up_and_lets_readers_through(
    probe_url: URL, limits: MigrationLimits, caplog: pytest.LogCaptureFixture
) -> None:
    # The threads outlast the blocker: should the migration wait on, closing
    # the blocker ends the wait.
    with (
        ThreadPoolExecutor(max_workers=2) as threads,
        connect(probe_url) as blocker,
        connect(probe_url, autocommit=True) as monitor,
        connect(probe_url, autocommit=True) as reader,
        caplog.at_level(logging.WARNING, logger=migrations.__name__),
    ):
        # An open transaction that has read the table holds ACCESS SHARE on it.
        blocker.execute("SELECT count(*) FROM lock_probe")
        migrating = threads.submit(upgrade_database, probe_url, "head", limits)
        migrator = wait_for(lambda: waiting_pid(monitor, "AccessExclusiveLock"), "the ALTER wait")
        # A reader that arrives now queues behind the waiting ALTER, not the blocker.
        reading = threads.submit(count_probe_rows, reader)
        reader_state = wait_for(
            lambda: (
                "queued behind the migration"
                if monitor.execute(READER_BEHIND, (migrator,)).fetchone() == (True,)
                else "finished first"
                if reading.done()
                else None
            ),
            "the reader queue or finish",
        )
        with pytest.raises(MigrationLockTimeout) as failure:
            migrating.result(timeout=60)
        # The reader got through once the ALTER gave up, while the blocker still reads.
        assert reading.result(timeout=60) == 0
        assert reader_state == "queued behind the migration"
        assert blocker.info.transaction_status == TransactionStatus.INTRANS
        # Nothing of the revision stayed, no lock is left, and the table answers.
        assert schema_state(monitor) == ("lock_probe_table", False, False, 0)
        assert count_probe_rows(monitor) == 0
    message = str(failure.value)
    assert "revision lock_probe_column could not get a lock within 0.2 s in 2 attempt(s)" in message
    assert "pg_stat_activity" in message
    assert "DB_MIGRATION_LOCK_TIMEOUT_MS" in message
    (retry,) = [record.getMessage() for record in caplog.records]
    assert retry.startswith("revision lock_probe_column waited more than 0.2 s for a lock")
    assert "ALTER TABLE lock_probe ADD COLUMN note" in retry
    assert "retrying in 0.05 s (attempt 2 of 2)" in retry


@pytest.mark.parametrize("limits", MODES.values(), ids=MODES.keys())
def test_a_migration_succeeds_when_the_long_transaction_ends_between_attempts(
    probe_url: URL, limits: MigrationLimits, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses = []
    with (
        connect(probe_url) as blocker,
        connect(probe_url, autocommit=True) as monitor,
    ):
        blocker.execute("SELECT count(*) FROM lock_probe")

        def blocker_commits_during_the_pause(seconds: float) -> None:
            pauses.append(seconds)
            blocker.commit()

        monkeypatch.setattr(migrations, "sleep", blocker_commits_during_the_pause)
        # No reader has to queue here: the first attempt may give up at once.
        upgrade_database(probe_url, "head", replace(limits, lock_timeout_ms=20))
        assert schema_state(monitor) == ("lock_probe_column", True, True, 0)
    assert pauses == [limits.first_backoff_seconds]


def test_a_statement_past_the_statement_timeout_fails_naming_its_revision(
    clone_url: URL, copy: MigrationsCopy
) -> None:
    before = version_and_slow_probe(clone_url)
    copy.add(
        "slow_probe",
        """
        op.execute("CREATE TABLE slow_probe ()")
        op.execute("SELECT pg_sleep(2)")
        """,
    )
    limits = MigrationLimits(lock_timeout_ms=1000, statement_timeout_ms=100, lock_attempts=3)
    with pytest.raises(MigrationStatementTimeout) as failure:
        upgrade_database(clone_url, "head", limits)
    message = str(failure.value)
    assert "revision slow_probe ran a statement for longer than 0.1 s" in message
    assert "SELECT pg_sleep(2)" in message
    assert "SET LOCAL statement_timeout" in message
    # Rolled back: the table the revision created first is gone too.
    assert version_and_slow_probe(clone_url) == before


def test_a_revision_can_raise_its_own_statement_timeout(
    clone_url: URL, copy: MigrationsCopy
) -> None:
    copy.add(
        "patient_probe",
        """
        op.execute("SET LOCAL statement_timeout = '30s'")
        op.execute("SELECT pg_sleep(0.2)")
        """,
    )
    limits = MigrationLimits(lock_timeout_ms=1000, statement_timeout_ms=100, lock_attempts=1)
    upgrade_database(clone_url, "head", limits)
    assert version_and_slow_probe(clone_url) == ("patient_probe", False)


def test_the_limits_come_from_the_settings() -> None:
    settings = Settings(
        migration_lock_timeout_ms=250,
        migration_statement_timeout_ms=9000,
        migration_lock_attempts=4,
        pgbouncer=True,
    )
    assert MigrationLimits.from_settings(settings) == MigrationLimits(
        lock_timeout_ms=250, statement_timeout_ms=9000, lock_attempts=4, one_transaction=True
    )
    with pytest.raises(ValidationError, match="migration_lock_attempts"):
        Settings(migration_lock_attempts=0)
