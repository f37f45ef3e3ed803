"""What becomes of a lost replica connection: the replica is reported, the connection dropped.

A read can fail on a replica through no fault of its own: the server shut down
under it, said goodbye between two statements, or stopped answering (frozen, cut
off) for longer than DB_REPLICA_READ_TIMEOUT_MS. SQLAlchemy sees only a closed
connection as lost; any other such failure would leave a broken connection in
the pool. So a lost replica connection is discarded and the replica reported; the
session runs the read again on the primary (sessions.py).

SQLAlchemy's asyncpg dialect says goodbye to the server of a connection it
discards and waits for the answer: up to 2 s for a frozen server, and with
asyncpg 0.30 until it thaws. The replicas' engines use a dialect of their own
that drops such a connection at once, whatever discards it: a failed statement,
a failed connect, or the pool replacing connections older than a failure.
"""

from collections.abc import Callable
from typing import Any

from sqlalchemy import URL, event
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.package_name }}.db.errors import connection_lost

REPLICA_DIALECT = "postgresql.asyncpg_replica"


class ReplicaDialect(PGDialect_asyncpg):
    """asyncpg's dialect, but a connection it discards is dropped without a goodbye."""

    supports_statement_cache = True

    def do_terminate(self, dbapi_connection: Any) -> None:
        dbapi_connection.driver_connection.terminate()


registry.register(REPLICA_DIALECT, __name__, ReplicaDialect.__name__)


def replica_url(url: URL) -> URL:
    """`url` (asyncpg) for an engine on a replica: with ReplicaDialect."""
    return url.set(drivername=REPLICA_DIALECT.replace(".", "+"))


def watch_connections(engine: AsyncEngine, on_lost: Callable[[BaseException], None]) -> None:
    """Discard `engine`'s connections that a failure leaves unusable, calling `on_lost`."""

    def on_error(context: ExceptionContext) -> None:
        error = context.original_exception
        # A cancelled read (its caller gave up) says nothing about the server.
        if not isinstance(error, Exception):
            return
        if context.is_disconnect or connection_lost(context.sqlalchemy_exception or error):
            # Settable here, as handle_error documents; SQLAlchemy 2.1.0's stubs forbid it.
            context.is_disconnect = True  # type: ignore[misc, unused-ignore]
            on_lost(error)

    event.listen(engine.sync_engine, "handle_error", on_error)
