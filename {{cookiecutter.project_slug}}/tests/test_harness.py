"""The harness itself: savepoint isolation and a migrated database."""

import ast
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from {{ cookiecutter.package_name }}.db.migrations import PROJECT_ROOT
from {{ cookiecutter.package_name }}.localpg.cache import cache_key
from {{ cookiecutter.package_name }}.localpg.cluster import APP_ROLE
from {{ cookiecutter.package_name }}.localpg.processes import process_identity
from tests.harness.databases import (
    EXTERNAL_PREFIX,
    external_database,
    external_owner_tag,
    host_tag,
    reap_external,
)
from tests.harness.early_start import DATABASE_FIXTURES, asks_for_database, is_fixture
from tests.harness.isolation import engine_for, rolled_back_connection, savepoint_sessions
from tests.harness.queries import QueryGuard
from tests.harness.servers import SessionDatabase

pytestmark = pytest.mark.harness


async def test_database_is_migrated(db_session: AsyncSession) -> None:
    version = await db_session.scalar(text("SELECT version_num FROM alembic_version"))
    assert version is not None


async def test_commits_inside_a_test_do_not_survive_it(database: SessionDatabase) -> None:
    # As the owner: a table the service's role may not create, which another session sees.
    owner_url = database.server.admin_url.set(database=database.url.database)
    owner = engine_for(owner_url.render_as_string(hide_password=False))
    try:
        async with rolled_back_connection(owner) as connection:
            await connection.execute(text("CREATE TABLE harness_probe (id int PRIMARY KEY)"))
            async with savepoint_sessions(connection)() as session:
                await session.execute(text("INSERT INTO harness_probe VALUES (1)"))
                await session.commit()
            assert await connection.scalar(text("SELECT count(*) FROM harness_probe")) == 1

        async with owner.connect() as fresh:
            exists = await fresh.scalar(text("SELECT to_regclass('harness_probe') IS NOT NULL"))
        assert exists is False
    finally:
        await owner.dispose()


async def test_code_under_test_may_commit_and_roll_back(
    db_sessions: async_sessionmaker[AsyncSession], db_session: AsyncSession
) -> None:
    # Temporary: the service's role may not create tables, and the sessions share a connection.
    await db_session.execute(text("CREATE TEMPORARY TABLE harness_probe (id int PRIMARY KEY)"))
    await db_session.commit()
    async with db_sessions() as session:
        await session.execute(text("INSERT INTO harness_probe VALUES (1)"))
        await session.commit()
        await session.execute(text("INSERT INTO harness_probe VALUES (2)"))
        await session.rollback()
    ids = (await db_session.scalars(text("SELECT id FROM harness_probe"))).all()
    assert ids == [1]


def test_changed_migration_invalidates_the_cache(tmp_path: Path, server_bindir: Path) -> None:
    bindir = server_bindir
    migrations = tmp_path / "migrations"
    shutil.copytree(PROJECT_ROOT / "migrations", migrations)
    before = cache_key(bindir, migrations)
    assert cache_key(bindir, migrations) == before
    with (migrations / "versions" / "0001_initial.py").open("a") as revision:
        revision.write("# changed\n")
    assert cache_key(bindir, migrations) != before


def test_a_cache_built_without_the_tests_role_is_not_theirs(server_bindir: Path) -> None:
    # The data-layer benchmark migrates without the role: its cache would fail every test.
    migrations = PROJECT_ROOT / "migrations"
    assert cache_key(server_bindir, migrations, APP_ROLE) != cache_key(server_bindir, migrations)


def test_external_server_gets_its_own_migrated_databases(database: SessionDatabase) -> None:
    admin_url = database.server.admin_url.set(drivername="postgresql")
    with external_database(admin_url.render_as_string(hide_password=False)) as external:
        assert external.url.database != database.url.database
        engine = create_engine(external.url.set(drivername="postgresql+psycopg"))
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT version_num FROM alembic_version"))
        engine.dispose()

    with database.server.connect() as connection:
        left = connection.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{external.template}%",)
        ).fetchall()
    assert left == []


def test_the_next_run_drops_databases_a_killed_run_left_on_an_external_server(
    database: SessionDatabase,
) -> None:
    ended = subprocess.Popen(["sleep", "60"])
    identity = process_identity(ended.pid)
    ended.kill()
    ended.wait()
    host = host_tag()
    orphan = f"{EXTERNAL_PREFIX}_{host}_{identity.replace('-', '_')}"
    ours = f"{EXTERNAL_PREFIX}_{external_owner_tag()}_probe"
    for name in (orphan, f"{orphan}_session", ours):
        database.server.create(name)
    for role in (f"{orphan}_app", f"{ours}_app"):
        database.server.create_role(role, "probe")
    try:
        reaped = reap_external(database.server)
        with database.server.connect() as connection:
            left = {
                name
                for (name,) in connection.execute(
                    "SELECT datname FROM pg_database WHERE starts_with(datname, %s) "
                    "UNION ALL SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
                    (EXTERNAL_PREFIX, EXTERNAL_PREFIX),
                )
            }
    finally:
        for name in (orphan, f"{orphan}_session", ours):
            database.server.drop(name)
        for role in (f"{orphan}_app", f"{ours}_app"):
            database.server.drop_role(role)
    # The copy before the template it came from, and the role after both.
    assert reaped.index(f"{orphan}_session") < reaped.index(orphan) < reaped.index(f"{orphan}_app")
    assert {ours, f"{ours}_app"} <= left
    assert not {orphan, f"{orphan}_app"} & left


async def test_query_guard_fails_past_its_limit(
    db_session: AsyncSession, assert_max_queries: QueryGuard
) -> None:
    with assert_max_queries(3) as statements:
        for _ in range(3):
            await db_session.execute(text("SELECT 1"))
    # The session's SAVEPOINT is the harness's, not the code's: it is not counted.
    assert statements == ["SELECT 1"] * 3

    with (
        pytest.raises(AssertionError, match="3 queries where at most 2"),
        assert_max_queries(2),
    ):
        for _ in range(3):
            await db_session.execute(text("SELECT 1"))


def test_the_early_start_knows_every_fixture_that_needs_the_database() -> None:
    tree = ast.parse((Path(__file__).parent / "harness" / "fixtures.py").read_text())
    asks = {
        node.name: {argument.arg for argument in node.args.args}
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and is_fixture(node)
    }
    needing = {"database"}
    while grown := {name for name, names in asks.items() if names & needing} - needing:
        needing |= grown
    assert needing == DATABASE_FIXTURES


@pytest.mark.parametrize(
    ("source", "selected", "asks"),
    [
        ("async def test_a(db_session): ...", None, True),
        ("async def test_a(tmp_path): ...", None, False),
        ("async def test_a(tmp_path): ...\nasync def test_b(db_engine): ...", {"test_a"}, False),
        ("async def test_a(tmp_path): ...\nasync def test_b(db_engine): ...", {"test_b"}, True),
        ("class TestA:\n    async def test_b(self, make): ...", {"TestA"}, True),
        ("@pytest.fixture\ndef rows(db_session): ...\ndef test_a(rows): ...", {"test_a"}, True),
        ("pytestmark = pytest.mark.usefixtures('db_engine')\ndef test_a(): ...", None, True),
        (
            "@pytest.mark.usefixtures('tmp_path')\ndef test_a(db_session): ...\ndef test_b(): ...",
            {"test_b"},
            False,
        ),
        ("def test_a(request): request.getfixturevalue('db_session')", None, True),
        ("def test_a(): assert 'database'.upper() == 'DATABASE'", None, False),
        ("def test_a(:", None, False),
        ("async def test_a(db_session): ...\x00", None, False),
    ],
    ids=[
        "parameter",
        "none",
        "node id without",
        "node id with",
        "class",
        "fixture of the file",
        "usefixtures",
        "a test's usefixtures is no fixture",
        "getfixturevalue",
        "a string that is not a fixture's",
        "syntax error",
        "null byte",
    ],
)
def test_a_file_asks_for_the_database_by_parameter_fixture_or_name(
    source: str, selected: set[str] | None, asks: bool
) -> None:
    assert asks_for_database(source, selected) is asks
