"""Run the project's Alembic migrations from code (CLI, tests, start-up)."""

import importlib
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import URL, Connection, create_engine
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from alembic.config import Config

# The project root holds alembic.ini; src/<package>/db/migrations.py is three levels down.
PROJECT_ROOT = Path(__file__).resolve().parents[3]
# The advisory lock migrations/env.py takes, so that instances starting together
# migrate one after another. Any fixed number will do if every process uses it.
MIGRATION_LOCK = zlib.crc32(b"{{ cookiecutter.package_name }} migrations")
# Alembic and what migrations/env.py imports: ~0.3 s before the first revision runs.
MIGRATION_MODULES = (
    "alembic.command",
    "{{ cookiecutter.package_name }}.db.engine",
    "{{ cookiecutter.package_name }}.models",
    "{{ cookiecutter.package_name }}.settings",
)


def import_migration_modules() -> None:
    """Import what migrating needs, e.g. in a thread while a server starts."""
    for name in MIGRATION_MODULES:
        importlib.import_module(name)


def alembic_config(connection: Connection | None = None) -> "Config":
    """The project's Alembic config, optionally bound to an open connection."""
    # Imported on use: the test harness imports this module at every start but
    # migrates only when it rebuilds its cache, and Alembic takes ~0.2 s to import.
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
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), revision)


def downgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(connection), revision)


def upgrade_database(url: URL, revision: str = "head") -> None:
    """Upgrade the database at `url` in one transaction, with no statement timeout."""
    engine = create_engine(url.set(drivername="postgresql+psycopg"), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            upgrade(connection, revision)
    finally:
        engine.dispose()
