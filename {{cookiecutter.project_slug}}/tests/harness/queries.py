"""Count the SQL statements a block of code sends, to catch N+1 queries in tests."""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# What the assert_max_queries fixture returns: call it with a limit, use it as `with`.
QueryGuard = Callable[[int], AbstractContextManager[list[str]]]
# Sent by the per-test isolation, not by the code under test.
HARNESS_STATEMENTS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@contextmanager
def recorded_statements(target: AsyncConnection | AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements sent inside the block, in order, without the harness's own."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statement: str = args[2]
        if not statement.startswith(HARNESS_STATEMENTS):
            statements.append(statement)

    listened = target.sync_connection if isinstance(target, AsyncConnection) else target.sync_engine
    assert listened is not None
    event.listen(listened, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(listened, "before_cursor_execute", record)


@contextmanager
def max_queries(target: AsyncConnection | AsyncEngine, limit: int) -> Iterator[list[str]]:
    """Fail if the block sends more than `limit` statements: `with max_queries(engine, 2):`."""
    with recorded_statements(target) as statements:
        yield statements
    assert len(statements) <= limit, (
        f"{len(statements)} queries where at most {limit} were expected "
        "(an N+1 query? load relationships with selectinload()):\n" + "\n".join(statements)
    )
