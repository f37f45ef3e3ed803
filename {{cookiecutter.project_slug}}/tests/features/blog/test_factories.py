"""The blog's factories make rows the schema takes, a thousand at a time: emails unique
ignoring case, every post by an author."""

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.package_name }}.features.blog.models import Post, PostStatus, User
from tests.factories import Make
from tests.features.blog.factories import PostFactory, UserFactory

ROWS = 1_000


async def test_a_thousand_users_and_a_thousand_posts_keep_every_constraint(
    make: Make, db_session: AsyncSession
) -> None:
    users = await make.batch(UserFactory, ROWS)
    posts = await make.batch(PostFactory, ROWS)
    assert all(user.is_active and user.deleted_at is None for user in users)
    # Each post brought an author of its own: two thousand users in all.
    emails = select(func.count(distinct(func.lower(User.email))))
    assert await db_session.scalar(emails) == 2 * ROWS
    assert await db_session.scalar(select(func.count()).select_from(Post)) == ROWS
    assert len({post.author_id for post in posts}) == ROWS
    assert {(post.status, post.views, post.version) for post in posts} == {(PostStatus.DRAFT, 0, 1)}


async def test_given_values_are_kept_and_a_post_takes_its_author_or_its_key(
    make: Make,
) -> None:
    ada = await make(UserFactory, email="Ada@example.com", name="Ada")
    assert (ada.email, ada.name) == ("Ada@example.com", "Ada")
    by_object = await make.batch(PostFactory, 2, author=ada)
    by_key = await make(PostFactory, author_id=ada.id, status=PostStatus.PUBLISHED)
    assert {post.author_id for post in [*by_object, by_key]} == {ada.id}
    assert by_key.status is PostStatus.PUBLISHED
