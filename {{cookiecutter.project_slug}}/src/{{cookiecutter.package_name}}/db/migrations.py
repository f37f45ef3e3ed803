"""Run the project's Alembic migrations from code (CLI, tests, start-up), safely on a busy database.

Each migration transaction runs under the lock and statement timeouts of
MigrationLimits (db/migration_limits.py), and `upgrade_database` tries a revision
that gave up waiting for a lock again after a pause, a bounded number of times.
Given the service's role, each revision grants it what the service needs
(db/roles.py).
"""

import logging
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from time import sleep
from typing import TYPE_CHECKING

from opentelemetry import trace
from sqlalchemy import URL, Connection, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from {{ cookiecutter.package_name }}.db.credentials import ask_for_passwords, password_source
from {{ cookiecutter.package_name }}.db.engine import application_name
from {{ cookiecutter.package_name }}.db.errors import sqlstate_and_constraint
from {{ cookiecutter.package_name }}.db.migration_limits import (
    LOCK_NOT_AVAILABLE,
    MigrationLimits,
    failed_revision,
    failed_statement,
    lock_timeout_error,
    statement_timeout_error,
)
from {{ cookiecutter.package_name }}.db.reachability import psycopg_failure
from {{ cookiecutter.package_name }}.db.roles import grant, require_role, schema_change_refused
from {{ cookiecutter.package_name }}.db.statements import StatementSource, instrument
from {{ cookiecutter.package_name }}.observability.tracing import span
from {{ cookiecutter.package_name }}.settings import get_settings

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

# The project root holds alembic.ini; src/<package>/db/migrations.py is three levels down.
PROJECT_ROOT = Path(__file__).resolve().parents[3]
# The advisory lock migrations/env.py takes, so that instances starting together
# migrate one after another. Any fixed number will do if every process uses it.
MIGRATION_LOCK = zlib.crc32(b"{{ cookiecutter.package_name }} migrations")
# How long an instance waiting for MIGRATION_LOCK sleeps between tries.
LOCK_POLL_SECONDS = 0.1
# Where alembic_config() puts the limits and the role to grant to for migrations/env.py.
LIMITS_ATTRIBUTE = "migration_limits"
APP_ROLE_ATTRIBUTE = "app_role"
# What pg_stat_activity shows for a migration's connection (db/engine.py names the others).
MIGRATE_NAME = application_name("migrate")


def alembic_config(
    connection: Connection | None = None,
    limits: MigrationLimits | None = None,
    app_role: str | None = None,
) -> "Config":
    """The project's Alembic config, optionally bound to an open connection, limits and
    the role each revision grants the service's privileges to (with a connection and no
    role: none)."""
    # Imported on use: the test harness imports this module at every start but
    # migrates only when it rebuilds its cache, and Alembic is slow to import.
    from alembic.config import Config

    ini = PROJECT_ROOT / "alembic.ini"
    if not ini.is_file():
        ini = Path.cwd() / "alembic.ini"
    if not ini.is_file():
        raise FileNotFoundError(
            f"alembic.ini not found in {PROJECT_ROOT} or the current directory; "
            "run this command from the project root"
        )
    config = Config(ini)
    # Code that migrates keeps its own logging; only the `alembic` command applies alembic.ini's.
    config.attributes["configure_logger"] = False
    if connection is not None:
        config.attributes["connection"] = connection
    if limits is not None:
        config.attributes[LIMITS_ATTRIBUTE] = limits
    if connection is not None or app_role is not None:
        config.attributes[APP_ROLE_ATTRIBUTE] = app_role
    return config


@contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    """Hold MIGRATION_LOCK for the block: for the open transaction when there is one
    (released with it), else for the session, waited for outside any transaction and
    released when the block ends."""
    key = {"key": MIGRATION_LOCK}
    if connection.in_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), key)
        yield
        return
    wait_for_session_lock(connection)
    try:
        yield
    finally:
        # A broken connection took the lock with it; otherwise what a failed
        # migration left open is rolled back, so that the unlock can run.
        if not connection.invalidated:
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
            connection.commit()


def wait_for_session_lock(connection: Connection) -> None:
    """Take MIGRATION_LOCK for the session, trying again every LOCK_POLL_SECONDS.

    Not pg_advisory_lock: a statement waiting in it holds a snapshot, which a CREATE
    INDEX CONCURRENTLY in the instance holding the lock must wait out: a deadlock.
    Each try here runs in autocommit and ends at once, so between tries this session
    holds neither a transaction nor a snapshot.
    """
    key = {"key": MIGRATION_LOCK}
    level = connection.default_isolation_level
    connection.execution_options(isolation_level="AUTOCOMMIT")
    try:
        while not connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), key):
            sleep(LOCK_POLL_SECONDS)
        connection.commit()
    finally:
        connection.execution_options(isolation_level=level)


@contextmanager
def limited_transactions(connection: Connection, limits: MigrationLimits) -> Iterator[None]:
    """Run the block's transactions on `connection` under `limits`: the open one
    if there is one, else every transaction the block begins."""
    if connection.in_transaction():
        for statement in limits.statements():
            connection.exec_driver_sql(statement)
        yield
        return

    def limit(begun: Connection) -> None:
        # Inside autocommit_block() (CREATE INDEX CONCURRENTLY) there is no transaction to limit.
        if begun.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            for statement in limits.statements():
                begun.exec_driver_sql(statement)

    event.listen(connection, "begin", limit)
    try:
        yield
    finally:
        event.remove(connection, "begin", limit)


def upgrade(
    connection: Connection,
    revision: str = "head",
    limits: MigrationLimits | None = None,
    app_role: str | None = None,
) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection, limits, app_role), revision)


def downgrade(
    connection: Connection,
    revision: str,
    limits: MigrationLimits | None = None,
    app_role: str | None = None,
) -> None:
    from alembic import command

    command.downgrade(alembic_config(connection, limits, app_role), revision)


def upgrade_database(
    url: URL,
    revision: str = "head",
    limits: MigrationLimits | None = None,
    *,
    app_role: str | None = None,
) -> None:
    """Upgrade the database at `url`, each revision in a transaction of its own, under
    `limits` (from the settings by default); with `app_role`, grant it the service's
    privileges after each revision and once more at the end, for the tables that were
    there already.

    A revision whose wait for a lock timed out is tried again after a pause, up to
    `limits.lock_attempts` times in all; then MigrationLockTimeout is raised. A
    statement past the statement timeout raises MigrationStatementTimeout. A missing
    `app_role`, or a role at `url` that may not change the schema, raises RoleError.
    """
    limits = limits or MigrationLimits.from_settings()
    with span("migrate", **{"db.namespace": url.database or ""}), connected(url) as connection:
        # Held through the attempts and the pauses between them, so that other
        # instances wait here rather than on the table. Should the connection
        # break, the server releases the lock with it.
        hold = nullcontext() if limits.one_transaction else migration_lock(connection)
        if app_role is not None:
            require_role(connection, app_role)
        with hold:
            upgrade_with_retries(connection, revision, limits, app_role)
            if app_role is not None:
                grant_under_limits(connection, app_role, limits)


@contextmanager
def connected(url: URL) -> Iterator[Connection]:
    """A psycopg connection to `url`, closed after the block; CannotConnect
    (db/reachability.py) says in one line why there is none."""
    named = {} if "application_name" in url.query else {"application_name": MIGRATE_NAME}
    engine = create_engine(
        url.set(drivername="postgresql+psycopg"), poolclass=NullPool, connect_args=named
    )
    instrument(engine, StatementSource("migrate", "primary", url, slow_seconds=None))
    # A URL without a password (DATABASE_URL's) gets it as the settings say: from a
    # file or a provider. The owner's DATABASE_MIGRATION_URL carries its own.
    if url.password is None:
        ask_for_passwords(engine, password_source(get_settings()))
    try:
        try:
            connection = engine.connect()
        except OperationalError as error:
            raise psycopg_failure(error.orig, url) from error
        with connection:
            yield connection
    except DBAPIError as error:
        if (refused := schema_change_refused(error, url.username)) is not None:
            raise refused from error
        raise
    finally:
        engine.dispose()


def grant_under_limits(connection: Connection, role: str, limits: MigrationLimits) -> None:
    """Grant `role` the service's privileges in a transaction of their own, as a revision
    would: under the migration lock (the session's, taken again) and the limits."""
    with connection.begin(), migration_lock(connection):
        for statement in limits.statements():
            connection.exec_driver_sql(statement)
        grant(connection, role)


def upgrade_with_retries(
    connection: Connection, revision: str, limits: MigrationLimits, app_role: str | None = None
) -> None:
    for attempt in range(1, limits.lock_attempts + 1):
        try:
            with connection.begin() if limits.one_transaction else nullcontext():
                upgrade(connection, revision, limits, app_role)
            return
        except DBAPIError as error:
            if (timed_out := statement_timeout_error(error, limits)) is not None:
                raise timed_out from error
            if sqlstate_and_constraint(error)[0] != LOCK_NOT_AVAILABLE:
                raise
            if attempt == limits.lock_attempts:
                raise lock_timeout_error(error, limits) from error
            pause = limits.backoff_seconds(attempt)
            if (current := trace.get_current_span()).is_recording():
                current.add_event("lock timeout", {"revision": failed_revision(error) or ""})
            logger.warning(
                "revision %s waited more than %g s for a lock (while running: %s); "
                "retrying in %g s (attempt %d of %d)",
                failed_revision(error),
                limits.lock_timeout_ms / 1000,
                failed_statement(error),
                pause,
                attempt + 1,
                limits.lock_attempts,
            )
            sleep(pause)


def create_revision(message: str, url: URL | None = None) -> list[Path]:
    """Write a new revision file; with `url`, autogenerated from how the models differ
    from that database (which must be at the latest revision), and none when they do not."""
    from alembic import command
    from alembic.operations.ops import MigrationScript
    from alembic.runtime.migration import MigrationContext

    def unless_empty(
        context: MigrationContext,
        revision: str | Iterable[str | None] | Iterable[str],
        directives: list[MigrationScript],
    ) -> None:
        # An empty revision would only be one more head to review and apply.
        upgrade_ops = directives[0].upgrade_ops if directives else None
        if upgrade_ops is not None and upgrade_ops.is_empty():
            directives.clear()

    if url is None:
        written = command.revision(alembic_config(), message=message)
    else:
        with connected(url) as connection:
            written = command.revision(
                alembic_config(connection),
                message=message,
                autogenerate=True,
                process_revision_directives=unless_empty,
            )
    scripts = written if isinstance(written, list) else [written]
    return [Path(script.path) for script in scripts if script is not None]
