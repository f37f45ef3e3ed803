"""Soft delete: a row of a SoftDeleteMixin model is marked deleted (`deleted_at`) rather
than removed, and every ORM query leaves marked rows out by itself: gets, lists,
counts, joined and relationship loads (a user's posts through selectinload too).

A query that wants them asks with `.execution_options(include_deleted=True)`; the
repository's `get(..., include_deleted=True)` and `restore()` do. Core statements
(`text()`, `insert()`/`update()` of a table) are not filtered. Unique constraints of
such a model should be partial indexes `WHERE deleted_at IS NULL`, so that a deleted
row's values can be used again.
"""

from collections.abc import Iterator
from datetime import datetime
from functools import cache
from itertools import chain

from sqlalchemy import ColumnElement, event
from sqlalchemy.orm import (
    Mapped,
    Mapper,
    ORMExecuteState,
    Session,
    mapped_column,
    with_loader_criteria,
)
from sqlalchemy.orm.util import LoaderCriteriaOption

INCLUDE_DELETED = "include_deleted"
# Set on a statement that leaves deleted rows out itself (the repository's get).
CRITERIA_BUILT_IN = "deleted_rows_left_out"


class SoftDeleteMixin:
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


def reachable(mapper: Mapper[object]) -> Iterator[Mapper[object]]:
    """`mapper` and every mapper its relationships lead to, each once."""
    seen, waiting = set(), [mapper]
    while waiting:
        current = waiting.pop()
        if current not in seen:
            seen.add(current)
            yield current
            waiting += [relationship.mapper for relationship in current.relationships]


def not_deleted(model: type[SoftDeleteMixin]) -> ColumnElement[bool]:
    return model.deleted_at.is_(None)


@cache
def criteria_for(mapper: Mapper[object]) -> tuple[LoaderCriteriaOption, ...]:
    """One option per soft-deletable model a query of `mapper` may load, built once: one
    per model costs less at each run than one for the mixin, which every entity is
    tested against."""
    return tuple(
        with_loader_criteria(found.class_, not_deleted, include_aliases=True)
        for found in reachable(mapper)
        if issubclass(found.class_, SoftDeleteMixin)
    )


# For a query that names no entity (a count): every soft-deletable model it touches.
ANY_DELETED = with_loader_criteria(SoftDeleteMixin, not_deleted, include_aliases=True)


@event.listens_for(Session, "do_orm_execute")
def _leave_out_deleted_rows(state: ORMExecuteState) -> None:
    # Relationship and column loads inherit the criteria from the statement that began them.
    if (
        not state.is_select
        or state.is_column_load
        or state.is_relationship_load
        or state.execution_options.get(INCLUDE_DELETED, False)
        or state.execution_options.get(CRITERIA_BUILT_IN, False)
    ):
        return
    mappers = state.all_mappers
    options = tuple(chain.from_iterable(map(criteria_for, mappers))) if mappers else (ANY_DELETED,)
    if options:
        state.statement = state.statement.options(*options)
