"""Alembic environment: every migration under the migration lock and timeouts, however started.

Online, the revisions run on what `config.attributes["connection"]` holds (a
sync Connection, or a sync Engine to connect with: the `migrate` command, the
tests, the Alembic cookbook's shared connection, tools such as pytest-alembic;
or an object that wraps a Connection and hands it out from connect(), like
pytest-alembic's WrappingConnection), or else on a connection made from the
project settings (the `alembic` command line). On a connection in a transaction,
every revision runs in that transaction; otherwise each revision commits on its
own, so that the locks it took are released before the next one starts. Offline
(`alembic upgrade --sql`) writes PostgreSQL SQL and needs neither DATABASE_URL nor
a server.

After each revision, in its transaction, the service's role is granted what the
service needs on the tables it made (db/roles.py): the role code hands in with the
connection, or, for the `alembic` command line, the settings' (DB_APP_ROLE). The
command line connects with DATABASE_MIGRATION_URL when it is set.
"""

import asyncio
import logging.config
from collections.abc import Collection, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeGuard

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.package_name }}.db.engine import create_async_engine_from_settings
from {{ cookiecutter.package_name }}.db.migration_limits import MigrationLimits
from {{ cookiecutter.package_name }}.db.migrations import (
    APP_ROLE_ATTRIBUTE,
    LIMITS_ATTRIBUTE,
    MIGRATION_LOCK,
    limited_transactions,
    migration_lock,
)
from {{ cookiecutter.package_name }}.db.roles import grants
from {{ cookiecutter.package_name }}.features import load_models
from {{ cookiecutter.package_name }}.settings import get_settings

config = context.config
# The `alembic` command line logs as alembic.ini says; code that hands in a
# connection, or asks not to (alembic_config() does), keeps its own logging.
if (
    config.config_file_name is not None
    and "connection" not in config.attributes
    and config.attributes.get("configure_logger", True)
):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = load_models()
limits: MigrationLimits = config.attributes.get(LIMITS_ATTRIBUTE) or MigrationLimits.from_settings(
    get_settings()
)
app_role: str | None = (
    config.attributes[APP_ROLE_ATTRIBUTE]
    if APP_ROLE_ATTRIBUTE in config.attributes
    else get_settings().granted_role()
)


def grant_to_app_role(
    ctx: MigrationContext,
    step: MigrationInfo,
    heads: Collection[Any],
    run_args: Mapping[str, Any],
) -> None:
    # In the revision's transaction: no instance of the service sees its tables without the grants.
    assert app_role is not None
    ctx.execute(grants(app_role))


# Upgrades and downgrades alike: a downgrade may make a table again.
GRANT_AFTER_EACH_REVISION = grant_to_app_role if app_role is not None else None


def run_migrations(connection: Connection) -> None:
    # Read before the lock: taking it for the session ends with a commit.
    per_revision = not connection.in_transaction()
    # The lock first: instances waiting for it must not time out while one migrates.
    with migration_lock(connection), limited_transactions(connection, limits):
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            compare_server_default=True,
            transaction_per_migration=per_revision,
            on_version_apply=GRANT_AFTER_EACH_REVISION,
        )
        with context.begin_transaction():
            context.run_migrations()


class ConnectionWrapper(Protocol):
    """An open Connection behind an Engine's connect(), as pytest-alembic hands one in."""

    def connect(self) -> AbstractContextManager[object]: ...


def run_migrations_on(connectable: object) -> None:
    if isinstance(connectable, Connection):
        run_migrations(connectable)
    elif isinstance(connectable, Engine):
        with connectable.begin() if limits.one_transaction else connectable.connect() as connection:
            run_migrations(connection)
    elif wraps_a_connection(connectable):
        # The wrapped Connection itself runs the revisions, as if handed in: the
        # listener that limits each transaction would never fire on a proxy of it
        # (SQLAlchemy switches events on for the object listened to).
        with connectable.connect() as wrapped:
            if not isinstance(wrapped, Connection):
                wrapper = type(connectable).__name__
                raise refusal(f"{wrapper} whose connect() gave {type(wrapped).__name__}")
            run_migrations(wrapped)
    else:
        raise refusal(type(connectable).__name__)


def wraps_a_connection(connectable: object) -> TypeGuard[ConnectionWrapper]:
    """Whether `connectable` stands in for a Connection as pytest-alembic's WrappingConnection
    does: Alembic takes it for one (it asks only for a dialect), and its connect(), like an
    Engine's, hands one out."""
    # An AsyncEngine's connect() gives an AsyncConnection, which a sync migration cannot use.
    return (
        hasattr(connectable, "dialect")
        and callable(getattr(connectable, "connect", None))
        and not isinstance(connectable, AsyncEngine)
    )


def refusal(handed_in: str) -> TypeError:
    return TypeError(
        'config.attributes["connection"] must be a sync SQLAlchemy Connection or Engine, '
        f"or wrap a Connection and give it back from connect(), not {handed_in}"
    )


async def run_migrations_with_settings() -> None:
    settings = get_settings()
    engine = create_async_engine_from_settings(
        settings, url=settings.migration_url_for("asyncpg"), pool="migrate"
    )
    try:
        async with engine.connect() as connection:
            if limits.one_transaction:
                await connection.begin()
            await connection.run_sync(run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        dialect_name="postgresql",
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        on_version_apply=GRANT_AFTER_EACH_REVISION,
    )
    with context.begin_transaction():
        # The same lock and timeouts as online, for whoever runs this SQL.
        context.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        for statement in limits.statements():
            context.execute(statement)
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
elif (connectable := config.attributes.get("connection")) is not None:
    run_migrations_on(connectable)
else:
    asyncio.run(run_migrations_with_settings())
