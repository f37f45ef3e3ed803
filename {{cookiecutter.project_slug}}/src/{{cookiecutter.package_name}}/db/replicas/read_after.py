"""Read-your-writes: the WAL position a caller's reads must see.

Each commit of a unit of work moves its caller's position to the commit's end
(router.py); a replica serves that caller's reads only once it has replayed
that far, the primary until then. The caller is whatever opened `reading_after`,
an HTTP request for the API (api/read_after.py), and otherwise the process.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class ReadAfter:
    """A position that only moves forward; shared by reference, so that a commit made
    in a copied context (a thread, a task) still moves it."""

    def __init__(self, position: int = 0) -> None:
        self.position = position

    def advance(self, position: int) -> None:
        self.position = max(self.position, position)


_current: ContextVar[ReadAfter | None] = ContextVar("read_after", default=None)


@contextmanager
def reading_after(position: int = 0) -> Iterator[ReadAfter]:
    """Within the block, reads see `position` and every commit made in it."""
    read_after = ReadAfter(position)
    token = _current.set(read_after)
    try:
        yield read_after
    finally:
        _current.reset(token)


def current_read_after(default: ReadAfter) -> ReadAfter:
    """The position of the innermost `reading_after` block, else `default`."""
    return _current.get() or default
