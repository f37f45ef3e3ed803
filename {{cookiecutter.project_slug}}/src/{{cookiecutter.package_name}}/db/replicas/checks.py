"""What each process finds out about its replicas in the background, so that choosing one
for a read costs no round trip.

Every DB_REPLICA_CHECK_INTERVAL_MS the primary's WAL position is sampled, then
each replica is asked whether it is in recovery, which cluster it copies and how
far it has replayed. Lag is measured in time, not bytes: the age of the oldest
primary position the replica has not replayed yet, so an idle primary never makes
a replica look behind, and the measure is as coarse as the interval. A replica
that has not replayed the first position this process saw is of unknown lag (at
start-up, one hours behind would otherwise look current): it serves no reads until
it has. A replica that does not answer is asked less and less often.
"""

import asyncio
import time
from collections import deque
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.package_name }}.db.errors import CONNECTION_ERRORS
from {{ cookiecutter.package_name }}.db.replicas.servers import Replica, ReplicaState
from {{ cookiecutter.package_name }}.db.replicas.wal import CURRENT_POSITION, replayable
from {{ cookiecutter.package_name }}.observability.tracing import untraced

# A check that gets no answer in this time finds the server unreachable.
CHECK_TIMEOUT_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 10.0
CHECK_FAILURES = (*CONNECTION_ERRORS, DBAPIError, TimeoutError)
SYSTEM_IDENTIFIER = text("SELECT system_identifier FROM pg_control_system()")
REPLICA_STATE = text(
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() - '0/0'::pg_lsn, "
    "(SELECT system_identifier FROM pg_control_system())"
)


def describe(error: BaseException) -> str:
    """The error's kind and the driver's first line: never SQL, parameters or passwords."""
    source = error
    if isinstance(error, DBAPIError) and error.orig is not None:
        # asyncpg's adapter keeps the asyncpg exception as the cause. Only there: a
        # timeout's cause is the cancellation it made, which would hide the timeout.
        source = error.orig.__cause__ or error.orig
    lines = str(source).strip().splitlines()
    return f"{type(source).__name__}: {lines[0]}"[:200] if lines else type(source).__name__


class PrimaryProgress:
    """When each WAL position was first seen on the primary, oldest first."""

    def __init__(self, max_samples: int) -> None:
        self.samples: deque[tuple[float, int]] = deque(maxlen=max_samples)
        self.first: int | None = None

    def record(self, now: float, position: int) -> None:
        if self.first is None:
            self.first = position
        if not self.samples or self.samples[-1][1] != position:
            self.samples.append((now, position))

    def lag_ms(self, now: float, replayed: int) -> int:
        for seen_at, position in self.samples:
            if position > replayed:
                return round((now - seen_at) * 1000)
        return 0

    def before_first(self, replayed: int) -> bool:
        """Whether `replayed` is short of the first position seen, or none was seen yet."""
        return self.first is None or replayed < self.first


@dataclass(frozen=True)
class Finding:
    replica: Replica
    state: ReplicaState
    detail: str


class ReplicaChecks:
    def __init__(
        self,
        replicas: list[Replica],
        primary: AsyncEngine,
        *,
        max_lag_ms: int,
        interval_ms: int,
    ) -> None:
        self.replicas = replicas
        self.primary = primary
        self.max_lag_ms = max_lag_ms
        self.interval = interval_ms / 1000
        # Enough samples to tell a lag past the bound, at one per check.
        self.progress = PrimaryProgress(max_lag_ms // interval_ms + 16)
        self.primary_identity: int | None = None

    async def run(self) -> tuple[int | None, list[Finding]]:
        """The primary's position (None if it did not answer), and what each replica due a
        check was found to be."""
        now = time.monotonic()
        # Several times a second on every process: in traces, noise. Their findings are
        # logged when a state changes, and are metrics (db_replica_state, ..._lag_...).
        with untraced():
            position = await self._primary_position(now)
            due = [replica for replica in self.replicas if replica.next_check <= now]
            findings = await asyncio.gather(*(self._check(replica, now) for replica in due))
        return position, findings

    async def _primary_position(self, now: float) -> int | None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS), self.primary.connect() as connection:
                if self.primary_identity is None:
                    identity: int = (await connection.execute(SYSTEM_IDENTIFIER)).scalar_one()
                    self.primary_identity = int(identity)
                position, block_size = (await connection.execute(CURRENT_POSITION)).one()
        except CHECK_FAILURES:
            # The primary's own trouble shows elsewhere (/health/ready); lags stay as they were.
            return None
        position = replayable(int(position), block_size)
        self.progress.record(now, position)
        return position

    async def _check(self, replica: Replica, now: float) -> Finding:
        try:
            async with (
                asyncio.timeout(CHECK_TIMEOUT_SECONDS),
                replica.checks.connect() as connection,
            ):
                in_recovery, replayed, identity = (await connection.execute(REPLICA_STATE)).one()
        except CHECK_FAILURES as error:
            replica.failures += 1
            backoff = self.interval * 2 ** min(replica.failures, 10)
            replica.next_check = now + min(backoff, MAX_BACKOFF_SECONDS)
            replica.lag_ms = None
            return Finding(replica, ReplicaState.UNREACHABLE, describe(error))
        replica.failures, replica.next_check = 0, 0.0
        if self.primary_identity is not None and int(identity) != self.primary_identity:
            detail = f"system identifier {identity}, the primary's {self.primary_identity}"
            return Finding(replica, ReplicaState.OTHER_CLUSTER, detail)
        if not in_recovery:
            return Finding(replica, ReplicaState.PROMOTED, "not in recovery")
        replica.replayed = int(replayed or 0)
        replica.lag_ms = self.progress.lag_ms(now, replica.replayed)
        detail = f"{replica.lag_ms} ms behind"
        if replica.lag_ms > self.max_lag_ms:
            return Finding(replica, ReplicaState.LAGGING, detail)
        if self.progress.before_first(replica.replayed):
            return Finding(replica, ReplicaState.STARTING, detail)
        return Finding(replica, ReplicaState.OK, detail)
