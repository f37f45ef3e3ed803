"""Each statement an engine runs: a client span when tracing is on (tracing.py), and one
log line when it is slower than DB_SLOW_QUERY_MS.

SQLAlchemy's dialect events see every statement once, on the engine that runs it,
whichever driver: so these hooks, not the asyncpg instrumentation (which would see
each statement again, and BEGIN and COMMIT besides), label each span with the
server that answered. The statement is the one sent to the driver, with
placeholders, never values.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from sqlalchemy import Engine, event
from sqlalchemy.engine import URL

from {{ cookiecutter.package_name }}.db.errors import driver_sqlstate
from {{ cookiecutter.package_name }}.observability import metrics, tracing

logger = logging.getLogger("{{ cookiecutter.package_name }}.db.slow")
MAX_STATEMENT_CHARS = 2000


@dataclass(frozen=True)
class StatementSource:
    """What every statement of an engine is labelled with."""

    pool: str
    server: str
    url: URL
    slow_seconds: float | None

    def attributes(self, statement: str) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "db.system.name": "postgresql",
            "db.namespace": self.url.database or "",
            "db.operation.name": operation(statement),
            "db.query.text": statement[:MAX_STATEMENT_CHARS],
            "db.client.connection.pool.name": self.pool,
            "server.address": server_address(self.url),
        }
        if (port := server_port(self.url)) is not None:
            attributes["server.port"] = port
        if self.pool == "replica":
            attributes["db.replica.name"] = self.server
        return attributes


def server_label(url: URL) -> str:
    """host:port/database, as metrics and logs name a server (never the user or password)."""
    return f"{server_address(url)}:{server_port(url) or 5432}/{url.database or ''}"


def server_port(url: URL) -> int | None:
    # A unix socket's port is a query parameter, as libpq spells it.
    port = url.port or url.query.get("port")
    return int(port) if isinstance(port, int | str) else None


def server_address(url: URL) -> str:
    host = url.host or url.query.get("host") or "localhost"
    return host if isinstance(host, str) else host[0]


def operation(statement: str) -> str:
    words = statement.split(None, 1)
    return words[0].upper() if words else ""


def one_line(statement: str) -> str:
    return " ".join(statement.split())[:MAX_STATEMENT_CHARS]


def instrument(engine: Engine, source: StatementSource) -> None:
    """Span and time every statement `engine` runs (the sync engine of an async one)."""
    dialect = engine.dialect

    # Dialect events, not the engine's cursor events: with any engine event SQLAlchemy
    # checks for listeners at every step of every connection, which cost a read
    # request 6-9% more CPU; these cost only the statement they wrap.
    def execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        timed(source, statement, dialect.do_execute, cursor, statement, parameters, context)
        return True

    def execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
        timed(source, statement, dialect.do_execute_no_params, cursor, statement, context)
        return True

    def executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        timed(source, statement, dialect.do_executemany, cursor, statement, parameters, context)
        return True

    event.listen(engine, "do_execute", execute)
    event.listen(engine, "do_execute_no_params", execute_no_params)
    event.listen(engine, "do_executemany", executemany)


def timed(source: StatementSource, statement: str, run: Callable[..., Any], *args: Any) -> None:
    """`run(*args)`, timed, and spanned while tracing is on."""
    tracer = tracing.tracer()
    span = None
    if tracer is not None:
        span = tracer.start_span(
            f"{operation(statement)} {source.url.database or ''}".strip(),
            kind=SpanKind.CLIENT,
            attributes=source.attributes(statement),
        )
    started = time.perf_counter()
    try:
        run(*args)
    except BaseException as error:
        finished(source, statement, started, span, error)
        raise
    finished(source, statement, started, span, None)


def finished(
    source: StatementSource,
    statement: str,
    started: float,
    span: Span | None,
    error: BaseException | None,
) -> None:
    elapsed = time.perf_counter() - started
    if span is not None:
        if error is not None:
            record_error(span, error)
        span.end()
    if source.slow_seconds is not None and elapsed >= source.slow_seconds:
        log_slow(source, statement, elapsed, error)


def record_error(span: Span, error: BaseException) -> None:
    sqlstate = driver_sqlstate(error)
    span.set_attribute("error.type", sqlstate or type(error).__name__)
    if sqlstate:
        span.set_attribute("db.response.status_code", sqlstate)
    # The type only: a driver's message can quote the row's values.
    span.set_status(Status(StatusCode.ERROR, type(error).__name__))


def log_slow(
    source: StatementSource, statement: str, elapsed: float, error: BaseException | None
) -> None:
    milliseconds = round(elapsed * 1000)
    metrics.slow_statements.labels(source.pool, source.server).inc()
    outcome = "" if error is None else f", failed ({type(error).__name__})"
    text = one_line(statement)
    logger.warning(
        "slow statement: %d ms on %s (%s)%s: %s",
        milliseconds,
        source.pool,
        source.server,
        outcome,
        text,
        extra={
            "fields": {
                "duration_ms": milliseconds,
                "pool": source.pool,
                "server": source.server,
                "statement": text,
            }
        },
    )
