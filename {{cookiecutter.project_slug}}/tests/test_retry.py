"""run_in_transaction: a transaction PostgreSQL cancelled to break a conflict runs again."""

import asyncio
from collections.abc import Awaitable, Callable
{%- if cookiecutter.python_version == "3.11" %}
from typing import TypeVar
{%- endif %}

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from {{ cookiecutter.package_name }}.db.retry import is_retryable, run_in_transaction
from {{ cookiecutter.package_name }}.db.session import make_session_factory, transaction
from tests.harness.servers import Owner
{%- if cookiecutter.python_version == "3.11" %}

T = TypeVar("T")
{%- endif %}


class Attempts:
    """Counts the runs of the units of work it wraps, the retries of run_in_transaction."""

    def __init__(self) -> None:
        self.count = 0

    def counted{% if cookiecutter.python_version != "3.11" %}[T]{% endif %}(
        self, work: Callable[[AsyncSession], Awaitable[T]]
    ) -> Callable[[AsyncSession], Awaitable[T]]:
        async def attempt(session: AsyncSession) -> T:
            self.count += 1
            return await work(session)

        return attempt


@pytest.fixture
def attempts() -> Attempts:
    return Attempts()


@pytest.fixture
async def counter(db_engine: AsyncEngine, db_owner: Owner) -> async_sessionmaker[AsyncSession]:
    """Sessions on a committed one-row table; each session is its own connection."""
    await db_owner.execute(
        "CREATE TABLE counter (id int PRIMARY KEY, value int)", "INSERT INTO counter VALUES (1, 0)"
    )
    return make_session_factory(db_engine)


async def value(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(text("SELECT value FROM counter")) or 0)


def increment_with_conflicts(
    counter: async_sessionmaker[AsyncSession], attempts: Attempts, conflicts: int
) -> Callable[[AsyncSession], Awaitable[int]]:
    """Work that adds 1 to the value it read, and returns that value.

    In its first `conflicts` attempts another transaction adds 10 between the read and
    the write, so that PostgreSQL cancels the attempt with a serialization failure.
    """

    @attempts.counted
    async def increment(session: AsyncSession) -> int:
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        seen = int(await session.scalar(text("SELECT value FROM counter")) or 0)
        if attempts.count <= conflicts:
            # Another transaction changes the row after this one took its snapshot.
            async with transaction(counter) as other:
                await other.execute(text("UPDATE counter SET value = value + 10"))
        await session.execute(text("UPDATE counter SET value = :v"), {"v": seen + 1})
        return seen

    return increment


@pytest.mark.isolated_db
async def test_a_serialization_failure_is_retried_until_it_succeeds(
    counter: async_sessionmaker[AsyncSession], attempts: Attempts
) -> None:
    increment = increment_with_conflicts(counter, attempts, conflicts=1)
    seen = await run_in_transaction(increment, counter)
    assert attempts.count == 2
    assert seen == 10
    assert await value(counter) == 11


INCREMENT_ONE = text("UPDATE counter SET value = value + 1 WHERE id = :id")


@pytest.mark.isolated_db
async def test_opposite_lock_orders_deadlock_and_the_victim_is_retried(
    counter: async_sessionmaker[AsyncSession], attempts: Attempts, db_owner: Owner
) -> None:
    # A deadlock found in 50 ms rather than a second. Only a superuser may set it: before
    # the test's connections open, for its database.
    await db_owner.execute(
        f"ALTER DATABASE \"{db_owner.url.database}\" SET deadlock_timeout = '50ms'",
        "INSERT INTO counter VALUES (2, 0)",
    )
    both_hold_their_first_lock = asyncio.Barrier(2)

    async def lock_then_update(session: AsyncSession, first: int, second: int) -> None:
        await session.execute(INCREMENT_ONE, {"id": first})
        if attempts.count <= 2:
            await both_hold_their_first_lock.wait()
        await session.execute(INCREMENT_ONE, {"id": second})

    one_then_two = attempts.counted(lambda session: lock_then_update(session, 1, 2))
    two_then_one = attempts.counted(lambda session: lock_then_update(session, 2, 1))
    await asyncio.gather(
        run_in_transaction(one_then_two, counter), run_in_transaction(two_then_one, counter)
    )
    # PostgreSQL cancelled one of the two; it ran again once the other had committed.
    assert attempts.count == 3
    async with counter() as session:
        rows = await session.execute(text("SELECT id, value FROM counter ORDER BY id"))
        assert [tuple(row) for row in rows] == [(1, 2), (2, 2)]


async def test_other_errors_are_not_retried(
    db_sessions: async_sessionmaker[AsyncSession], attempts: Attempts
) -> None:
    @attempts.counted
    async def divide_by_zero(session: AsyncSession) -> None:
        await session.execute(text("SELECT 1 / 0"))

    with pytest.raises(DBAPIError, match="division by zero") as raised:
        await run_in_transaction(divide_by_zero, db_sessions)
    assert attempts.count == 1
    assert not is_retryable(raised.value)


@pytest.mark.isolated_db
async def test_gives_up_after_the_last_attempt(
    counter: async_sessionmaker[AsyncSession], attempts: Attempts
) -> None:
    always_conflicts = increment_with_conflicts(counter, attempts, conflicts=3)
    with pytest.raises(DBAPIError) as raised:
        await run_in_transaction(always_conflicts, counter, attempts=3)
    assert attempts.count == 3
    assert is_retryable(raised.value)
    # The three concurrent updates committed; no cancelled attempt's write did.
    assert await value(counter) == 30
