"""Domain errors raised by repositories instead of raw driver exceptions."""

from sqlalchemy import Index, Table, UniqueConstraint
from sqlalchemy.exc import DBAPIError, IntegrityError

UNIQUE_VIOLATION = "23505"


class RepositoryError(Exception):
    """Base class for the errors callers are expected to handle."""


class NotFound(RepositoryError):
    def __init__(self, entity: str, key: object) -> None:
        super().__init__(f"{entity} {key!r} not found")
        self.entity = entity
        self.key = key


class AlreadyExists(RepositoryError):
    """A unique constraint rejected the row. The transaction must be rolled back."""

    def __init__(self, entity: str, fields: tuple[str, ...]) -> None:
        super().__init__(f"a {entity} with this {', '.join(fields)} already exists")
        self.entity = entity
        self.fields = fields


def sqlstate_and_constraint(error: DBAPIError) -> tuple[str | None, str | None]:
    driver_error = error.orig
    # asyncpg's adapter keeps the asyncpg exception as the cause; psycopg has .diag.
    source = getattr(driver_error, "__cause__", None) or driver_error
    sqlstate = getattr(driver_error, "sqlstate", None) or getattr(source, "sqlstate", None)
    constraint = getattr(source, "constraint_name", None)
    if constraint is None:
        constraint = getattr(getattr(driver_error, "diag", None), "constraint_name", None)
    return sqlstate, constraint


def _unique_columns(table: Table, constraint: str | None) -> tuple[str, ...]:
    unique: list[Index | UniqueConstraint] = [
        *(index for index in table.indexes if index.unique),
        *(item for item in table.constraints if isinstance(item, UniqueConstraint)),
    ]
    for item in unique:
        if item.name == constraint:
            return tuple(column.name for column in item.columns)
    return ("key",)


def translate_integrity_error(error: IntegrityError, entity: str, table: Table) -> Exception:
    """The domain error for a unique violation; the original error otherwise."""
    sqlstate, constraint = sqlstate_and_constraint(error)
    if sqlstate == UNIQUE_VIOLATION:
        return AlreadyExists(entity, _unique_columns(table, constraint))
    return error
