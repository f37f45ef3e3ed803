"""Which server each read runs on, and what each caller's reads must see.

A replica serves reads while its checks (checks.py) find it answering, in
recovery, on the primary's cluster and no further behind than
DB_REPLICA_MAX_LAG_MS, and only once it has replayed the caller's own commits
(read_after.py); otherwise the read runs on the primary. Every change of a
replica's state, and of whether any replica is usable, is logged once.
"""

import asyncio
import logging
import math
from enum import IntEnum
from typing import Any

from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.package_name }}.db.engine import create_replica_engine_from_settings
from {{ cookiecutter.package_name }}.db.replicas.checks import (
    CHECK_FAILURES,
    CHECK_TIMEOUT_SECONDS,
    ReplicaChecks,
    describe,
)
from {{ cookiecutter.package_name }}.db.replicas.failures import replica_url, watch_connections
from {{ cookiecutter.package_name }}.db.replicas.read_after import ReadAfter, current_read_after
from {{ cookiecutter.package_name }}.db.replicas.servers import MISCONFIGURED, Replica, ReplicaState
from {{ cookiecutter.package_name }}.db.replicas.wal import CURRENT_POSITION, replayable
from {{ cookiecutter.package_name }}.db.statements import server_label
from {{ cookiecutter.package_name }}.observability import metrics
from {{ cookiecutter.package_name }}.settings import Settings

logger = logging.getLogger(__name__)
# Reads after a commit whose position could not be read go to the primary, until
# a check has seen the primary's position (past that commit's) for the process.
UNKNOWN_POSITION = 2**64 - 1
MISCONFIGURED_ADVICE = {
    ReplicaState.PROMOTED: "it is a primary: promoted, or the server DATABASE_URL names",
    ReplicaState.OTHER_CLUSTER: "it replicates another primary than DATABASE_URL's",
}


def read_timeouts(settings: Settings) -> dict[str, Any]:
    """asyncpg's limits on each round trip to a replica, which by default waits a minute
    to connect and forever for an answer: a replica that takes connections but never
    answers (a frozen machine) must not hold a read.

    Client-side: a frozen server cannot enforce its own statement_timeout. A session
    bounds its whole statement too (sessions.py); these bound what it does not see,
    such as the rows a stream fetches later. Connecting, which normally takes a few
    milliseconds, gets at most the checks' own timeout.
    """
    timeout = settings.replica_read_timeout_ms / 1000
    return {"timeout": min(timeout, CHECK_TIMEOUT_SECONDS), "command_timeout": timeout}


PRIMARY_SERVER = "primary"


class FallbackReason(IntEnum):
    """Why a read ran on the primary, most hopeful first (the metric's `reason` label)."""

    # Chosen on the primary: a replica had not replayed the caller's own writes yet,
    NOT_CAUGHT_UP = 1
    # every usable replica's pool was full,
    REPLICAS_BUSY = 2
    # or none was usable (lagging, unreachable, starting).
    NO_USABLE_REPLICA = 3
    # Moved during the read: the replica refused a connection or lost it,
    CONNECTION_LOST = 4
    # did not answer within DB_REPLICA_READ_TIMEOUT_MS,
    TIMEOUT = 5
    # or its pool had no connection free.
    POOL_FULL = 6

    @property
    def label(self) -> str:
        return self.name.lower()


def publish_state(replica: Replica) -> None:
    for state in ReplicaState:
        metrics.replica_state.labels(replica.server, state.value).set(state is replica.state)


class ReadReplicas:
    """The replicas of one process, their checks, and the choice of one for each read."""

    def __init__(
        self,
        replicas: list[Replica],
        primary_reads: AsyncEngine,
        *,
        max_lag_ms: int,
        check_interval_ms: int,
        read_timeout_ms: int,
    ) -> None:
        self.replicas = replicas
        self.primary_reads = primary_reads
        # Seconds a read may wait for a replica before it runs on the primary (sessions.py).
        self.read_timeout = read_timeout_ms / 1000
        self.checks = ReplicaChecks(
            replicas, primary_reads, max_lag_ms=max_lag_ms, interval_ms=check_interval_ms
        )
        # Outside a request, this process is the caller whose writes reads must see.
        self.process_read_after = ReadAfter()
        self._next = 0
        self._usable: bool | None = None
        self._checking: asyncio.Task[None] | None = None
        self._one_check = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, primary_reads: AsyncEngine) -> "ReadReplicas":
        replicas = [
            Replica(
                name=url.render_as_string(hide_password=True),
                server=server_label(url),
                engine=create_replica_engine_from_settings(
                    settings, replica_url(url), connect_args=read_timeouts(settings)
                ),
                checks=create_replica_engine_from_settings(
                    settings,
                    replica_url(url),
                    pool_size=1,
                    max_overflow=0,
                    connect_args={"timeout": CHECK_TIMEOUT_SECONDS},
                    pool="replica-check",
                    observed=False,
                ),
                capacity=settings.pool_size + settings.max_overflow,
            )
            for url in settings.replica_urls()
        ]
        read_replicas = cls(
            replicas,
            primary_reads,
            max_lag_ms=settings.replica_max_lag_ms,
            check_interval_ms=settings.replica_check_interval_ms,
            read_timeout_ms=settings.replica_read_timeout_ms,
        )
        for replica in replicas:
            read_replicas._watch(replica)
            publish_state(replica)
        return read_replicas

    def _watch(self, replica: Replica) -> None:
        # A read that loses its replica runs again on the primary (sessions.py); the next
        # reads go there at once instead of waiting for the next check.
        def on_lost(error: BaseException) -> None:
            self.refused(replica, error)

        watch_connections(replica.engine, on_lost)

    def read_after(self) -> ReadAfter:
        return current_read_after(self.process_read_after)

    def choose(self) -> Replica | None:
        """The least busy usable replica that has replayed the caller's writes, if any.

        Least busy rather than plain round robin: a replica that answers slowly keeps
        its connections longer and gets fewer reads. Ties go round robin.
        """
        needed = self.read_after().position
        count = len(self.replicas)
        first, self._next = self._next, (self._next + 1) % count
        chosen, chosen_in_use = None, 0
        # Why no replica was chosen, the most hopeful reason found.
        reason = FallbackReason.NO_USABLE_REPLICA
        for offset in range(count):
            replica = self.replicas[(first + offset) % count]
            if replica.state is not ReplicaState.OK:
                continue
            if replica.replayed < needed:
                reason = min(reason, FallbackReason.NOT_CAUGHT_UP)
                continue
            in_use = replica.in_use
            if in_use >= replica.capacity:
                reason = min(reason, FallbackReason.REPLICAS_BUSY)
            elif chosen is None or in_use < chosen_in_use:
                chosen, chosen_in_use = replica, in_use
        if chosen is None:
            metrics.read_fallbacks.labels(reason.label).inc()
            metrics.reads.labels(PRIMARY_SERVER).inc()
        else:
            metrics.reads.labels(chosen.server).inc()
        return chosen

    def remember_commit(self) -> None:
        """The current caller's reads must now see the commit it just made.

        Called by a session after its commit, inside SQLAlchemy's greenlet: the
        async engine's sync API is usable there.
        """
        try:
            with self.primary_reads.sync_engine.connect() as connection:
                position, block_size = connection.execute(CURRENT_POSITION).one()
        except (*CHECK_FAILURES, PoolTimeoutError) as error:
            logger.warning(
                "could not read the primary's WAL position after a commit (%s): the "
                "caller's reads run on the primary for now",
                describe(error),
            )
            self.read_after().advance(UNKNOWN_POSITION)
            return
        self.read_after().advance(replayable(int(position), block_size))

    def moved_to_primary(self, replica: Replica, reason: "FallbackReason") -> None:
        """A read that started on `replica` ran on the primary instead (sessions.py)."""
        metrics.read_fallbacks.labels(reason.label).inc()

    def refused(self, replica: Replica, error: BaseException) -> None:
        """A read could not connect to `replica`, or lost its connection: unusable until
        a check finds it back."""
        replica.lag_ms = None
        metrics.replica_lag.labels(replica.server).set(math.nan)
        self._set_state(replica, ReplicaState.UNREACHABLE, describe(error))
        self._log_routing()

    def start(self) -> None:
        """Check the replicas in the background from now on (in the running event loop)."""
        if self._checking is None or self._checking.done():
            self._checking = asyncio.get_running_loop().create_task(self._keep_checking())

    async def _keep_checking(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.checks.interval)

    async def check(self) -> None:
        """Check the primary's position, then each replica due a check, concurrently."""
        # One round at a time: each server has one connection for checks.
        async with self._one_check:
            position, findings = await self.checks.run()
        if position is not None and self.process_read_after.position == UNKNOWN_POSITION:
            # Past any commit whose own position could not be read: replicas may serve again.
            self.process_read_after.position = position
        for finding in findings:
            lag = finding.replica.lag_ms
            metrics.replica_lag.labels(finding.replica.server).set(math.nan if lag is None else lag)
            self._set_state(finding.replica, finding.state, finding.detail)
        self._log_routing()

    def _set_state(self, replica: Replica, state: ReplicaState, detail: str) -> None:
        if replica.state is state or replica.state in MISCONFIGURED:
            return
        previous, replica.state = replica.state, state
        publish_state(replica)
        if state in MISCONFIGURED:
            logger.error(
                "replica %s is not a replica of the primary (%s; %s): it serves no reads "
                "until DATABASE_REPLICA_URLS is corrected and the service restarted",
                replica.name,
                MISCONFIGURED_ADVICE[state],
                detail,
            )
        elif state is ReplicaState.OK:
            logger.info("replica %s serves reads (was %s)", replica.name, previous)
        elif state is not ReplicaState.STARTING:
            logger.warning("replica %s is %s (%s): it serves no reads", replica.name, state, detail)

    def _log_routing(self) -> None:
        if any(replica.state is ReplicaState.STARTING for replica in self.replicas):
            return
        usable = any(replica.state is ReplicaState.OK for replica in self.replicas)
        if usable == self._usable:
            return
        self._usable = usable
        if usable:
            logger.info("reads run on the replicas")
        else:
            logger.warning("no replica is usable: reads run on the primary")

    async def close(self) -> None:
        if self._checking is not None:
            self._checking.cancel()
            await asyncio.gather(self._checking, return_exceptions=True)
        for replica in self.replicas:
            await replica.engine.dispose()
            await replica.checks.dispose()
