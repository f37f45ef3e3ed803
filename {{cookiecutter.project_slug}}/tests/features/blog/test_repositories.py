"""UserRepository and the generic Repository, against the migrated schema."""

import pytest
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from {{ cookiecutter.package_name }}.db.base import Key
from {{ cookiecutter.package_name }}.db.session import WriteInReadOnlySession
from {{ cookiecutter.package_name }}.features.blog.models import Post, User
from {{ cookiecutter.package_name }}.features.blog.repositories import UserRepository
from {{ cookiecutter.package_name }}.repositories.errors import AlreadyExists, NotFound
from tests.factories import Make
from tests.features.blog.factories import PostFactory, UserFactory
from tests.harness.queries import QueryGuard


@pytest.fixture
def users(db_session: AsyncSession) -> UserRepository:
    return UserRepository(db_session)


async def test_create_get_update_delete(users: UserRepository) -> None:
    created = await users.create(email="ada@example.com", name="Ada")
    assert created.id is not None
    assert created.is_active is True
    assert created.created_at is not None

    assert await users.get(created.id) is created
    assert await users.get_by_email("ada@example.com") is created
    assert await users.get_by_email("ADA@example.com") is created

    before = created.updated_at
    await users.update(created, name="Ada Lovelace")
    assert (await users.get_or_raise(created.id)).name == "Ada Lovelace"
    assert created.updated_at >= before

    await users.delete(created)
    assert await users.get(created.id) is None
    with pytest.raises(NotFound):
        await users.get_or_raise(created.id)


async def test_duplicate_email_is_a_domain_error_naming_the_field(
    users: UserRepository, db_session: AsyncSession, make: Make
) -> None:
    await make(UserFactory, email="ada@example.com")
    with pytest.raises(AlreadyExists) as raised:
        await users.create(email="ada@example.com", name="Another Ada")
    assert raised.value.fields == ("email",)
    assert "email" in str(raised.value)
    await db_session.rollback()


async def test_add_many_inserts_in_one_statement(
    users: UserRepository, assert_max_queries: QueryGuard
) -> None:
    rows = [{"email": f"user{i}@example.com", "name": f"User {i}"} for i in range(100)]
    with assert_max_queries(1) as statements:
        ids = await users.add_many(rows)
    assert len(ids) == 100
    assert len(set(ids)) == 100
    assert statements[0].startswith("INSERT")


async def test_add_many_duplicate_is_a_domain_error(users: UserRepository) -> None:
    rows = [
        {"email": "same@example.com", "name": "One"},
        {"email": "same@example.com", "name": "Two"},
    ]
    with pytest.raises(AlreadyExists):
        await users.add_many(rows)


async def test_keyset_pagination_walks_every_row_once(
    users: UserRepository, make: Make, assert_max_queries: QueryGuard
) -> None:
    ids = [user.id for user in await make.batch(UserFactory, 25)]
    seen: list[Key] = []
    after: Key | None = None
    while True:
        with assert_max_queries(1):
            page = await users.list_page(limit=10, after=after)
        if not page:
            break
        seen += [user.id for user in page]
        after = page[-1].id
    assert seen == sorted(ids)


async def test_list_active_skips_inactive_users(
    users: UserRepository, make: Make, assert_max_queries: QueryGuard
) -> None:
    active = await make(UserFactory)
    await make(UserFactory, is_active=False)
    with assert_max_queries(1):
        listed = await users.list_active()
    assert [user.id for user in listed] == [active.id]


@pytest.mark.parametrize("page_size", [1, 10, 30])
async def test_posts_load_in_constant_queries(
    users: UserRepository,
    db_session: AsyncSession,
    make: Make,
    assert_max_queries: QueryGuard,
    page_size: int,
) -> None:
    for author in await make.batch(UserFactory, 30):
        await make.batch(PostFactory, 3, author=author)
    db_session.expunge_all()

    # Two queries whatever the page size: users, then all their posts at once.
    with assert_max_queries(2):
        loaded = await users.list_with_posts(limit=page_size)
    assert [len(user.posts) for user in loaded] == [3] * page_size


async def test_lazy_load_raises_instead_of_querying(
    users: UserRepository, db_session: AsyncSession, make: Make
) -> None:
    user = await make(UserFactory)
    db_session.expunge_all()
    reloaded = await users.get_or_raise(user.id)
    with pytest.raises(InvalidRequestError, match="lazy='raise'"):
        _ = reloaded.posts


async def test_deleting_a_user_hides_them_and_their_posts_until_restored(
    users: UserRepository, db_session: AsyncSession, make: Make
) -> None:
    post = await make(PostFactory)
    user = post.author
    db_session.expunge_all()

    await users.delete(await users.get_or_raise(user.id))
    assert await db_session.get(Post, post.id) is None
    assert await db_session.get(User, user.id) is None
    assert await users.list_page() == []
    deleted = await users.get(user.id, include_deleted=True)
    assert deleted is not None
    assert deleted.deleted_at is not None

    await users.restore(deleted)
    (restored,) = await users.list_with_posts()
    assert [found.id for found in restored.posts] == [post.id]


async def test_a_read_only_session_refuses_to_flush_changes(
    db_read_sessions: async_sessionmaker[AsyncSession], make: Make
) -> None:
    created = await make(UserFactory, name="Ada")
    async with db_read_sessions() as session:
        readonly_users = UserRepository(session)
        found = await readonly_users.get_or_raise(created.id)
        assert found.name == "Ada"
        with pytest.raises(WriteInReadOnlySession):
            await readonly_users.update(found, name="Changed")
