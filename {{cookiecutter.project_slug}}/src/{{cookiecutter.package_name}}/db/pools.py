"""Pools that report how full they are: size, in use, overflow, callers waiting, the wait
for a connection and the waits that ran out (metrics.py).

Each pool reports changes (a checkout: one more in use), never its own totals, so
that the pools of one role (several engines in tests, several processes under
`--workers`) add up.
"""

import time
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, PoolProxiedConnection

from {{ cookiecutter.package_name }}.observability import metrics


@dataclass
class PoolMeters:
    pool: str
    server: str
    size: Gauge = field(init=False)
    checked_out: Gauge = field(init=False)
    overflow: Gauge = field(init=False)
    waiting: Gauge = field(init=False)
    wait: Histogram = field(init=False)
    timeouts: Counter = field(init=False)

    def __post_init__(self) -> None:
        labels = (self.pool, self.server)
        self.size = metrics.pool_size.labels(*labels)
        self.checked_out = metrics.pool_checked_out.labels(*labels)
        self.overflow = metrics.pool_overflow.labels(*labels)
        self.waiting = metrics.pool_waiting.labels(*labels)
        self.wait = metrics.pool_wait.labels(*labels)
        self.timeouts = metrics.pool_timeouts.labels(*labels)


class MeteredPool(AsyncAdaptedQueuePool):
    """The async engines' own pool, reporting to `meters` once `meter()` names it."""

    # Its log lines stay SQLAlchemy's pool's, at the level SQLAlchemy sets (WARNING).
    _sqla_logger_namespace = "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"
    meters: PoolMeters | None = None
    _reported_overflow = 0
    _reported_size = 0

    def meter(self, pool: str, server: str) -> None:
        """Report to the metrics of `pool` (its role) and `server` from now on."""
        self.meters = PoolMeters(pool, server)
        self.meters.checked_out.inc(self.checkedout())

    def recreate(self) -> "MeteredPool":
        # engine.dispose() replaces the pool with a new one of the same settings.
        fresh = super().recreate()
        assert isinstance(fresh, MeteredPool)
        if self.meters is not None:
            fresh.meter(self.meters.pool, self.meters.server)
        return fresh

    def connect(self) -> PoolProxiedConnection:
        if self.meters is None:
            return super().connect()
        meters = self.meters
        # Its size counts from its first use: the pool that engine.dispose() leaves in
        # place of a closed one, never used, adds nothing.
        if not self._reported_size:
            self._reported_size = self.size()
            meters.size.inc(self._reported_size)
        # Only a caller who finds no idle connection may wait: the others skip the gauge.
        may_wait = self.checkedin() == 0
        if may_wait:
            meters.waiting.inc()
        started = time.perf_counter()
        try:
            connection = super().connect()
        except PoolTimeoutError:
            meters.timeouts.inc()
            raise
        finally:
            if may_wait:
                meters.waiting.dec()
            meters.wait.observe(time.perf_counter() - started)
        meters.checked_out.inc()
        if self._max_overflow > 0:
            self._report_overflow()
        return connection

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        super()._do_return_conn(record)
        if self.meters is not None:
            self.meters.checked_out.dec()
            if self._max_overflow > 0:
                self._report_overflow()

    def dispose(self) -> None:
        super().dispose()
        if self.meters is not None and self._reported_size:
            # Its connections are closed; the pool that replaces it reports its own size.
            self.meters.size.dec(self._reported_size)
            self._reported_size = 0

    def _report_overflow(self) -> None:
        assert self.meters is not None
        overflow = max(0, self.overflow())
        self.meters.overflow.inc(overflow - self._reported_overflow)
        self._reported_overflow = overflow
