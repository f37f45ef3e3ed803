"""Build the async (asyncpg) and sync (psycopg) engines from one Settings object."""

from typing import Any, cast

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from {{ cookiecutter.package_name }}.db.credentials import ask_for_passwords, password_source
from {{ cookiecutter.package_name }}.db.pools import MeteredPool
from {{ cookiecutter.package_name }}.db.statements import StatementSource, instrument, server_label
from {{ cookiecutter.package_name }}.db.tls import asyncpg_tls
from {{ cookiecutter.package_name }}.settings import Settings

# The pool label of every engine whose role is not named: the primary's units of work.
PRIMARY = "primary"
PACKAGE = __name__.split(".")[0]
APPLICATION_NAME = "application_name"
# PostgreSQL keeps the first 63 bytes of a name.
MAX_NAME_BYTES = 63


def _pool_options(settings: Settings) -> dict[str, Any]:
    return {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.pool_timeout,
        "pool_recycle": settings.pool_recycle,
        "pool_pre_ping": settings.pool_pre_ping,
        "echo": settings.echo,
    }


def application_name(pool: str) -> str:
    """What pg_stat_activity shows for the connections of `pool`: package, then role."""
    return f"{PACKAGE}-{pool}"[:MAX_NAME_BYTES]


def _server_settings(settings: Settings, url: URL, pool: str) -> tuple[URL, dict[str, Any]]:
    """asyncpg's startup parameters: the connection's name (the URL's own, if it has one:
    asyncpg takes none as an argument) and the statement timeout."""
    named = url.query.get(APPLICATION_NAME)
    parameters = {APPLICATION_NAME: str(named) if named else application_name(pool)}
    if settings.statement_timeout_ms is not None:
        parameters["statement_timeout"] = str(settings.statement_timeout_ms)
    url = url.difference_update_query([APPLICATION_NAME])
    return url, {"connect_args": {"server_settings": parameters}}


def _sync_connect_args(settings: Settings, url: URL, pool: str) -> dict[str, Any]:
    """libpq's: its own `application_name` in the URL wins over this one."""
    arguments: dict[str, Any] = {}
    if APPLICATION_NAME not in url.query:
        arguments[APPLICATION_NAME] = application_name(pool)
    if settings.statement_timeout_ms is not None:
        arguments["options"] = f"-c statement_timeout={settings.statement_timeout_ms}"
    return {"connect_args": arguments}


def _replace_closed_connections(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    # After a server restart the pooled sockets are closed, and asyncpg already
    # knows it: check that flag (free) instead of pinging (a round trip per
    # checkout). DisconnectionError makes the pool connect afresh and retry.
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def _count_killed_connections_as_lost(context: ExceptionContext) -> None:
    # A backend the server terminated (pg_terminate_backend, a failover) sends its FATAL
    # before the socket closes: asyncpg, between the two, refuses the next statement with
    # InternalClientError. It is a lost connection: the pool drops it, the caller sees
    # connection_invalidated.
    if type(context.original_exception).__name__ == "InternalClientError":
        # Writable, as handle_error documents; SQLAlchemy 2.1.0's types say otherwise.
        cast(Any, context).is_disconnect = True


def _pgbouncer_options(settings: Settings) -> dict[str, Any]:
    if not settings.pgbouncer:
        return {}
    # In transaction mode consecutive transactions may run on different server
    # connections, so a statement prepared in one is unknown in the next. Keep
    # no prepared statements across transactions (both caches off) and use the
    # unnamed statement, which the next one replaces: nothing piles up on the
    # server, and no two clients' names can collide.
    return {
        "connect_args": {
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": _unnamed_statement,
        }
    }


def _unnamed_statement() -> str:
    return ""


def observe(engine: Engine, settings: Settings, pool: str, server: str) -> None:
    """Meter `engine`'s pool (metrics.py) and span and time its statements (statements.py)."""
    if settings.metrics_enabled and isinstance(engine.pool, MeteredPool):
        engine.pool.meter(pool, server)
    slow = settings.slow_query_ms / 1000 if settings.slow_query_ms else None
    instrument(engine, StatementSource(pool, server, engine.url, slow))


def create_async_engine_from_settings(
    settings: Settings,
    *,
    url: URL | None = None,
    pool: str = PRIMARY,
    server: str = PRIMARY,
    observed: bool = True,
    **overrides: Any,
) -> AsyncEngine:
    """An engine on DATABASE_URL, or on `url` (a replica) with the same settings.

    `pool` and `server` label its metrics and spans; an engine not `observed` has
    neither (the replica checks', which would be noise several times a second).
    """
    url, tls = asyncpg_tls(url or settings.url("asyncpg"))
    url, server_settings = _server_settings(settings, url, pool)
    parts = [
        {"poolclass": MeteredPool, "connect_args": tls},
        _pool_options(settings),
        server_settings,
        _pgbouncer_options(settings),
        overrides,
    ]
    options: dict[str, Any] = {}
    connect_args: dict[str, Any] = {}
    for part in parts:
        options |= part
        # The driver's arguments from every part together, not the last part's alone.
        connect_args |= part.get("connect_args", {})
    if connect_args:
        options["connect_args"] = connect_args
    engine = create_async_engine(url, **options)
    event.listen(engine.sync_engine, "checkout", _replace_closed_connections)
    event.listen(engine.sync_engine, "handle_error", _count_killed_connections_as_lost)
    replica = pool.startswith("replica")
    ask_for_passwords(engine.sync_engine, password_source(settings, replica=replica))
    if observed:
        observe(engine.sync_engine, settings, pool, server)
    return engine


def create_read_engine_from_settings(
    settings: Settings, *, url: URL | None = None, **overrides: Any
) -> AsyncEngine:
    """A pool of its own whose connections stay in autocommit, for read-only sessions.

    Cheaper than switching a shared engine's connections to autocommit at each
    checkout and back at return (README, Speed). The pool has the same settings
    and connects only when reads need it.
    """
    overrides = {"pool": "read", **overrides}
    return create_async_engine_from_settings(
        settings, url=url, isolation_level="AUTOCOMMIT", **overrides
    )


def read_engine_for(engine: AsyncEngine, settings: Settings) -> AsyncEngine:
    """Where read-only sessions run: behind PgBouncer `engine` itself, in transactions."""
    return engine if settings.pgbouncer else create_read_engine_from_settings(settings)


def create_replica_engine_from_settings(
    settings: Settings, url: URL, **overrides: Any
) -> AsyncEngine:
    """Read-only sessions on a replica: autocommit, or in transactions behind its PgBouncer."""
    overrides = {"pool": "replica", "server": server_label(url), **overrides}
    if settings.pgbouncer:
        return create_async_engine_from_settings(settings, url=url, **overrides)
    return create_read_engine_from_settings(settings, url=url, **overrides)


def create_sync_engine_from_settings(settings: Settings, **overrides: Any) -> Engine:
    """For scripts, migrations and tools that are not async."""
    url = settings.url("psycopg")
    options = _pool_options(settings) | _sync_connect_args(settings, url, "sync") | overrides
    engine = create_engine(url, **options)
    ask_for_passwords(engine, password_source(settings))
    observe(engine, settings, "sync", PRIMARY)
    return engine
