"""Command line: migrate, downgrade, current, revision{% if cookiecutter.use_fastapi %} and serve{% endif %} (`{{ cookiecutter.package_name }} --help`).

With DATABASE_URL unset, each command runs on a private PostgreSQL cluster kept
in .postgres/ (git-ignored), started for the command and stopped after it, also
when the command is stopped with Ctrl-C or SIGTERM.
"""

import argparse
{%- if cookiecutter.use_fastapi %}
import asyncio
{%- endif %}
import logging
{%- if cookiecutter.use_fastapi %}
import os
{%- endif %}
import signal
{%- if cookiecutter.use_fastapi %}
import tempfile
{%- endif %}
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from pydantic import SecretStr
from sqlalchemy import URL
from sqlalchemy.exc import OperationalError

from {{ cookiecutter.package_name }}.db.credentials import CredentialsUnavailable
from {{ cookiecutter.package_name }}.db.migration_limits import MigrationTimeout
from {{ cookiecutter.package_name }}.db.migrations import (
    create_revision,
    current_revisions,
    downgrade_database,
    head_revisions,
    upgrade_database,
)
from {{ cookiecutter.package_name }}.db.reachability import CannotConnect, {% if cookiecutter.use_fastapi %}check_connection, {% endif %}one_line
from {{ cookiecutter.package_name }}.db.roles import RoleError
from {{ cookiecutter.package_name }}.localpg.binaries import PostgresNotFound
from {{ cookiecutter.package_name }}.localpg.cluster import APP_ROLE
from {{ cookiecutter.package_name }}.localpg.embedded import embedded_cluster
from {{ cookiecutter.package_name }}.localpg.errors import ClusterError, ClusterInUse
from {{ cookiecutter.package_name }}.logs import LogFormat, configure_logging{% if cookiecutter.use_fastapi %}, server_log_config{% endif %}
{%- if cookiecutter.use_fastapi %}
from {{ cookiecutter.package_name }}.observability.metrics import MULTIPROCESS_DIR, scrape_registry
{%- endif %}
from {{ cookiecutter.package_name }}.observability.tracing import (
    TracingSettingError,
    configure_tracing,
    shutdown_tracing,
)
from {{ cookiecutter.package_name }}.settings import (
    InvalidSettings,
    Settings,
    get_settings,
    log_format_despite_errors,
    mask_password,
)

logger = logging.getLogger("{{ cookiecutter.package_name }}")
EMBEDDED_DIR = Path(".postgres")
# Loggers whose INFO lines say what a command did.
INFO_LOGGERS = (
    "{{ cookiecutter.package_name }}",
    "alembic.runtime.migration",
    "alembic.autogenerate",
)
# What Ctrl-C, docker stop, systemd and Kubernetes send to ask for a stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequested(BaseException):
    """A stop signal arrived; a BaseException, like KeyboardInterrupt, so that no
    `except Exception` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        self.signal = signal.Signals(signum)
        super().__init__(self.signal.name)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into StopRequested, so that the embedded server is stopped
    on the way out. uvicorn handles both itself while it serves, and raises them again
    once it has shut down."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may handle signals
        return

    def request_stop(signum: int, frame: FrameType | None) -> None:
        # One stop at a time: a second signal must not cut the server's shutdown short.
        for handled in STOP_SIGNALS:
            signal.signal(handled, signal.SIG_IGN)
        raise StopRequested(signum)

    previous = {handled: signal.signal(handled, request_stop) for handled in STOP_SIGNALS}
    try:
        yield
    finally:
        for handled, handler in previous.items():
            signal.signal(handled, handler)


@contextmanager
def configured_database(settings: Settings) -> Iterator[Settings]:
    """The settings as given, or pointed at the embedded cluster when no URL is set: the
    service as a role of its own, the migrations as the superuser, which owns the tables."""
    if settings.database_url is not None:
        yield settings
        return
    app_role = settings.app_role or APP_ROLE
    database = "{{ cookiecutter.package_name }}"
    with embedded_cluster(EMBEDDED_DIR, database, app_role) as owner_url:
        app_url = owner_url.set(username=app_role)
        # Printed in libpq form so it can be pasted into psql.
        libpq_url = f"postgresql://{app_role}@/{app_url.database}?host={app_url.query['host']}"
        logger.info(
            "DATABASE_URL is not set: using the private PostgreSQL at %s (migrated by %s)",
            libpq_url,
            owner_url.username,
        )
        yield settings.model_copy(
            update={
                "database_url": SecretStr(app_url.render_as_string(hide_password=False)),
                "migration_url": SecretStr(owner_url.render_as_string(hide_password=False)),
                "app_role": app_role,
            }
        )


def migrate(settings: Settings) -> None:
    upgrade_database(settings.migration_url_for("psycopg"), app_role=settings.granted_role())
    logger.info("the database is at the latest revision")


def downgrade(settings: Settings, target: str) -> int:
    """Take the database down to `target` ("-1", a revision, "base")."""
    from alembic.util import CommandError

    try:
        downgrade_database(
            settings.migration_url_for("psycopg"), target, app_role=settings.granted_role()
        )
    except CommandError as error:
        # Alembic's own words, e.g. that there is no revision to go back from.
        logger.error(
            "cannot downgrade to %s: %s (`{{ cookiecutter.package_name }} current` says where it is)",
            target,
            error,
        )
        return 1
    current(settings)
    return 0


def current(settings: Settings) -> None:
    """Print the database's revision, "(head)" after the latest, "base" before the first."""
    heads = set(head_revisions())
    revisions = current_revisions(settings.migration_url_for("psycopg")) or ("base",)
    for applied in revisions:
        print(f"{applied} (head)" if applied in heads else applied, flush=True)


def revision(message: str, url: URL | None) -> int:
    """Write a revision, autogenerated against the database at `url` when given."""
    from alembic.util import CommandError

    try:
        written = create_revision(message, url)
    except CommandError as error:
        if url is not None and "not up to date" in str(error):
            at = ", ".join(current_revisions(url)) or "base"
            logger.error(
                "cannot autogenerate a revision: the database is at %s, not at the latest "
                "revision (%s); run `{{ cookiecutter.package_name }} migrate` first, as autogenerate compares "
                "the models with a database that has every revision",
                at,
                ", ".join(head_revisions()),
            )
            return 1
        # Alembic's own words.
        logger.error("%s", error)
        return 1
    if not written:
        logger.info("the models match the database: no revision written")
    for path in written:
        logger.info("review %s, then run `{{ cookiecutter.package_name }} migrate`", path)
    return 0
{%- if cookiecutter.use_fastapi %}


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return number


def check_before_serving(settings: Settings) -> None:
    """Stop `serve` before it starts when DATABASE_URL's server refuses the connection:
    no wait fixes a wrong user, password or database. While the server is only out of
    reach, serve anyway: the app warns once, and answers 503 on /health/ready until the
    server is back (api/app.py)."""
    from {{ cookiecutter.package_name }}.api.app import STARTUP_CHECK_SECONDS
    from {{ cookiecutter.package_name }}.db.engine import create_async_engine_from_settings

    async def check() -> None:
        engine = create_async_engine_from_settings(settings)
        try:
            await check_connection(engine, STARTUP_CHECK_SECONDS)
        finally:
            await engine.dispose()

    try:
        asyncio.run(check())
    except CannotConnect as failure:
        if failure.refused_by_server:
            raise


def serve(
    settings: Settings, host: str, port: int, workers: int = 1, graceful_timeout: int | None = None
) -> None:
    import uvicorn

    from {{ cookiecutter.package_name }}.api import create_app
    from {{ cookiecutter.package_name }}.db.roles import check_service_role
    from {{ cookiecutter.package_name }}.features import load_models

    check_service_role(settings, load_models().tables)
    # uvicorn's lines in the service's format, from the first (logs.py).
    log_config = server_log_config(settings.log_format)
    with shared_metrics(workers):
        if settings.metrics_enabled and settings.metrics_port is not None:
            serve_metrics(settings.metrics_port, host)
        if workers == 1:
            uvicorn.run(
                create_app(settings),
                host=host,
                port=port,
                log_config=log_config,
                timeout_graceful_shutdown=graceful_timeout,
            )
            return
        # Each worker process builds its own app, engines and pools from the environment,
        # which names the embedded database too; DATABASE_URL_FILE each reads itself.
        assert settings.database_url is not None
        if settings.url_file is None:
            os.environ["DATABASE_URL"] = settings.database_url.get_secret_value()
        uvicorn.run(
            "{{ cookiecutter.package_name }}.api:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=log_config,
            timeout_graceful_shutdown=graceful_timeout,
        )


@contextmanager
def shared_metrics(workers: int) -> Iterator[None]:
    """Under several workers, a folder where each writes its metrics for any to serve
    (observability/metrics.py), made here unless PROMETHEUS_MULTIPROC_DIR names one."""
    if workers == 1 or os.environ.get(MULTIPROCESS_DIR):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="{{ cookiecutter.package_name }}-metrics-") as folder:
        os.environ[MULTIPROCESS_DIR] = folder
        try:
            yield
        finally:
            del os.environ[MULTIPROCESS_DIR]


def serve_metrics(port: int, host: str) -> None:
    """/metrics on a port of its own, from this process, for every worker."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=scrape_registry())
    logger.info("metrics at http://%s:%d/metrics", host, port)
{%- endif %}


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="{{ cookiecutter.package_name }}", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="upgrade the database to the latest revision")
    downgrade_parser = commands.add_parser(
        "downgrade", help="take the database down to a revision (and print where it is)"
    )
    downgrade_parser.add_argument(
        "target", help='"-1" for one revision back, "-2" for two, a revision id, or "base"'
    )
    commands.add_parser("current", help="print the revision the database is at")
    revision_parser = commands.add_parser(
        "revision", help="write a new revision in migrations/versions"
    )
    revision_parser.add_argument("-m", "--message", required=True)
    revision_parser.add_argument(
        "--autogenerate",
        action="store_true",
        help="fill it in from how the models differ from the database "
        "(migrated first when using the embedded database)",
    )
{%- if cookiecutter.use_fastapi %}
    serve_parser = commands.add_parser(
        "serve", help="run the HTTP API (migrates first when using the embedded database)"
    )
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument(
        "--workers",
        type=positive_int,
        default=os.environ.get("WEB_CONCURRENCY", "1"),
        help="worker processes (default: WEB_CONCURRENCY, else 1); each has its own two "
        "pools, so budget workers x 2 x DB_POOL_SIZE connections on the database",
    )
    serve_parser.add_argument(
        "--graceful-timeout",
        type=positive_int,
        default=None,
        help="seconds that requests in progress may take to finish after SIGTERM, before "
        "they are cut (default: as long as they take)",
    )
{%- endif %}
    return parser.parse_args(argv)


def run(arguments: argparse.Namespace, settings: Settings) -> int:
    if arguments.command == "revision" and not arguments.autogenerate:
        # A blank revision needs no database.
        return revision(arguments.message, None)
{%- if cookiecutter.use_fastapi %}
    if arguments.command == "serve" and settings.database_url is not None:
        check_before_serving(settings)
{%- endif %}
    with configured_database(settings) as database_settings:
        # Where the database is, and taking it back, leave it at its revision.
        if arguments.command == "current":
            current(database_settings)
            return 0
        if arguments.command == "downgrade":
            return downgrade(database_settings, arguments.target)
        # The embedded database is always brought to the latest revision; a server
        # of your own only by `migrate`.
        if arguments.command == "migrate" or settings.database_url is None:
            migrate(database_settings)
        if arguments.command == "revision":
            return revision(arguments.message, database_settings.migration_url_for("psycopg"))
{%- if cookiecutter.use_fastapi %}
        if arguments.command == "serve":
            serve(
                database_settings,
                arguments.host,
                arguments.port,
                arguments.workers,
                arguments.graceful_timeout,
            )
{%- endif %}
    return 0


def configure_command_logging(log_format: LogFormat) -> None:
    configure_logging(log_format)
    for name in INFO_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


# The commands that connect as the tables' owner, with DATABASE_MIGRATION_URL when set.
AS_THE_OWNER = {"migrate", "downgrade", "current", "revision"}


def named(settings: Settings, command: str) -> str:
    """The database `command` uses, for messages, with the setting that names it; its
    password masked."""
    if settings.database_url is None:
        return "the private PostgreSQL"
    if command in AS_THE_OWNER and settings.migration_url is not None:
        url = mask_password(settings.migration_url.get_secret_value())
        return f"the database at {url} (DATABASE_MIGRATION_URL)"
    return f"the database at {settings.safe_url} (DATABASE_URL)"


def password_of(settings: Settings, command: str) -> str | None:
    """The password `command` connects with, if a URL carries it, to keep out of messages."""
    if settings.database_url is None:
        return None
    if command in AS_THE_OWNER:
        return settings.migration_url_for().password
    return settings.url().password


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        settings = get_settings()
    except InvalidSettings as invalid:
        configure_command_logging(log_format_despite_errors())
        for problem in invalid.problems:
            logger.error("%s", problem)
        return 1
    configure_command_logging(settings.log_format)
    try:
        configure_tracing()
        with stop_on_signals():
            return run(arguments, settings)
    except StopRequested as stop:
{%- if cookiecutter.use_fastapi %}
        if arguments.command == "serve":
            return 0  # how a server is meant to end
{%- endif %}
        logger.error("stopped by %s before `%s` finished", stop.signal.name, arguments.command)
        return 1
    except ClusterInUse as error:
        logger.error(
            "the private PostgreSQL in %s is already running (pid %d) and this command did "
            "not start it: if another `{{ cookiecutter.package_name }} {% if cookiecutter.use_fastapi %}serve{% else %}migrate{% endif %}` uses it, stop that first; "
            "otherwise stop the server with `kill %d`",
            error.datadir,
            error.pid,
            error.pid,
        )
        return 1
    except (
        PostgresNotFound,
        ClusterError,
        MigrationTimeout,
        TracingSettingError,
        CredentialsUnavailable,
        RoleError,
    ) as error:
        logger.error("%s", error)
        return 1
    except CannotConnect as failure:
        logger.error("cannot connect to %s: %s", named(settings, arguments.command), failure)
        return 1
    except OperationalError as error:
        # Past connecting (db/migrations.py reports that): the server went away, or
        # refused a statement.
        logger.error(
            "`%s` failed on %s: %s",
            arguments.command,
            named(settings, arguments.command),
            one_line(error.orig, password_of(settings, arguments.command)),
        )
        return 1
    finally:
        # The spans still queued (a migration's) go out before the process ends.
        shutdown_tracing()
