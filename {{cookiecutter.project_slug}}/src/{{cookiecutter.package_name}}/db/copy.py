"""Bulk insert with PostgreSQL's COPY through the session's own asyncpg connection.

COPY runs on the connection the session already holds, inside its transaction,
so the rows commit or roll back with everything else the caller did. It skips
SQL generation and sends the rows in PostgreSQL's binary format.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from asyncpg.exceptions import IntegrityConstraintViolationError
from sqlalchemy import Column, ColumnDefault, Table, func, select
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


async def _next_keys(
    session: AsyncSession, table: Table, key: Column[Any], count: int
) -> list[Any]:
    sequence = func.pg_get_serial_sequence(table.fullname, key.name)
    statement = select(func.nextval(sequence)).select_from(func.generate_series(1, count))
    return list((await session.scalars(statement)).all())


async def copy_rows(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]
) -> list[Any]:
    """COPY `rows` into `table`; returns their primary keys in row order."""
    names = list(rows[0])
    for row in rows:
        if row.keys() != rows[0].keys():
            raise ValueError(f"every row must name the same columns: {names} vs {list(row)}")
    (key,) = table.primary_key.columns
    # Left-out columns get their server default from COPY itself; Python-side
    # defaults, and keys from the identity sequence, are filled in here.
    fillers = {
        column.name: fill
        for column in table.columns
        if column.name not in names and (fill := _python_default(column)) is not None
    }
    if key.name not in names and key.name not in fillers:
        fillers[key.name] = iter(await _next_keys(session, table, key, len(rows))).__next__

    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if not driver.is_in_transaction():
        # The driver opens the transaction lazily; COPY must not run outside it.
        await connection.execute(select(1))
    processors = [table.c[name].type.bind_processor(connection.dialect) for name in names]
    records = [
        (
            *(
                process(row[name]) if process else row[name]
                for name, process in zip(names, processors, strict=True)
            ),
            *(fill() for fill in fillers.values()),
        )
        for row in rows
    ]
    columns = [*names, *fillers]
    try:
        await driver.copy_records_to_table(
            table.name, schema_name=table.schema, columns=columns, records=records
        )
    except IntegrityConstraintViolationError as error:
        raise IntegrityError("COPY", None, error) from error
    key_position = columns.index(key.name)
    return [record[key_position] for record in records]
