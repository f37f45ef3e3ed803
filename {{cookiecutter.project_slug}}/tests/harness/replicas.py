"""A streaming replica of the test cluster, for tests of code that reads from replicas.

Each test process gets one hot standby of the run's cluster (localpg.standby),
started when a test first asks for it and removed at the end of the session. It
is a real standby: it lags the primary as a production replica does, so the
`replica` fixture waits for it to catch up before a test starts, and a test can
pause its replay, or stop it, to see what the code under test does then.
"""

import contextlib
import time
from collections.abc import Iterator

import psycopg
from psycopg.rows import TupleRow
from sqlalchemy import URL

from {{ cookiecutter.package_name }}.localpg.cluster import SUPERUSER, Cluster
from {{ cookiecutter.package_name }}.localpg.standby import standby_of

POLL_SECONDS = 0.005


def connect(cluster: Cluster, *, autocommit: bool = True) -> psycopg.Connection[TupleRow]:
    return psycopg.connect(
        host=str(cluster.socket_dir), user=SUPERUSER, dbname="postgres", autocommit=autocommit
    )


class ReplicaServer:
    """This process's hot standby of the test cluster."""

    def __init__(self, primary: Cluster, standby: Cluster) -> None:
        self.primary = primary
        self.standby = standby

    def url(self, database: str) -> URL:
        """`database` on the standby (asyncpg URL)."""
        return self.standby.url(database)

    def pause_replay(self, timeout: float = 30.0) -> None:
        """Stop applying WAL: commits on the primary from now on stay invisible here."""
        with connect(self.standby) as connection:
            connection.execute("SELECT pg_wal_replay_pause()")
            # Before 14 there is no telling a requested pause from one that has happened.
            if connection.info.server_version < 140000:
                return
            self._wait_until(
                connection,
                "SELECT pg_get_wal_replay_pause_state() = 'paused'",
                (),
                timeout,
                "replay to pause",
            )

    def resume_replay(self) -> None:
        with connect(self.standby) as connection:
            connection.execute("SELECT pg_wal_replay_resume()")

    def stop(self) -> None:
        """Shut the standby down, as a replica that goes away; start() brings it back."""
        self.standby.stop()

    def start(self) -> None:
        self.standby.start()

    @property
    def running(self) -> bool:
        return self.standby.running

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        """Wait until the standby has replayed everything committed on the primary so far."""
        self._wait_for_primary("pg_last_wal_replay_lsn()", timeout, "replay")

    def wait_received(self, timeout: float = 30.0) -> None:
        """Wait until the standby has received (not necessarily replayed) everything
        committed on the primary so far."""
        self._wait_for_primary("pg_last_wal_receive_lsn()", timeout, "receive")

    def ready_for_test(self) -> None:
        """Running, replaying, and caught up with the primary: whatever a test before did."""
        if not self.running:
            self.start()
        self.resume_replay()
        self.wait_caught_up()

    def flushed_primary_lsn(self) -> str:
        """The primary's WAL position once all it has committed so far is flushed.

        The test cluster commits without waiting for the flush, and a walsender sends
        only flushed WAL. A transaction that writes WAL (here a message, which changes
        nothing) and commits synchronously flushes everything before it; one that only
        takes an xid commits without a flush.
        """
        with connect(self.primary, autocommit=False) as connection:
            connection.execute("SET LOCAL synchronous_commit = on")
            connection.execute("SELECT pg_logical_emit_message(true, 'replica-flush', '')")
            connection.commit()
            flushed = connection.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
        assert flushed is not None
        return str(flushed[0])

    def _wait_for_primary(self, standby_position: str, timeout: float, what: str) -> None:
        target = self.flushed_primary_lsn()
        with connect(self.standby) as connection:
            self._wait_until(
                connection,
                f"SELECT {standby_position} >= %s::pg_lsn",
                (target,),
                timeout,
                f"the standby to {what} the primary's WAL up to {target}",
            )

    def _wait_until(
        self,
        connection: psycopg.Connection[TupleRow],
        query: str,
        parameters: tuple[str, ...],
        timeout: float,
        what: str,
    ) -> None:
        deadline = time.monotonic() + timeout
        while not (row := connection.execute(query, parameters).fetchone()) or not row[0]:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"waited {timeout} s for {what}; the standby's log, "
                    f"{self.standby.log_path}, ends with:\n{self.standby.log_tail(lines=5)}"
                )
            time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def replica_of(primary: Cluster) -> Iterator[ReplicaServer]:
    """A ReplicaServer of `primary` for this process, removed after the block."""
    with standby_of(primary) as standby:
        yield ReplicaServer(primary, standby)
