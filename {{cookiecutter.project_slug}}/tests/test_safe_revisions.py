"""No revision builds an index on an existing table without CONCURRENTLY.

A plain CREATE INDEX blocks every write to its table for as long as the build
takes. It is fine on a table the same revision creates (it is empty), and
nowhere else. The revisions are read as the SQL `alembic upgrade --sql` writes.
"""

import re
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import URL, create_engine, text
from sqlalchemy.pool import NullPool

from {{ cookiecutter.package_name }}.db.migrations import alembic_config, upgrade_database
from tests.harness.servers import SessionDatabase
from tests.migration_copies import MigrationsCopy, copy_migrations, offline_sql

# Where each revision's SQL starts in the offline output.
REVISION_HEADER = re.compile(r"^-- Running upgrade \S* -> (\S+)$", re.MULTILINE)
NAME = r'(?:"[^"]+"|\w+)(?:\.(?:"[^"]+"|\w+))?'
CREATED_TABLE = re.compile(rf"^CREATE TABLE (?:IF NOT EXISTS )?({NAME})", re.MULTILINE)
CREATED_INDEX = re.compile(
    rf"^CREATE (?:UNIQUE )?INDEX (?!CONCURRENTLY)[^;]*? ON (?:ONLY )?({NAME})[^;]*;",
    re.MULTILINE,
)


def table_name(name: str) -> str:
    """The table of a possibly schema-qualified, possibly quoted name."""
    return name.rsplit(".", 1)[-1].strip('"')


def blocking_index_builds(config: Config) -> list[str]:
    """'<revision>: <statement>' for each CREATE INDEX without CONCURRENTLY on a table
    that its revision does not create."""
    sections = REVISION_HEADER.split(offline_sql(config))[1:]
    found = []
    for revision, sql in zip(sections[::2], sections[1::2], strict=True):
        created = {table_name(name) for name in CREATED_TABLE.findall(sql)}
        for statement in CREATED_INDEX.finditer(sql):
            if table_name(statement[1]) not in created:
                found.append(f"{revision}: {statement[0]}")
    return found


def test_no_revision_builds_an_index_on_an_existing_table_without_concurrently() -> None:
    found = blocking_index_builds(alembic_config())
    assert found == [], (
        "build these indexes with CONCURRENTLY, inside "
        "`with op.get_context().autocommit_block():` (see the README):\n" + "\n".join(found)
    )


def add_index_probes(copy: MigrationsCopy) -> MigrationsCopy:
    """Revisions of the test's own on top of `copy`'s: a table and its first index,
    then two indexes built the blocking way, then one built concurrently."""
    copy.add(
        "index_probe_table",
        """
        op.create_table(
            "index_probe",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("a", sa.Integer),
            sa.Column("b", sa.Integer),
        )
        op.create_index("ix_index_probe_a", "index_probe", ["a"])
        """,
        'op.drop_table("index_probe")',
    )
    copy.add(
        "index_probe_blocking",
        """
        op.create_index("ix_index_probe_b", "index_probe", ["b"])
        op.execute("CREATE UNIQUE INDEX ix_index_probe_id ON public.index_probe (id)")
        """,
        """
        op.drop_index("ix_index_probe_id", "index_probe")
        op.drop_index("ix_index_probe_b", "index_probe")
        """,
    )
    copy.add(
        "index_probe_concurrent",
        """
        with op.get_context().autocommit_block():
            op.create_index(
                "ix_index_probe_a_b", "index_probe", ["a", "b"], postgresql_concurrently=True
            )
        """,
        'op.drop_index("ix_index_probe_a_b", "index_probe")',
    )
    return copy


@pytest.fixture
def index_revisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MigrationsCopy:
    """The project's revisions, then the index probes."""
    return add_index_probes(copy_migrations(tmp_path / "project", monkeypatch))


@pytest.fixture
def index_probes_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MigrationsCopy:
    """Only the index probes: what the check finds does not depend on the project's revisions."""
    copy = copy_migrations(tmp_path / "project", monkeypatch)
    copy.remove_project_revisions()
    return add_index_probes(copy)


def test_the_check_finds_indexes_built_the_blocking_way(
    index_probes_alone: MigrationsCopy,
) -> None:
    assert blocking_index_builds(alembic_config()) == [
        "index_probe_blocking: CREATE INDEX ix_index_probe_b ON index_probe (b);",
        "index_probe_blocking: CREATE UNIQUE INDEX ix_index_probe_id ON public.index_probe (id);",
    ]


def test_an_index_built_concurrently_is_valid_after_migrate(
    index_revisions: MigrationsCopy, database: SessionDatabase
) -> None:
    # On a clone of the migrated database: the timeouts of each revision's transaction
    # must not get in the way of the build outside it.
    name, url = database.clones.take()
    try:
        upgrade_database(url)
        valid = indexes_valid(url.set(drivername="postgresql+psycopg"))
    finally:
        database.clones.release(name)
    assert valid == {"ix_index_probe_a_b": True}


def indexes_valid(url: URL) -> dict[str, bool]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT indexrelid::regclass::text, indisvalid FROM pg_index "
                    "WHERE indexrelid = 'ix_index_probe_a_b'::regclass"
                )
            )
            return {str(index): bool(valid) for index, valid in rows}
    finally:
        engine.dispose()
