from sqlalchemy import select
from sqlalchemy.orm import joinedload

from {{ cookiecutter.package_name }}.db.base import Key
from {{ cookiecutter.package_name }}.models import Post
from {{ cookiecutter.package_name }}.repositories.base import DEFAULT_PAGE_SIZE, Repository
from {{ cookiecutter.package_name }}.repositories.errors import NotFound

# Many-to-one, never null: an inner join loads each post's author in the same query.
WITH_AUTHOR = joinedload(Post.author, innerjoin=True)


class PostRepository(Repository[Post]):
    model = Post

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
