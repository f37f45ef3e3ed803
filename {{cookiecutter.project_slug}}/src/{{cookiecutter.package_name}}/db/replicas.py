"""Streaming replicas for reads: which ones may serve a read now, and what each caller must see.

Each process checks every replica in the background (every
DB_REPLICA_CHECK_INTERVAL_MS): whether it answers, whether it is still a replica,
and how far behind the primary it is. Choosing one for a read then costs no round
trip. A replica is used only while it answers, is in recovery and lags by no more
than DB_REPLICA_MAX_LAG_MS; with none usable, reads run on the primary. Each
change of state is logged once.

Lag is measured in time, not bytes: the check records when the primary reached
each WAL position it saw, and a replica's lag is the age of the oldest position it
has not replayed yet. An idle primary therefore never makes a replica look
behind; the measure is as coarse as the check interval.
"""

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from {{ cookiecutter.package_name }}.db.engine import create_replica_engine_from_settings
from {{ cookiecutter.package_name }}.db.errors import CONNECTION_ERRORS
from {{ cookiecutter.package_name }}.db.read_after import ReadAfter, current_read_after
from {{ cookiecutter.package_name }}.db.wal import CURRENT_POSITION, REPLAY_STATE, replayable
from {{ cookiecutter.package_name }}.settings import Settings

logger = logging.getLogger(__name__)
# A check that gets no answer in this time finds the replica unreachable.
CHECK_TIMEOUT_SECONDS = 2.0
# Reads after a commit whose position could not be read go to the primary, until
# a check has seen the primary's position (past that commit's) for the process.
UNKNOWN_POSITION = 2**64 - 1
CHECK_FAILURES = (*CONNECTION_ERRORS, DBAPIError, TimeoutError)


class ReplicaState(StrEnum):
    STARTING = "starting"
    OK = "ok"
    LAGGING = "lagging"
    UNREACHABLE = "unreachable"
    PROMOTED = "promoted"


@dataclass(eq=False)
class Replica:
    """One replica: its pool for reads, its connection for checks, what the last check found."""

    name: str
    engine: AsyncEngine
    checks: AsyncEngine
    # Connections its pool may hand out; a read that would wait for one goes elsewhere.
    capacity: int
    state: ReplicaState = ReplicaState.STARTING
    lag_ms: int | None = None
    replayed: int = 0

    @property
    def in_use(self) -> int:
        pool = self.engine.pool
        return pool.checkedout() if isinstance(pool, QueuePool) else 0


class PrimaryProgress:
    """When each WAL position was first seen on the primary, oldest first."""

    def __init__(self, max_samples: int) -> None:
        self.samples: deque[tuple[float, int]] = deque(maxlen=max_samples)

    def record(self, now: float, position: int) -> None:
        if not self.samples or self.samples[-1][1] != position:
            self.samples.append((now, position))

    def lag_ms(self, now: float, replayed: int) -> int:
        for seen_at, position in self.samples:
            if position > replayed:
                return round((now - seen_at) * 1000)
        return 0


class ReadReplicas:
    """The replicas of one process, their checks, and the choice of one for each read."""

    def __init__(
        self,
        replicas: list[Replica],
        primary_reads: AsyncEngine,
        *,
        max_lag_ms: int,
        check_interval_ms: int,
    ) -> None:
        self.replicas = replicas
        self.primary_reads = primary_reads
        self.max_lag_ms = max_lag_ms
        self.check_interval = check_interval_ms / 1000
        # Enough samples to tell a lag past the bound, at one per check.
        self.progress = PrimaryProgress(max_lag_ms // check_interval_ms + 16)
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
                engine=create_replica_engine_from_settings(settings, url),
                checks=create_replica_engine_from_settings(
                    settings, url, pool_size=1, max_overflow=0
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
        )
        for replica in replicas:
            read_replicas._hear_of_disconnects(replica)
        return read_replicas

    def _hear_of_disconnects(self, replica: Replica) -> None:
        # A read that loses its replica mid-statement fails; the next ones go elsewhere
        # at once instead of waiting for the next check.
        def on_error(context: ExceptionContext) -> None:
            if context.is_disconnect:
                self.refused(replica, context.original_exception)

        event.listen(replica.engine.sync_engine, "handle_error", on_error)

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
        for offset in range(count):
            replica = self.replicas[(first + offset) % count]
            if replica.state is not ReplicaState.OK or replica.replayed < needed:
                continue
            in_use = replica.in_use
            if in_use < replica.capacity and (chosen is None or in_use < chosen_in_use):
                chosen, chosen_in_use = replica, in_use
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
                type(error).__name__,
            )
            self.read_after().advance(UNKNOWN_POSITION)
            return
        self.read_after().advance(replayable(int(position), block_size))

    def refused(self, replica: Replica, error: BaseException) -> None:
        """A read could not connect to `replica`: unusable until a check finds it back."""
        self._set_state(replica, ReplicaState.UNREACHABLE, f"{type(error).__name__}")
        self._log_routing()

    def start(self) -> None:
        """Check the replicas in the background from now on (in the running event loop)."""
        if self._checking is None or self._checking.done():
            self._checking = asyncio.get_running_loop().create_task(self._keep_checking())

    async def _keep_checking(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.check_interval)

    async def check(self) -> None:
        """Check the primary's position, then each replica, concurrently."""
        # One check at a time: each server has one connection for checks.
        async with self._one_check:
            await self._check_all()

    async def _check_all(self) -> None:
        now = time.monotonic()
        try:
            async with (
                asyncio.timeout(CHECK_TIMEOUT_SECONDS),
                self.primary_reads.connect() as connection,
            ):
                position, block_size = (await connection.execute(CURRENT_POSITION)).one()
            position = replayable(int(position), block_size)
            self.progress.record(now, position)
            # Past any commit whose own position could not be read: reads may use replicas again.
            if self.process_read_after.position == UNKNOWN_POSITION:
                self.process_read_after.position = position
        except CHECK_FAILURES:
            # The primary's own trouble shows elsewhere (/health/ready); lags stay as they were.
            pass
        await asyncio.gather(*(self._check(replica, now) for replica in self.replicas))
        self._log_routing()

    async def _check(self, replica: Replica, now: float) -> None:
        try:
            async with (
                asyncio.timeout(CHECK_TIMEOUT_SECONDS),
                replica.checks.connect() as connection,
            ):
                in_recovery, replayed = (await connection.execute(REPLAY_STATE)).one()
        except CHECK_FAILURES as error:
            self._set_state(replica, ReplicaState.UNREACHABLE, type(error).__name__)
            return
        if not in_recovery:
            self._set_state(replica, ReplicaState.PROMOTED, "")
            return
        replica.replayed = int(replayed or 0)
        replica.lag_ms = self.progress.lag_ms(now, replica.replayed)
        state = ReplicaState.OK if replica.lag_ms <= self.max_lag_ms else ReplicaState.LAGGING
        self._set_state(replica, state, f"{replica.lag_ms} ms behind")

    def _set_state(self, replica: Replica, state: ReplicaState, detail: str) -> None:
        # A promoted replica stays out until the service is reconfigured.
        if replica.state in (state, ReplicaState.PROMOTED):
            return
        previous, replica.state = replica.state, state
        if state is ReplicaState.PROMOTED:
            logger.error(
                "replica %s is no longer in recovery: it was promoted, or is not a replica. "
                "It serves no reads until DATABASE_REPLICA_URLS is corrected and the service "
                "restarted",
                replica.name,
            )
        elif state is ReplicaState.OK:
            logger.info("replica %s serves reads (was %s)", replica.name, previous)
        else:
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
