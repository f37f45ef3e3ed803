"""Command line: `{{ cookiecutter.package_name }} migrate`{% if cookiecutter.use_fastapi %} and `{{ cookiecutter.package_name }} serve`{% endif %}.

With DATABASE_URL unset, each command runs on a private PostgreSQL cluster kept
in .postgres/ (git-ignored), started for the command and stopped after it.
"""

import argparse
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.exc import OperationalError

from {{ cookiecutter.package_name }}.db.local import ClusterError, PostgresNotFound, embedded_cluster
from {{ cookiecutter.package_name }}.db.migrations import upgrade_database
from {{ cookiecutter.package_name }}.settings import Settings, get_settings

logger = logging.getLogger("{{ cookiecutter.package_name }}")
EMBEDDED_DIR = Path(".postgres")


@contextmanager
def configured_database(settings: Settings) -> Iterator[Settings]:
    """The settings as given, or pointed at the embedded cluster when no URL is set."""
    if settings.database_url is not None:
        yield settings
        return
    with embedded_cluster(EMBEDDED_DIR, database="{{ cookiecutter.package_name }}") as url:
        # Printed in libpq form so it can be pasted into psql.
        libpq_url = f"postgresql://{url.username}@/{url.database}?host={url.query['host']}"
        logger.info("DATABASE_URL is not set: using the private PostgreSQL at %s", libpq_url)
        yield settings.model_copy(
            update={"database_url": SecretStr(url.render_as_string(hide_password=False))}
        )


def migrate(settings: Settings) -> None:
    upgrade_database(settings.url("psycopg"))
    logger.info("the database is at the latest revision")
{%- if cookiecutter.use_fastapi %}


def serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from {{ cookiecutter.package_name }}.api import create_app

    uvicorn.run(create_app(settings), host=host, port=port)
{%- endif %}


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="{{ cookiecutter.package_name }}", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="upgrade the database to the latest revision")
{%- if cookiecutter.use_fastapi %}
    serve_parser = commands.add_parser(
        "serve", help="run the HTTP API (migrates first when using the embedded database)"
    )
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
{%- endif %}
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    {% if cookiecutter.use_fastapi %}arguments = {% endif %}parse_arguments(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("{{ cookiecutter.package_name }}", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.INFO)
    settings = get_settings()
    try:
        with configured_database(settings) as database_settings:
{%- if cookiecutter.use_fastapi %}
            if arguments.command == "migrate" or settings.database_url is None:
                migrate(database_settings)
            if arguments.command == "serve":
                serve(database_settings, arguments.host, arguments.port)
{%- else %}
            migrate(database_settings)
{%- endif %}
    except (PostgresNotFound, ClusterError) as error:
        logger.error("%s", error)
        return 1
    except OperationalError as error:
        # The exception type only: the driver's message can repeat connection details.
        logger.error(
            "cannot reach the database at %s (%s): check that it is running "
            "and that DATABASE_URL is right",
            settings.safe_url,
            type(error.orig).__name__,
        )
        return 1
    return 0
