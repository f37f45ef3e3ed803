"""Deleted users and posts stay in their tables but out of every query that does not ask
for them, and a deleted user's email may sign up again."""

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.package_name }}.db.soft_delete import INCLUDE_DELETED
from {{ cookiecutter.package_name }}.features.blog.models import Post, User
from {{ cookiecutter.package_name }}.features.blog.repositories import PostRepository, UserRepository
from {{ cookiecutter.package_name }}.repositories.errors import AlreadyExists
from tests.factories import Make
from tests.features.blog.factories import PostFactory, UserFactory


async def test_a_deleted_users_email_may_sign_up_again_and_a_living_ones_may_not(
    db_session: AsyncSession, make: Make
) -> None:
    users = UserRepository(db_session)
    first = await make(UserFactory, email="ada@example.com")
    with pytest.raises(AlreadyExists):
        async with db_session.begin_nested():
            await users.create(email="ada@example.com", name="Twin")
    await users.delete(first)
    again = await users.create(email="ada@example.com", name="Ada again")
    assert again.id != first.id
    assert await users.get_by_email("ada@example.com") is again
    rows = await db_session.execute(
        text("SELECT count(*) FROM users WHERE email = 'ada@example.com'")
    )
    assert rows.scalar() == 2


async def test_counts_lists_and_relationship_loads_leave_deleted_rows_out(
    db_session: AsyncSession, make: Make
) -> None:
    users, posts = UserRepository(db_session), PostRepository(db_session)
    kept, gone = await make.batch(PostFactory, 2, author=await make(UserFactory))
    await posts.delete(gone)
    db_session.expunge_all()
    assert await db_session.scalar(select(func.count()).select_from(Post)) == 1
    assert [post.id for post in await posts.list_with_authors()] == [kept.id]
    (loaded,) = await users.list_with_posts()
    assert [post.id for post in loaded.posts] == [kept.id]
    everything = select(Post).execution_options(**{INCLUDE_DELETED: True})
    assert {post.id for post in await db_session.scalars(everything)} == {kept.id, gone.id}


async def test_a_post_deleted_before_its_author_stays_deleted_when_the_author_is_restored(
    db_session: AsyncSession, make: Make
) -> None:
    users, posts = UserRepository(db_session), PostRepository(db_session)
    author = await make(UserFactory)
    earlier, with_author = await make.batch(PostFactory, 2, author=author)
    await posts.delete(earlier)
    await users.delete(author)
    deleted = await users.get(author.id, include_deleted=True)
    assert deleted is not None
    await users.restore(deleted)
    db_session.expunge_all()
    visible = await db_session.scalars(select(Post.id))
    assert list(visible) == [with_author.id]
    assert await db_session.scalar(select(func.count()).select_from(User)) == 1
