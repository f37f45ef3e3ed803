"""Bulk insert with PostgreSQL's COPY through the session's own asyncpg connection.

COPY runs on the connection the session already holds, inside its transaction,
so the rows commit or roll back with everything else the caller did. It skips
SQL generation and sends the rows in PostgreSQL's binary format.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from asyncpg.exceptions import IntegrityConstraintViolationError
from sqlalchemy import Column, ColumnDefault, Dialect, Table, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession


def _python_default(column: Column[Any]) -> Callable[[], Any] | None:
    default = column.default
    if not isinstance(default, ColumnDefault) or default.is_clause_element:
        return None
    if default.is_scalar:
        return lambda: default.arg
    # SQLAlchemy wraps default callables to take an execution context; COPY has none.
    return lambda: default.arg(None)


# MATERIALIZED looks the sequence up once, not once per key.
NEXT_KEYS = text(
    "WITH s AS MATERIALIZED"
    " (SELECT pg_get_serial_sequence(:table, :column)::regclass AS sequence)"
    " SELECT array_agg(nextval(s.sequence)) FROM s, generate_series(1, :count)"
)


async def _next_keys(
    session: AsyncSession, table: Table, key: Column[Any], count: int
) -> list[Any]:
    """`count` fresh keys from the key column's identity sequence, in one round trip."""
    parameters = {"table": table.fullname, "column": key.name, "count": count}
    return list(await session.scalar(NEXT_KEYS, parameters) or [])


def _column_values(
    rows: Sequence[Mapping[str, Any]], table: Table, names: list[str], dialect: Dialect
) -> dict[str, list[Any]]:
    """The given values column by column, converted by each column type's bind processor."""
    columns: dict[str, list[Any]] = {}
    for name in names:
        values = [row[name] for row in rows]
        process = table.c[name].type.bind_processor(dialect)
        columns[name] = [process(value) for value in values] if process else values
    return columns


async def copy_rows(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]
) -> list[Any]:
    """COPY `rows` into `table`; returns their primary keys in row order."""
    names = list(rows[0])
    for row in rows:
        if row.keys() != rows[0].keys():
            raise ValueError(f"every row must name the same columns: {names} vs {list(row)}")
    (key,) = table.primary_key.columns
    connection = await session.connection()
    columns = _column_values(rows, table, names, connection.dialect)
    # Left-out columns get their server default from COPY itself; Python-side
    # defaults, and keys from the identity sequence, are filled in here.
    for column in table.columns:
        fill = _python_default(column)
        if column.name not in columns and fill is not None:
            columns[column.name] = [fill() for _ in rows]
    if key.name not in columns:
        columns[key.name] = await _next_keys(session, table, key, len(rows))

    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if not driver.is_in_transaction():
        # The driver opens the transaction lazily; COPY must not run outside it.
        await connection.execute(select(1))
    try:
        await driver.copy_records_to_table(
            table.name,
            schema_name=table.schema,
            columns=list(columns),
            records=zip(*columns.values(), strict=True),
        )
    except IntegrityConstraintViolationError as error:
        raise IntegrityError("COPY", None, error) from error
    return columns[key.name]
