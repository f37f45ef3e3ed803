"""The repository's fast paths: COPY for large batches, upsert, and compiled-cache hits."""

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine.interfaces import CacheStats
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from {{ cookiecutter.package_name }}.db.session import transaction
from {{ cookiecutter.package_name }}.features.blog.models import Post, User
from {{ cookiecutter.package_name }}.features.blog.repositories import PostRepository, UserRepository
from {{ cookiecutter.package_name }}.repositories.base import COPY_THRESHOLD
from {{ cookiecutter.package_name }}.repositories.errors import AlreadyExists
from tests.factories import Make
from tests.features.blog.factories import PostFactory
from tests.harness.queries import QueryGuard
from tests.keys import new_key

# What the unique index on users' emails covers (features/blog/models.py).
EMAIL_IGNORING_CASE = func.lower(User.email)


class Boom(Exception):
    pass


@pytest.fixture
def users(db_session: AsyncSession) -> UserRepository:
    return UserRepository(db_session)


def user_rows(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"email": f"u{i}@example.com", "name": f"User {i}"} for i in range(start, start + count)
    ]


async def count_users(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(User)) or 0


async def test_a_large_batch_is_copied_and_keys_come_back_in_row_order(
    users: UserRepository, db_session: AsyncSession, assert_max_queries: QueryGuard
) -> None:
    rows = user_rows(COPY_THRESHOLD)
{%- if cookiecutter.id_type == "uuid" %}
    # The keys are made in Python, and COPY itself is not a SQL statement.
    with assert_max_queries(0):
        keys = await users.add_many(rows)
{%- else %}
    # One statement to reserve the keys; COPY itself is not a SQL statement.
    with assert_max_queries(1) as statements:
        keys = await users.add_many(rows)
    assert "nextval" in statements[0]
{%- endif %}
    stored = await db_session.execute(select(User.id, User.email, User.is_active))
    by_key = {key: (email, active) for key, email, active in stored}
    assert [by_key[key] for key in keys] == [(row["email"], True) for row in rows]


async def test_a_small_batch_is_one_insert(
    users: UserRepository, assert_max_queries: QueryGuard
) -> None:
    with assert_max_queries(1) as statements:
        keys = await users.add_many(user_rows(COPY_THRESHOLD - 1))
    assert statements[0].startswith("INSERT INTO users")
    assert len(set(keys)) == COPY_THRESHOLD - 1


@pytest.mark.isolated_db
@pytest.mark.parametrize("with_keys", [False, True], ids=["keys-from-sequence", "keys-given"])
async def test_a_copy_rolls_back_with_the_callers_transaction(
    db_sessions: async_sessionmaker[AsyncSession], db_session: AsyncSession, with_keys: bool
) -> None:
    rows = user_rows(COPY_THRESHOLD)
    if with_keys:
        # Nothing else runs first: the COPY itself must open the transaction.
        rows = [{"id": new_key(i), **row} for i, row in enumerate(rows)]
    with pytest.raises(Boom):
        async with transaction(db_sessions) as session:
            await UserRepository(session).add_many(rows)
            raise Boom
    assert await count_users(db_session) == 0


async def test_a_copied_duplicate_is_a_domain_error(users: UserRepository) -> None:
    rows = [*user_rows(COPY_THRESHOLD), {"email": "u0@example.com", "name": "Twin"}]
    with pytest.raises(AlreadyExists, match="email"):
        await users.add_many(rows)


async def test_rows_naming_different_columns_are_refused(users: UserRepository) -> None:
    rows = [*user_rows(COPY_THRESHOLD), {"email": "odd@example.com", "name": "Odd", "id": 1}]
    with pytest.raises(ValueError, match="every row must name the same columns"):
        await users.add_many(rows)


async def test_upsert_inserts_new_rows_and_updates_existing_ones(
    users: UserRepository, db_session: AsyncSession, assert_max_queries: QueryGuard
) -> None:
    (ada,) = await users.add_many([{"email": "ada@example.com", "name": "Ada"}])
    rows = [
        {"email": "Ada@example.com", "name": "Ada Lovelace"},
        {"email": "bob@example.com", "name": "Bob"},
    ]
    with assert_max_queries(1):
        keys = await users.upsert(rows, conflict=[EMAIL_IGNORING_CASE])
    assert keys[0] == ada
    stored = await db_session.execute(select(User.email, User.name).order_by(User.id))
    assert [tuple(row) for row in stored] == [
        ("Ada@example.com", "Ada Lovelace"),
        ("bob@example.com", "Bob"),
    ]


async def test_upsert_updates_only_the_named_columns(
    users: UserRepository, db_session: AsyncSession
) -> None:
    await users.add_many([{"email": "ada@example.com", "name": "Ada", "is_active": True}])
    await users.upsert(
        [{"email": "ada@example.com", "name": "Ignored", "is_active": False}],
        conflict=[EMAIL_IGNORING_CASE],
        update=["is_active"],
    )
    stored = await db_session.execute(select(User.name, User.is_active))
    assert [tuple(row) for row in stored] == [("Ada", False)]


async def test_upsert_counts_up_a_versioned_rows_version(
    db_session: AsyncSession, make: Make
) -> None:
    post = await make(PostFactory)
    row = {"id": post.id, "author_id": post.author_id, "title": "T2", "content": "c"}
    await PostRepository(db_session).upsert([row], conflict=["id"])
    stored = await db_session.execute(select(Post.title, Post.version))
    assert [tuple(found) for found in stored] == [("T2", 2)]


@pytest.fixture
def cache_outcomes(db_engine: AsyncEngine) -> Iterator[list[CacheStats]]:
    """How each statement sent during the test was compiled: cache hit or miss."""
    outcomes: list[CacheStats] = []

    def record(*args: Any) -> None:
        outcomes.append(args[4].cache_hit)

    event.listen(db_engine.sync_engine, "after_cursor_execute", record)
    yield outcomes
    event.remove(db_engine.sync_engine, "after_cursor_execute", record)


async def test_hot_queries_hit_the_compiled_cache(
    users: UserRepository, db_session: AsyncSession, cache_outcomes: list[CacheStats]
) -> None:
    keys = await users.add_many(user_rows(10))

    async def hot_queries(offset: int) -> None:
        db_session.expunge_all()
        await users.get(keys[offset])
        await users.get_by_email(f"u{offset}@example.com")
        await users.list_page(limit=offset + 1)
        await users.list_page(limit=3, after=keys[offset])
        await users.list_with_posts(limit=offset + 2, after=keys[offset])

    await hot_queries(0)
    cache_outcomes.clear()
    await hot_queries(5)
    assert cache_outcomes, "no statement was sent"
    assert set(cache_outcomes) == {CacheStats.CACHE_HIT}
