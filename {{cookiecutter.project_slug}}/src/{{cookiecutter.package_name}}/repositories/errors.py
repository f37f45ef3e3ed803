"""Domain errors raised by repositories instead of raw driver exceptions."""

from sqlalchemy import Index, Table, UniqueConstraint
from sqlalchemy.exc import IntegrityError

from {{ cookiecutter.package_name }}.db.errors import (
    FOREIGN_KEY_VIOLATION,
    UNIQUE_VIOLATION,
    sqlstate_and_constraint,
)


class RepositoryError(Exception):
    """Base class for the errors callers are expected to handle: each is about an entity."""

    def __init__(self, entity: str, message: str) -> None:
        super().__init__(message)
        self.entity = entity


class NotFound(RepositoryError):
    def __init__(self, entity: str, key: object) -> None:
        super().__init__(entity, f"{entity} {key} not found")
        self.key = key


class AlreadyExists(RepositoryError):
    """A unique constraint rejected the row. The transaction must be rolled back."""

    def __init__(self, entity: str, fields: tuple[str, ...]) -> None:
        super().__init__(entity, f"a {entity} with this {', '.join(fields)} already exists")
        self.fields = fields


class MissingReference(RepositoryError):
    """A foreign key points at a row that does not exist. Roll the transaction back."""

    def __init__(self, entity: str, fields: tuple[str, ...], referred: str) -> None:
        message = f"{', '.join(fields)} does not refer to an existing row of {referred}"
        super().__init__(entity, message)
        self.fields = fields
        self.referred = referred


class StaleVersion(RepositoryError):
    """A versioned row changed, or went, since it was read: the write was not made."""

    def __init__(self, entity: str) -> None:
        super().__init__(entity, f"this {entity} was changed by another request since it was read")


def _unique_columns(table: Table, constraint: str | None) -> tuple[str, ...]:
    unique: list[Index | UniqueConstraint] = [
        *(index for index in table.indexes if index.unique),
        *(item for item in table.constraints if isinstance(item, UniqueConstraint)),
    ]
    for item in unique:
        if item.name == constraint:
            return tuple(column.name for column in item.columns)
    return ("key",)


def _missing_reference(entity: str, table: Table, constraint: str | None) -> Exception | None:
    for item in table.foreign_key_constraints:
        if item.name == constraint:
            return MissingReference(entity, tuple(item.column_keys), item.referred_table.name)
    return None


def translate_integrity_error(error: IntegrityError, entity: str, table: Table) -> Exception:
    """The domain error for a unique or foreign key violation; the original error otherwise."""
    sqlstate, constraint = sqlstate_and_constraint(error)
    if sqlstate == UNIQUE_VIOLATION:
        return AlreadyExists(entity, _unique_columns(table, constraint))
    if sqlstate == FOREIGN_KEY_VIOLATION:
        # Only an insert or update of this table; a delete blocked by a reference is a conflict.
        return _missing_reference(entity, table, constraint) or error
    return error
