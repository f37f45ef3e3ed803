"""Test data: polyfactory factories for the models, and `make`, which adds their rows
through the test's session.

A factory fills the columns a row needs and leaves the others to the model and the
database, as `Repository.create` would: keys, defaults, server defaults (timestamps,
versions) and nullable columns. Columns with rules (unique, checks, foreign keys) get
values that keep them, declared on each feature's factory
(tests/features/<feature>/factories.py). The rest get a value of their type.

`make` flushes instead of using polyfactory's SQLAlchemy persistence, which commits or
flushes and then reloads every row with a SELECT: the models fetch their server
defaults on insert, so the keys and defaults are there after the flush, and the
factories stay free of a session bound to their class.
"""

{% if cookiecutter.python_version == "3.11" -%}
from typing import Any, TypeVar
{%- else -%}
from typing import Any
{%- endif %}

from polyfactory.factories.sqlalchemy_factory import SQLAlchemyFactory
from sqlalchemy import Column
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.package_name }}.db.base import Base
{% if cookiecutter.python_version == "3.11" %}
RowT = TypeVar("RowT", bound=Base)
{% endif %}

class TableFactory{% if cookiecutter.python_version == "3.11" %}(SQLAlchemyFactory[RowT]){% else %}[RowT: Base](SQLAlchemyFactory[RowT]){% endif %}:
    """The base of the project's factories: `class OrderFactory(TableFactory[Order])`."""

    __is_base_factory__ = True
    # The database hands out keys; parents are the factory's to declare.
    __set_primary_key__ = False
    __set_foreign_keys__ = False
    __set_relationships__ = False

    @classmethod
    def should_column_be_set(cls, column: Any) -> bool:
        filled_without_a_value = isinstance(column, Column) and (
            column.default is not None or column.server_default is not None or column.nullable
        )
        return super().should_column_be_set(column) and not filled_without_a_value


class Make:
    """`await make(UserFactory, name="Ada")`, `await make.batch(PostFactory, 3, author=ada)`:
    rows added through the test's session and flushed, so their keys and server defaults
    are there, requests of the test see them, and the test's rollback takes them away."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

{%- if cookiecutter.python_version == "3.11" %}

    async def __call__(self, factory: type[TableFactory[RowT]], **values: Any) -> RowT:
{%- else %}

    async def __call__[RowT: Base](self, factory: type[TableFactory[RowT]], **values: Any) -> RowT:
{%- endif %}
        (row,) = await self.batch(factory, 1, **values)
        return row

{%- if cookiecutter.python_version == "3.11" %}

    async def batch(
        self, factory: type[TableFactory[RowT]], size: int, **values: Any
    ) -> list[RowT]:
{%- else %}

    async def batch[RowT: Base](
        self, factory: type[TableFactory[RowT]], size: int, **values: Any
    ) -> list[RowT]:
{%- endif %}
        """`size` rows, each given `values` (the same parent, say) and the rest made up."""
        rows = factory.batch(size, **values)
        self.session.add_all(rows)
        await self.session.flush()
        return rows
