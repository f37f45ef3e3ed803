"""A replica as one process knows it: its pools and what the last check found."""

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool


class ReplicaState(StrEnum):
    # Not yet seen to have replayed what the primary had when this process started.
    STARTING = "starting"
    OK = "ok"
    LAGGING = "lagging"
    UNREACHABLE = "unreachable"
    # Out of recovery: a primary now, or the server DATABASE_URL names.
    PROMOTED = "promoted"
    # A replica of some other primary.
    OTHER_CLUSTER = "other_cluster"


# States only a new configuration ends: the service must not guess which server is which.
MISCONFIGURED = frozenset({ReplicaState.PROMOTED, ReplicaState.OTHER_CLUSTER})


@dataclass(eq=False)
class Replica:
    # The URL, password masked, for log lines; `server` (host:port/database) for metrics.
    name: str
    server: str
    engine: AsyncEngine
    checks: AsyncEngine
    # Connections its pool may hand out; a read that would wait for one goes elsewhere.
    capacity: int
    state: ReplicaState = ReplicaState.STARTING
    lag_ms: int | None = None
    replayed: int = 0
    # Failed checks in a row, and when the next one is due: an absent replica is asked
    # less and less often.
    failures: int = 0
    next_check: float = 0.0

    @property
    def in_use(self) -> int:
        pool = self.engine.pool
        return pool.checkedout() if isinstance(pool, QueuePool) else 0
