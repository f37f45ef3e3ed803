from sqlalchemy import select
from sqlalchemy.orm import selectinload

from {{ cookiecutter.package_name }}.db.base import Key
from {{ cookiecutter.package_name }}.models import User
from {{ cookiecutter.package_name }}.repositories.base import DEFAULT_PAGE_SIZE, Repository


class UserRepository(Repository[User]):
    model = User

    async def get_by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(User.email == email))

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
