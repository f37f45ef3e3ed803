"""What migrations/env.py accepts: a sync Engine, a sync Connection with or without an open
transaction (the Alembic cookbook's pattern), a wrapper that hands a Connection out of
connect() (pytest-alembic's), and no database at all (`upgrade --sql`).

Every way runs the revisions under the migration timeouts, which do not stay on
the pooled connection afterwards.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from {{ cookiecutter.package_name }}.db.migrations import MIGRATION_LOCK, alembic_config
from {{ cookiecutter.package_name }}.features import load_models
from {{ cookiecutter.package_name }}.settings import get_settings
from tests.commands import in_a_thread
from tests.harness.servers import SessionDatabase
from tests.migration_copies import copy_migrations, offline_sql

METADATA = load_models()

# What the probe revision sees of the session it runs on.
RECORD_SESSION = """
op.execute(
    "CREATE TABLE session_probe AS SELECT pg_backend_pid() AS pid, "
    "current_setting('lock_timeout') AS lock_timeout, "
    "current_setting('statement_timeout') AS statement_timeout"
)
"""
WAYS_IN = [
    "engine",
    "connection",
    "connection in a transaction",
    "wrapped connection",
    "wrapped connection in a transaction",
]


@dataclass
class ConnectionProxy:
    """Like pytest-alembic's WrappingConnection: an open connection passed off as an Engine,
    everything else looked up on the connection."""

    connection: object

    @contextmanager
    def connect(self) -> Iterator[object]:
        yield self.connection

    def __getattr__(self, name: str) -> object:
        return getattr(self.connection, name)


@pytest.fixture
def settings_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Timeouts the probe can recognise, read afresh from the environment."""
    monkeypatch.setenv("DB_MIGRATION_LOCK_TIMEOUT_MS", "1234")
    monkeypatch.setenv("DB_MIGRATION_STATEMENT_TIMEOUT_MS", "4321")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def engine(
    database: SessionDatabase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings_environment: None,
) -> Iterator[Engine]:
    """An engine with one pooled connection, on a clone of the migrated database
    with one pending revision: the probe."""
    copy = copy_migrations(tmp_path / "project", monkeypatch)
    copy.add("session_probe", RECORD_SESSION, "op.drop_table('session_probe')")
    name, url = database.clones.take()
    engine = create_engine(url.set(drivername="postgresql+psycopg"), pool_size=1, max_overflow=0)
    try:
        yield engine
    finally:
        engine.dispose()
        database.clones.release(name)


def session_settings(engine: Engine) -> tuple[object, ...]:
    with engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT pg_backend_pid(), current_setting('lock_timeout'), "
                "current_setting('statement_timeout')"
            )
        ).one()
    return tuple(row)


@pytest.mark.parametrize("way_in", WAYS_IN)
def test_revisions_run_under_the_timeouts_whatever_is_handed_in(
    engine: Engine, way_in: str
) -> None:
    pid, *defaults = session_settings(engine)
    config = alembic_config()
    if way_in == "engine":
        config.attributes["connection"] = engine
        command.upgrade(config, "head")
    elif way_in == "connection":
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    elif way_in == "connection in a transaction":
        # The Alembic cookbook's "sharing a connection" pattern.
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    elif way_in == "wrapped connection":
        with engine.connect() as connection:
            config.attributes["connection"] = ConnectionProxy(connection)
            command.upgrade(config, "head")
    else:
        # As pytest-alembic's test_downgrade_leaves_no_trace hands in its connection.
        with engine.begin() as connection:
            config.attributes["connection"] = ConnectionProxy(connection)
            command.upgrade(config, "head")
    with engine.connect() as connection:
        probe = connection.execute(text("SELECT * FROM session_probe")).one()
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert tuple(probe) == (pid, "1234ms", "4321ms")
    assert version == "session_probe"
    # The same pooled connection, back to what it had before.
    assert session_settings(engine) == (pid, *defaults)


@pytest.mark.parametrize(
    ("handed_in", "named"),
    [
        ("url", "str"),
        ("async engine", "AsyncEngine"),
        ("wrapped engine", "ConnectionProxy whose connect() gave Engine"),
    ],
)
def test_anything_else_handed_in_is_refused_by_name(
    engine: Engine, handed_in: str, named: str
) -> None:
    config = alembic_config()
    if handed_in == "url":
        config.attributes["connection"] = str(engine.url)
    elif handed_in == "async engine":
        # Never connects, so there is nothing to dispose of.
        config.attributes["connection"] = create_async_engine(
            engine.url.set(drivername="postgresql+asyncpg")
        )
    else:
        config.attributes["connection"] = ConnectionProxy(engine)
    refusal = "must be a sync SQLAlchemy Connection or Engine, or wrap a Connection"
    with pytest.raises(TypeError, match=rf"{re.escape(refusal)}.*, not {re.escape(named)}$"):
        command.upgrade(config, "head")


def test_upgrade_sql_needs_no_database_url(
    settings_environment: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    # Away from any .env that could set DATABASE_URL.
    monkeypatch.chdir(tmp_path)
    sql = offline_sql(alembic_config())
    for table in ["alembic_version", *METADATA.tables]:
        assert f"CREATE TABLE {table} (" in sql
    # The lock and the timeouts first, inside the transaction.
    begin = sql.index("BEGIN;")
    first_table = sql.index("CREATE TABLE")
    for statement in (
        f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK});",
        "SET LOCAL lock_timeout = '1234ms';",
        "SET LOCAL statement_timeout = '4321ms';",
    ):
        assert begin < sql.index(statement) < first_table
    assert sql.rstrip().endswith("COMMIT;")


def test_upgrade_sql_grants_the_app_role_in_each_revision(
    settings_environment: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DB_APP_ROLE", "service's")
    get_settings.cache_clear()
    monkeypatch.chdir(tmp_path)
    sql = offline_sql(alembic_config())
    grant = "grantee text := 'service''s';"
    revisions = sql.split("-- Running upgrade")[1:]
    assert revisions
    assert all(grant in revision for revision in revisions)
    assert sql.rindex(grant) < sql.rindex("COMMIT;")


def test_the_alembic_command_line_migrates_as_the_owner_and_grants_the_service(
    engine: Engine, database: SessionDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = engine.url
    service = database.app_role.login(owner)
    monkeypatch.setenv("DATABASE_URL", service.render_as_string(hide_password=False))
    monkeypatch.setenv("DATABASE_MIGRATION_URL", owner.render_as_string(hide_password=False))
    get_settings.cache_clear()
    # The command line's env.py runs an event loop of its own (tests/commands.py).
    in_a_thread(lambda: command.upgrade(alembic_config(), "head"))
    with engine.connect() as connection:
        made_by = connection.scalar(
            text("SELECT tableowner FROM pg_tables WHERE tablename = 'session_probe'")
        )
        usable = connection.scalar(
            text("SELECT has_table_privilege(:role, 'session_probe', 'SELECT,INSERT,UPDATE')"),
            {"role": service.username},
        )
    assert (made_by, usable) == (owner.username, True)
