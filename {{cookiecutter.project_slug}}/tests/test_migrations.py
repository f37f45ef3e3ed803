"""Migrations: every revision up, down and up again; one head; no drift; safe to run at once."""

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import (
    URL,
    BigInteger,
    Column,
    Connection,
    Identity,
    String,
    Table,
    create_engine,
    inspect,
    text,
)
from sqlalchemy.pool import NullPool

from {{ cookiecutter.package_name }}.db.migrations import (
    MIGRATE_NAME,
    MIGRATION_LOCK,
    PROJECT_ROOT,
    alembic_config,
    downgrade,
    upgrade,
)
from {{ cookiecutter.package_name }}.features import load_models
from tests.harness.servers import SessionDatabase
from tests.migration_copies import copy_migrations

# Every feature's tables, as Alembic compares them.
METADATA = load_models()

# Migrate commands started together; two suffice, since the lock is held until both wait.
INSTANCES = 2
# What a revision can change, read from the catalogs; alembic_version is Alembic's own.
SCHEMA_QUERIES = {
    "columns": """
        SELECT table_name, column_name, udt_name, is_nullable, column_default
        FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name <> 'alembic_version'
    """,
    "indexes": """
        SELECT indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' AND tablename <> 'alembic_version'
    """,
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace
          AND conrelid::regclass::text <> 'alembic_version'
    """,
    "types": """
        SELECT typname, typtype FROM pg_type
        WHERE typnamespace = 'public'::regnamespace AND typtype IN ('e', 'd', 'c')
          AND typrelid = 0
    """,
    "sequences": "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'",
    # What the service's role was granted on each table and sequence.
    "privileges": """
        SELECT relname, relacl::text FROM pg_class
        WHERE relnamespace = 'public'::regnamespace AND relname <> 'alembic_version'
          AND relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
    """,
}


@pytest.fixture
def empty_database_url(database: SessionDatabase) -> Iterator[URL]:
    """A brand-new database with no tables, dropped after the test."""
    name = f"migrations_{uuid.uuid4().hex[:8]}"
    yield database.server.create(name).set(drivername="postgresql+psycopg")
    database.server.drop(name)


@pytest.fixture
def empty_database(empty_database_url: URL) -> Iterator[Connection]:
    engine = create_engine(empty_database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def schema(connection: Connection) -> dict[str, list[tuple[object, ...]]]:
    snapshot = {
        name: sorted(tuple(row) for row in connection.execute(text(query)))
        for name, query in SCHEMA_QUERIES.items()
    }
    connection.rollback()
    return snapshot


def revisions_from_base() -> list[Script]:
    return list(reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions())))


def migrate(connection: Connection, step: str, revision: str, app_role: str | None = None) -> None:
    (upgrade if step == "up" else downgrade)(connection, revision, app_role=app_role)
    connection.commit()


def test_every_revision_goes_up_down_and_up_again(
    empty_database: Connection, database: SessionDatabase
) -> None:
    # Granting to the service's role as `migrate` does: the round trip keeps the grants too.
    role = database.app_role.name
    for revision in revisions_from_base():
        below = schema(empty_database)
        migrate(empty_database, "up", revision.revision, role)
        above = schema(empty_database)
        migrate(empty_database, "down", str(revision.down_revision or "base"), role)
        assert schema(empty_database) == below, f"{revision.revision} does not downgrade cleanly"
        migrate(empty_database, "up", revision.revision, role)
        assert schema(empty_database) == above, f"{revision.revision} differs after a round trip"
    assert set(inspect(empty_database).get_table_names()) - {"alembic_version"} == set(
        METADATA.tables
    )


{% if cookiecutter.include_example_models -%}
def enum_types(connection: Connection) -> set[str]:
    return {str(row[0]) for row in schema(connection)["types"] if row[1] == "e"}


def test_the_enum_revision_drops_its_type_on_downgrade(empty_database: Connection) -> None:
    migrate(empty_database, "up", "0003")
    assert enum_types(empty_database) == {"post_status"}
    migrate(empty_database, "down", "0002")
    assert enum_types(empty_database) == set()


{% endif -%}
def test_down_to_base_leaves_nothing(empty_database: Connection) -> None:
    empty = schema(empty_database)
    migrate(empty_database, "up", "head")
    migrate(empty_database, "down", "base")
    assert schema(empty_database) == empty


def test_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"migrations have {len(heads)} heads: {heads}; merge them"


def test_models_and_migrations_agree(empty_database: Connection) -> None:
    migrate(empty_database, "up", "head")
    context = MigrationContext.configure(
        empty_database, opts={"compare_type": True, "compare_server_default": True}
    )
    differences = compare_metadata(context, METADATA)
    assert differences == [], (
        f"models and migrations differ; autogenerate a revision: {differences}"
    )


def test_an_autogenerated_revision_passes_ruff(empty_database: Connection) -> None:
    from alembic import command

    migrate(empty_database, "up", "head")
    # A model change for autogenerate to find, and a folder of this test's own for
    # the revision: inside the project, so ruff applies the project's settings.
    probe = Table(
        "autogenerate_probe",
        METADATA,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("label", String(50), index=True),
    )
    versions = PROJECT_ROOT / "migrations" / f".autogenerate-{uuid.uuid4().hex[:8]}"
    versions.mkdir()
    try:
        config = alembic_config(empty_database)
        locations = [str(PROJECT_ROOT / "migrations" / "versions"), str(versions)]
        config.set_main_option("version_locations", os.pathsep.join(locations))
        script = command.revision(
            config, message="add probe", autogenerate=True, version_path=str(versions)
        )
        assert isinstance(script, Script)
        written = Path(script.path)
        assert "op.create_table" in written.read_text()
        for check in (["check", "--no-fix"], ["format", "--check"]):
            result = subprocess.run(
                [sys.executable, "-m", "ruff", *check, str(written)],
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, f"ruff {check[0]}:\n{result.stdout}{result.stderr}"
    finally:
        METADATA.remove(probe)
        shutil.rmtree(versions, ignore_errors=True)


# Launches `migrate` on the migrations copy whose root is argv[1], on each database URL
# after it in turn, each round's output after a line of its own.
ROUND_STARTS = "-- next round --"
MIGRATE_THE_COPY = f"""
import os
import sys
from pathlib import Path
from {{ cookiecutter.package_name }}.db import migrations
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.settings import get_settings
migrations.PROJECT_ROOT = Path(sys.argv[1])
for url in sys.argv[2:]:
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    print({ROUND_STARTS!r}, flush=True)
    if main(["migrate"]) != 0:
        sys.exit(1)
"""
# Rounds of instances started together: a deadlock shows in one round, not in every one.
ROUNDS = 3
# Each kind of revision the README's "Writing a safe migration" recommends, on a table of its own.
SAFE_REVISIONS = {
    "together_table": """
        op.create_table(
            "together_probe",
            sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
            sa.Column("note", sa.Text),
        )
        op.execute("INSERT INTO together_probe (note) SELECT NULL FROM generate_series(1, 20000)")
    """,
    "together_index": """
        with op.get_context().autocommit_block():
            op.create_index(
                "ix_together_probe_note", "together_probe", ["note"], postgresql_concurrently=True
            )
    """,
    "together_backfill": """
        with op.get_context().autocommit_block():
            op.execute('''
                DO $$ BEGIN
                    LOOP
                        UPDATE together_probe SET note = '' WHERE id IN
                            (SELECT id FROM together_probe WHERE note IS NULL LIMIT 5000);
                        EXIT WHEN NOT FOUND;
                        COMMIT;
                    END LOOP;
                END $$
            ''')
    """,
    "together_not_null": """
        op.create_check_constraint(
            "note_not_null", "together_probe", "note IS NOT NULL", postgresql_not_valid=True
        )
        op.execute("ALTER TABLE together_probe VALIDATE CONSTRAINT ck_together_probe_note_not_null")
    """,
}


def waiting_for_lock(connection: Connection, database: str) -> int:
    """The migrate commands in `database` waiting for MIGRATION_LOCK (or trying it in turns)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = :database"
        " AND application_name = :name AND query LIKE '%advisory_lock(%'"
    )
    waiting = connection.execute(query, {"database": database, "name": MIGRATE_NAME})
    count = int(waiting.scalar_one())
    connection.commit()
    return count


def migrate_together(urls: list[URL], project: Path) -> list[subprocess.Popen[str]]:
    """INSTANCES processes migrating each of `urls` in turn, all of them let go on a
    database only once every one waits for its lock.

    The rounds share the processes: starting Python and importing the service costs
    more than migrating.
    """
    rendered = [url.render_as_string(hide_password=False) for url in urls]
    command = [sys.executable, "-c", MIGRATE_THE_COPY, str(project), *rendered]
    engines = [create_engine(url, poolclass=NullPool) for url in urls]
    try:
        with contextlib.ExitStack() as holders:
            # Each database's lock is held before the processes start: they find it taken.
            held = [holders.enter_context(engine.connect()) for engine in engines]
            for holder in held:
                holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
                holder.commit()
            processes = [
                subprocess.Popen(
                    command,
                    cwd=project,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for _ in range(INSTANCES)
            ]
            deadline = time.monotonic() + 120
            try:
                for url, holder in zip(urls, held, strict=True):
                    while waiting_for_lock(holder, str(url.database)) < INSTANCES:
                        assert all(process.poll() is None for process in processes), "one exited"
                        assert time.monotonic() < deadline, "the commands never waited for the lock"
                        time.sleep(0.01)
                    # Closing the session releases its advisory lock.
                    holder.close()
            except AssertionError:
                for process in processes:
                    process.kill()
                raise
    finally:
        for engine in engines:
            engine.dispose()
    return processes


def test_instances_migrating_at_once_apply_each_revision_once(
    database: SessionDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = copy_migrations(tmp_path / "project", monkeypatch)
    for revision, upgrade_body in SAFE_REVISIONS.items():
        copy.add(revision, upgrade_body)
    revisions = len(revisions_from_base())
    names = [f"together_{round_number}_{uuid.uuid4().hex[:8]}" for round_number in range(ROUNDS)]
    try:
        urls = [database.server.create(name).set(drivername="postgresql+psycopg") for name in names]
        processes = migrate_together(urls, copy.root)
        outputs = [process.communicate(timeout=120)[0] for process in processes]
    finally:
        for name in names:
            database.server.drop(name)
    report = "\n".join(outputs)
    assert [process.returncode for process in processes] == [0] * INSTANCES, report
    # Each process's output, split into its rounds (the text before the first is empty).
    rounds = [output.split(ROUND_STARTS)[1:] for output in outputs]
    assert all(len(each) == ROUNDS for each in rounds), report
    for round_number in range(ROUNDS):
        upgrades = sum(each[round_number].count("Running upgrade") for each in rounds)
        assert upgrades == revisions, f"round {round_number + 1}:\n{report}"
