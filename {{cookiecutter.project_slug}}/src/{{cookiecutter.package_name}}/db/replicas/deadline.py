"""A time limit on a session's statement, set from the session's own synchronous code.

asyncpg's timeouts bound most round trips to a replica, not all: it closes the
prepared statements it no longer needs with no limit (after a new connection's
setup, or a statement cache eviction), and a frozen server holds that for as long
as it stays frozen. Only a deadline on the whole statement bounds it. A session
runs in SQLAlchemy's greenlet, inside the task that awaits it, where
asyncio.timeout cannot be entered; Deadline does what it does from there: cancel
the task when time is up, and turn that cancellation, and only that one, into a
TimeoutError. (Running the statement in a coroutine under asyncio.timeout, in a
greenlet of its own, cost 10-15% more CPU per read.)
"""

import asyncio
from types import TracebackType


class Deadline:
    """`with Deadline(seconds):` in code that runs in a task through SQLAlchemy's greenlet."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False

    def __enter__(self) -> "Deadline":
        task = asyncio.current_task()
        assert task is not None, "a deadline needs a running task"
        self._task = task
        # Cancellations asked for before: those are not this deadline's.
        self._cancelling = task.cancelling()
        self._timer = asyncio.get_running_loop().call_later(self.seconds, self._expire)
        return self

    def _expire(self) -> None:
        self.expired = True
        self._task.cancel()

    def lift(self) -> None:
        """No time limit from now on, unless it has already expired."""
        self._timer.cancel()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        # As asyncio.timeout: once expired, the count of cancellations asked for is put
        # back, and the one raised is this deadline's unless another was asked for.
        if (
            self.expired
            and self._task.uncancel() <= self._cancelling
            and isinstance(error, asyncio.CancelledError)
        ):
            raise TimeoutError from error
