"""Alembic environment: async by default, or on a connection handed in.

Tests and the `migrate` command pass an open connection through
`config.attributes["connection"]`; the `alembic` command line connects with
the project settings.
"""

import asyncio
import logging.config

from alembic import context
from sqlalchemy import Connection, text

from {{ cookiecutter.package_name }}.db.engine import create_async_engine_from_settings
from {{ cookiecutter.package_name }}.db.migrations import MIGRATION_LOCK
from {{ cookiecutter.package_name }}.models import Base
from {{ cookiecutter.package_name }}.settings import get_settings

config = context.config
if config.config_file_name is not None and "connection" not in config.attributes:
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        # Instances starting together: one migrates, the others wait here until it
        # commits, then find the database at head. Released with the transaction.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


async def run_migrations_with_settings() -> None:
    engine = create_async_engine_from_settings(get_settings())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=get_settings().url("psycopg").render_as_string(hide_password=False),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
elif (connection := config.attributes.get("connection")) is not None:
    run_migrations(connection)
else:
    asyncio.run(run_migrations_with_settings())
