"""Data access for users and posts: each query loads what it returns in a fixed number
of statements, whatever the page size."""

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload, selectinload

from {{ cookiecutter.package_name }}.db.base import Key
from {{ cookiecutter.package_name }}.features.blog.models import Post, User
from {{ cookiecutter.package_name }}.repositories.base import DEFAULT_PAGE_SIZE, Repository
from {{ cookiecutter.package_name }}.repositories.errors import MissingReference, NotFound

# Many-to-one, never null: an inner join loads each post's author in the same query.
WITH_AUTHOR = joinedload(Post.author, innerjoin=True)


class UserRepository(Repository[User]):
    model = User

    async def delete(self, instance: User) -> None:
        """Mark the user and their posts deleted, at one moment, which restore() undoes."""
        await super().delete(instance)
        await self._mark_posts(instance, deleted_at=None, becomes=instance.deleted_at)

    async def restore(self, instance: User) -> User:
        """Bring back the user and the posts deleted with them (not those deleted before)."""
        deleted_at = instance.deleted_at
        await super().restore(instance)
        await self._mark_posts(instance, deleted_at=deleted_at, becomes=None)
        return instance

    async def _mark_posts(self, author: User, *, deleted_at: object, becomes: object) -> None:
        marked = Post.deleted_at.is_(None) if deleted_at is None else Post.deleted_at == deleted_at
        await self.session.execute(
            update(Post)
            .where(Post.author_id == author.id, marked)
            .values(deleted_at=becomes, version=Post.version + 1)
            .execution_options(synchronize_session="fetch")
        )

    async def get_by_email(self, email: str) -> User | None:
        matches = func.lower(User.email) == func.lower(email)
        return await self.session.scalar(select(User).where(matches))

    async def list_active(
        self, *, limit: int = DEFAULT_PAGE_SIZE, after: Key | None = None
    ) -> list[User]:
        statement = select(User).where(User.is_active)
        return await self._scalars(self._keyset(statement, limit=limit, after=after))

    async def list_with_posts(
        self, *, limit: int = DEFAULT_PAGE_SIZE, after: Key | None = None
    ) -> list[User]:
        """Users and their posts in two queries, whatever the page size."""
        statement = select(User).options(selectinload(User.posts))
        return await self._scalars(self._keyset(statement, limit=limit, after=after))


class PostRepository(Repository[Post]):
    model = Post

    async def create(self, **values: Any) -> Post:
        """A new post; MissingReference for a deleted author as for one that never was (the
        foreign key sees the deleted row, which the service no longer shows)."""
        # FOR SHARE until the post is committed: a delete of the author waits for it, then
        # marks it too; a delete first makes this read find no author.
        author = select(User.id).where(User.id == values["author_id"]).with_for_update(read=True)
        if await self.session.scalar(author) is None:
            raise MissingReference(self._entity, ("author_id",), User.__tablename__)
        return await super().create(**values)

    async def get_with_author(self, key: Key) -> Post:
        post = await self.session.scalar(select(Post).where(Post.id == key).options(WITH_AUTHOR))
        if post is None:
            raise NotFound(self._entity, key)
        return post

    async def list_with_authors(
        self,
        *,
        limit: int = DEFAULT_PAGE_SIZE,
        after: Key | None = None,
        author_id: Key | None = None,
    ) -> list[Post]:
        """A page of posts with their authors in one query, whatever the page size."""
        statement = select(Post).options(WITH_AUTHOR)
        if author_id is not None:
            statement = statement.where(Post.author_id == author_id)
        return await self._scalars(self._keyset(statement, limit=limit, after=after))
