"""A small typed generic repository.

It flushes but never commits: the caller's unit of work decides when a change
becomes visible, so several repository calls can share one transaction.
"""

from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, Table, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.package_name }}.db.base import Base
from {{ cookiecutter.package_name }}.repositories.errors import NotFound, translate_integrity_error

ModelT = TypeVar("ModelT", bound=Base)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class Repository(Generic[ModelT]):
    model: type[ModelT]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _table(self) -> Table:
        table = self.model.__table__
        assert isinstance(table, Table)
        return table

    @property
    def _primary_key(self) -> ColumnElement[Any]:
        (column,) = inspect(self.model).primary_key
        return column

    @property
    def _entity(self) -> str:
        return self.model.__name__

    async def get(self, key: Any) -> ModelT | None:
        return await self.session.get(self.model, key)

    async def get_or_raise(self, key: Any) -> ModelT:
        found = await self.get(key)
        if found is None:
            raise NotFound(self._entity, key)
        return found

    def _keyset(self, statement: Select[Any], *, limit: int, after: Any | None) -> Select[Any]:
        """Keyset pagination on the primary key: stable and O(limit) at any depth."""
        if after is not None:
            statement = statement.where(self._primary_key > after)
        return statement.order_by(self._primary_key).limit(min(limit, MAX_PAGE_SIZE))

    async def list_page(
        self, *, limit: int = DEFAULT_PAGE_SIZE, after: Any | None = None
    ) -> list[ModelT]:
        """Up to `limit` rows with a primary key greater than `after`, in key order."""
        return await self._scalars(self._keyset(select(self.model), limit=limit, after=after))

    async def create(self, **values: Any) -> ModelT:
        instance = self.model(**values)
        self.session.add(instance)
        await self._flush()
        return instance

    async def update(self, instance: ModelT, **values: Any) -> ModelT:
        for name, value in values.items():
            setattr(instance, name, value)
        await self._flush()
        return instance

    async def delete(self, instance: ModelT) -> None:
        await self.session.delete(instance)
        await self._flush()

    async def add_many(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Insert many rows with one INSERT ... RETURNING per batch; returns their keys."""
        if not rows:
            return []
        statement = insert(self.model).returning(self._primary_key)
        try:
            result = await self.session.execute(statement, list(rows))
        except IntegrityError as error:
            raise translate_integrity_error(error, self._entity, self._table) from error
        return list(result.scalars())

    async def _scalars(self, statement: Select[Any]) -> list[ModelT]:
        return list((await self.session.scalars(statement)).all())

    async def _flush(self) -> None:
        try:
            await self.session.flush()
        except IntegrityError as error:
            raise translate_integrity_error(error, self._entity, self._table) from error
