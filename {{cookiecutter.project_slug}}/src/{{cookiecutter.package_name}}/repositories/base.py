"""A small typed generic repository.

It flushes but never commits: the caller's unit of work decides when a change
becomes visible, so several repository calls can share one transaction.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar{% if cookiecutter.python_version == "3.11" %}, Generic, TypeVar{% endif %}

from sqlalchemy import (
    ColumnDefault,
    ColumnElement,
    Select,
    Table,
    bindparam,
    insert,
    inspect,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from {{ cookiecutter.package_name }}.db.base import Base
from {{ cookiecutter.package_name }}.db.bulk_copy import copy_rows
from {{ cookiecutter.package_name }}.db.soft_delete import (
    CRITERIA_BUILT_IN,
    INCLUDE_DELETED,
    SoftDeleteMixin,
)
from {{ cookiecutter.package_name }}.repositories.errors import (
    NotFound,
    StaleVersion,
    translate_integrity_error,
)

{% if cookiecutter.python_version == "3.11" -%}
ModelT = TypeVar("ModelT", bound=Base)

{% endif -%}
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# From this many rows add_many uses COPY: below it, the extra round trip for
# the keys costs more than COPY saves (README, Speed).
COPY_THRESHOLD = 1_000


class Repository{% if cookiecutter.python_version == "3.11" %}(Generic[ModelT]){% else %}[ModelT: Base]{% endif %}:
    model: type[ModelT]
    # Built once per model: a prebuilt statement skips the rebuilding and cache
    # keying that session.get() does per call (README, Speed).
    _by_key: ClassVar[Select[Any]]
    _by_key_with_deleted: ClassVar[Select[Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "model" in cls.__dict__:
            (key,) = inspect(cls.model).primary_key
            by_key = select(cls.model).where(key == bindparam("key"))
            cls._by_key_with_deleted = by_key.execution_options(**{INCLUDE_DELETED: True})
            cls._by_key = by_key
            if issubclass(cls.model, SoftDeleteMixin):
                # A WHERE of its own: cheaper at each run than the query hook's criteria.
                not_deleted = inspect(cls.model).columns["deleted_at"].is_(None)
                cls._by_key = by_key.where(not_deleted).execution_options(
                    **{CRITERIA_BUILT_IN: True}
                )

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

    async def get(self, key: Any, *, include_deleted: bool = False) -> ModelT | None:
        """The row with this primary key (the session's instance if it has one), or None;
        a soft-deleted row (db/soft_delete.py) only if `include_deleted`."""
        statement = self._by_key_with_deleted if include_deleted else self._by_key
        found: ModelT | None = await self.session.scalar(statement, {"key": key})
        return found

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
        """Remove the row; a soft-deletable one is only marked deleted, and leaves the
        session as a removed one would (session.get() no longer finds it there)."""
        if not isinstance(instance, SoftDeleteMixin):
            await self.session.delete(instance)
            await self._flush()
            return
        instance.deleted_at = datetime.now(UTC)
        await self._flush()
        self.session.expunge(instance)

    async def restore(self, instance: ModelT) -> ModelT:
        """Bring back a soft-deleted row (read with `include_deleted=True`)."""
        if not isinstance(instance, SoftDeleteMixin):
            raise TypeError(f"a {self._entity} is not soft-deletable: it cannot be restored")
        # Deleting took it out of the session: back in, as the row it still is.
        if instance not in self.session:
            self.session.add(instance)
        instance.deleted_at = None
        await self._flush()
        return instance

    async def add_many(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Insert rows in the caller's transaction; returns their primary keys, in order.

        Up to COPY_THRESHOLD rows go as INSERT ... RETURNING; more go through
        PostgreSQL's COPY (README, Speed). Every row must name the same columns.
        """
        if not rows:
            return []
        try:
            if len(rows) < COPY_THRESHOLD:
                statement = insert(self.model).returning(self._primary_key)
                return list((await self.session.execute(statement, list(rows))).scalars())
            return await copy_rows(self.session, self._table, rows)
        except IntegrityError as error:
            raise translate_integrity_error(error, self._entity, self._table) from error

    async def upsert(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        conflict: Sequence[str | ColumnElement[Any]],
        update: Sequence[str] | None = None,
    ) -> list[Any]:
        """INSERT ... ON CONFLICT (conflict) DO UPDATE; returns the keys of every row.

        `conflict` is what a unique index covers: column names, or expressions for an
        index on expressions (`func.lower(User.email)`). `update` names the columns a
        conflicting row takes from the new one (default: all given columns but those
        named in `conflict`). A batch must not name the same conflict key twice:
        PostgreSQL refuses to update a row twice.
        """
        if not rows:
            return []
        columns = update if update is not None else [c for c in rows[0] if c not in conflict]
        inserting = pg_insert(self.model)
        new_values: dict[str, Any] = {name: inserting.excluded[name] for name in columns}
        # ON CONFLICT bypasses the ORM, so apply SQL-side onupdate values (updated_at) here,
        # and count a versioned row's version up as the ORM would.
        for column in self._table.columns:
            if isinstance(column.onupdate, ColumnDefault) and column.onupdate.is_clause_element:
                new_values.setdefault(column.name, column.onupdate.arg)
        version = inspect(self.model).version_id_col
        if version is not None:
            new_values.setdefault(version.name, self._table.c[version.name] + 1)
        statement = inserting.on_conflict_do_update(
            index_elements=list(conflict),
            index_where=self._unique_where(conflict),
            set_=new_values,
        ).returning(self._primary_key)
        try:
            return list((await self.session.execute(statement, list(rows))).scalars())
        except IntegrityError as error:
            raise translate_integrity_error(error, self._entity, self._table) from error

    def _unique_where(
        self, conflict: Sequence[str | ColumnElement[Any]]
    ) -> ColumnElement[bool] | None:
        """The predicate of the partial unique index on `conflict` (a soft-deletable model's,
        `deleted_at IS NULL`), which ON CONFLICT must repeat to use that index."""
        wanted = [str(self._table.c[item] if isinstance(item, str) else item) for item in conflict]
        for index in self._table.indexes:
            if index.unique and [str(element) for element in index.expressions] == wanted:
                where: ColumnElement[bool] | None = index.dialect_options["postgresql"]["where"]
                return where
        return None

    async def _scalars(self, statement: Select[Any]) -> list[ModelT]:
        return list((await self.session.scalars(statement)).all())

    async def _flush(self) -> None:
        try:
            await self.session.flush()
        except IntegrityError as error:
            raise translate_integrity_error(error, self._entity, self._table) from error
        except StaleDataError as error:
            raise StaleVersion(self._entity) from error
