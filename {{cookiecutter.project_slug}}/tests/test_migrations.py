"""Migrations: up from empty, down to base, up again; one head; no drift from the models."""

import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect
from sqlalchemy.pool import NullPool

from {{ cookiecutter.package_name }}.db.migrations import alembic_config, downgrade, upgrade
from {{ cookiecutter.package_name }}.models import Base
from tests.harness.postgres import SessionDatabase


@pytest.fixture
def empty_database(database: SessionDatabase) -> Iterator[Connection]:
    """A brand-new database with no tables, dropped after the test."""
    name = f"migrations_{uuid.uuid4().hex[:8]}"
    url = database.server.create(name).set(drivername="postgresql+psycopg")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()
        database.server.drop(name)


def tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(empty_database: Connection) -> None:
    model_tables = set(Base.metadata.tables)
    upgrade(empty_database)
    empty_database.commit()
    assert tables(empty_database) == model_tables

    downgrade(empty_database, "base")
    empty_database.commit()
    assert tables(empty_database) == set()

    upgrade(empty_database)
    empty_database.commit()
    assert tables(empty_database) == model_tables


def test_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"migrations have {len(heads)} heads: {heads}; merge them"


def test_models_and_migrations_agree(empty_database: Connection) -> None:
    upgrade(empty_database)
    empty_database.commit()
    context = MigrationContext.configure(
        empty_database, opts={"compare_type": True, "compare_server_default": True}
    )
    differences = compare_metadata(context, Base.metadata)
    assert differences == [], (
        f"models and migrations differ; autogenerate a revision: {differences}"
    )
