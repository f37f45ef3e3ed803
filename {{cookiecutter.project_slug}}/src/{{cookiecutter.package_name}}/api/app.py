import asyncio
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.package_name }}.api import health, http_metrics, read_after
from {{ cookiecutter.package_name }}.api.errors import install_error_handlers
from {{ cookiecutter.package_name }}.api.http_metrics import HttpMetricsMiddleware
from {{ cookiecutter.package_name }}.api.middleware import RequestContextMiddleware
from {{ cookiecutter.package_name }}.db.database import Database
from {{ cookiecutter.package_name }}.db.errors import sqlstate_and_constraint
from {{ cookiecutter.package_name }}.db.reachability import CannotConnect, check_connection
from {{ cookiecutter.package_name }}.db.roles import INSUFFICIENT_PRIVILEGE
from {{ cookiecutter.package_name }}.db.schema_revision import MIGRATED
from {{ cookiecutter.package_name }}.features import feature_modules
from {{ cookiecutter.package_name }}.logs import configure_logging_at_startup
from {{ cookiecutter.package_name }}.observability import metrics, tracing
from {{ cookiecutter.package_name }}.settings import Settings, get_settings

logger = logging.getLogger(__name__)
STARTUP_CHECK_SECONDS = 2.0
REVISION = "SELECT string_agg(version_num, ',') FROM alembic_version"
# Probes and scrapes every few seconds would bury the requests in traces.
UNTRACED_URLS = "/health/live,/health/ready,/metrics"
DESCRIPTION = (
    "Every 4xx and 5xx answer has the body `ErrorResponse`, with a `code` for programs, "
    "including those of no operation: 404 for a path no route serves and 405 for a method "
    "a path does not have, whose `Allow` header lists those it has (OPTIONS answers 204 "
    "with it). Every answer carries an `X-Request-ID` header: the caller's, when valid, "
    "or a new one."
)


def read_position_lifetime(settings: Settings) -> int:
    """Seconds after which every replica still serving reads has replayed a commit."""
    return math.ceil((settings.replica_max_lag_ms + settings.replica_check_interval_ms) / 1000) + 1


async def check_database_at_start_up(engine: AsyncEngine, settings: Settings) -> None:
    """Start anyway when the database is down: say so once instead of crash-looping.
    Not when its server refuses the connection: no wait fixes a wrong user, password
    or database, and every request would fail."""
    try:
        await check_connection(engine, STARTUP_CHECK_SECONDS)
        await publish_revision(engine)
    except CannotConnect as failure:
        if failure.refused_by_server:
            logger.error(
                "cannot connect to the database at %s (DATABASE_URL): %s",
                settings.safe_url,
                failure,
            )
            raise
        logger.warning(
            "the database at %s (DATABASE_URL) is unreachable (%s); serving anyway, "
            "/health/ready answers 503 until it is back",
            settings.safe_url,
            failure,
        )


async def publish_revision(engine: AsyncEngine) -> None:
    """The database's migration revision as a metric (db_migration_revision); a metric
    never stops the start-up, so a failure here only leaves it out."""
    try:
        async with asyncio.timeout(STARTUP_CHECK_SECONDS), engine.connect() as connection:
            migrated = await connection.scalar(MIGRATED)
            revision = await connection.scalar(text(REVISION)) if migrated else None
    except DBAPIError as error:
        if sqlstate_and_constraint(error)[0] == INSUFFICIENT_PRIVILEGE:
            # The service's role was never granted the tables: every request would fail.
            logger.error(
                "the database user %s may not read the tables: run `migrate` with "
                "DB_APP_ROLE=%s (or DATABASE_MIGRATION_URL set to the owner's URL)",
                engine.url.username,
                engine.url.username,
            )
        else:
            logger.warning("could not read the migration revision (%s)", type(error).__name__)
        return
    except (OSError, PoolTimeoutError) as error:
        logger.warning("could not read the migration revision (%s)", type(error).__name__)
        return
    metrics.migration_revision.labels(revision or "none").set(1)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # A bare uvicorn gave its loggers formats of their own: from here on they write in
    # the service's (`serve` has uvicorn start with it, logs.py).
    configure_logging_at_startup(app.state.settings.log_format)
    database = Database.from_settings(app.state.settings)
    app.state.database = database
    metrics.forget_dead_workers()
    try:
        await check_database_at_start_up(database.engine, app.state.settings)
        await database.start()
        yield
    finally:
        await database.dispose()
        tracing.shutdown_tracing()


def trace_requests(app: FastAPI) -> None:
    """A server span per request, parent of its statements' spans, when tracing is on."""
    provider = tracing.provider() or tracing.configure_tracing()
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=UNTRACED_URLS,
        # Without a span for each ASGI message a request is one span, its SQL below it.
        exclude_spans=["receive", "send"],
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    replicas = bool(settings.replica_urls())
    description = DESCRIPTION + (read_after.DESCRIPTION if replicas else "")
    app = FastAPI(title={{ cookiecutter.project_name | tojson }}, description=description, lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    if replicas:
        lifetime = read_position_lifetime(settings)
        app.add_middleware(read_after.ReadAfterMiddleware, cookie_max_age_seconds=lifetime)
    if settings.metrics_enabled:
        # Outermost: it sees the status of every answer, a 500 made on the way out too.
        app.add_middleware(HttpMetricsMiddleware)
        if settings.metrics_port is None:
            app.include_router(http_metrics.router)
    trace_requests(app)
    app.include_router(health.router)
    for feature in feature_modules("api"):
        feature.install(app)
    return app
