"""The database fixtures: one throwaway PostgreSQL per run, one rolled-back transaction per test.

Mark a test `@pytest.mark.isolated_db` to give it a database of its own instead;
it sees the same fixtures, bound to that database. A test that asks for a
streaming replica (`replica`, `replica_urls`) is isolated without the marker: a
rolled-back transaction never reaches a replica. tests/conftest.py loads this
plugin in every process that runs tests.

Every process that runs tests imports this file, also to run one test that needs
no database: it imports SQLAlchemy, the drivers and the rest of the harness only in
the fixtures that use them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

{% if cookiecutter.use_fastapi %}    import httpx
    from fastapi import FastAPI
{% endif %}    from sqlalchemy.ext.asyncio import (
        AsyncConnection,
        AsyncEngine,
        AsyncSession,
        async_sessionmaker,
    )

    from {{ cookiecutter.package_name }}.localpg.cluster import Cluster
    from tests.factories import Make
    from tests.harness.isolation import DatabaseScope
    from tests.harness.queries import QueryGuard
    from tests.harness.replicas import ReplicaServer
    from tests.harness.servers import AppRole, Owner, SessionDatabase

# Fixtures that isolate the tests that ask for them: only real commits reach a replica.
ISOLATING_FIXTURES = frozenset({"replica", "replica_urls"})


def is_isolated(request: pytest.FixtureRequest) -> bool:
    from tests.harness.isolation import ISOLATED_MARKER

    marked = request.node.get_closest_marker(ISOLATED_MARKER) is not None
    return marked or not ISOLATING_FIXTURES.isdisjoint(request.fixturenames)


def pytest_collectstart(collector: pytest.Collector) -> None:
    if isinstance(collector, pytest.Module):
        from tests.harness.early_start import start_if_asked

        start_if_asked(collector)


@pytest.fixture(scope="session")
def database(request: pytest.FixtureRequest) -> Iterator[SessionDatabase]:
    from tests.harness.databases import session_database
    from tests.harness.early_start import early_cluster, run_identity

    config = request.config
    with session_database(run_identity(config), early_cluster(config)) as database:
        yield database


@pytest.fixture(scope="session")
def server_bindir() -> Path:
    """Server binaries, for tests that run a cluster of their own (restarts, the CLI's)."""
    from {{ cookiecutter.package_name }}.localpg.binaries import PostgresNotFound, find_bindir

    try:
        return find_bindir()
    except PostgresNotFound:
        pytest.skip("needs PostgreSQL server binaries to run a cluster of its own (none found)")


@pytest.fixture
def restartable_cluster(server_bindir: Path) -> Iterator[Cluster]:
    """A migrated cluster of the test's own, to stop and start (the shared one serves others)."""
    from {{ cookiecutter.package_name }}.localpg.runs import shared_cluster
    from tests.harness.databases import project_migrations

    name = f"restart-{uuid.uuid4().hex[:8]}"
    with shared_cluster(server_bindir, name, project_migrations()) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def replica_server(database: SessionDatabase) -> Iterator[ReplicaServer]:
    """This process's streaming replica of the run's cluster, started when a test first asks."""
    from tests.harness.replicas import replica_of

    if database.cluster is None:
        pytest.skip(
            "needs the harness's own cluster: a standby of the server in TEST_DATABASE_URL "
            "cannot be started here"
        )
    with replica_of(database.cluster) as server:
        yield server


@pytest.fixture
def replica(replica_server: ReplicaServer, db_engine: AsyncEngine) -> ReplicaServer:
    """A hot standby of the test cluster: running, replaying, and caught up with the primary
    (the test's own database included) when the test starts.

    The test is isolated (a database of its own, real commits): a rolled-back transaction
    never reaches a replica. Call `wait_caught_up()` after a commit before reading it on
    the standby; `pause_replay()`, `stop()` and their opposites last until the next test
    asks for the replica.
    """
    replica_server.ready_for_test()
    return replica_server


@pytest.fixture
def replica_urls(
    replica: ReplicaServer, db_engine: AsyncEngine, database: SessionDatabase
) -> list[str]:
    """The test's database on the standby as the application role (asyncpg URLs), e.g. for
    Settings(database_replica_urls=...); the test is isolated, as with `replica`."""
    name = db_engine.url.database
    assert name is not None
    return [database.app_role.login(replica.url(name)).render_as_string(hide_password=False)]


@pytest.fixture(scope="session")
async def session_engine(database: SessionDatabase) -> AsyncIterator[AsyncEngine]:
    from tests.harness.isolation import engine_for

    engine = engine_for(database.url.render_as_string(hide_password=False))
    yield engine
    await engine.dispose()


@pytest.fixture
async def isolated_engine_for_test(database: SessionDatabase) -> AsyncIterator[AsyncEngine]:
    from tests.harness.isolation import isolated_engine

    async with isolated_engine(database) as engine:
        yield engine


@pytest.fixture
def db_engine(request: pytest.FixtureRequest, session_engine: AsyncEngine) -> AsyncEngine:
    """The engine tests and code under test use: shared, or the test's own database."""
    if is_isolated(request):
        engine: AsyncEngine = request.getfixturevalue("isolated_engine_for_test")
        return engine
    return session_engine


@pytest.fixture
def postgres_url(db_engine: AsyncEngine) -> str:
    """The test's database, as the application role (asyncpg URL)."""
    return db_engine.url.render_as_string(hide_password=False)


@pytest.fixture
def db_owner(
    request: pytest.FixtureRequest, database: SessionDatabase, db_engine: AsyncEngine
) -> Owner:
    """The test's own database as the owner of its tables: `await db_owner.execute(ddl)`
    makes tables the service's role may then use, `db_owner.url` migrates.

    The service's role may not change the schema, and what the owner commits would
    outlive a rolled-back test: the test must have a database of its own.
    """
    from tests.harness.servers import Owner

    if not is_isolated(request):
        pytest.fail("db_owner needs a database of the test's own: mark the test isolated_db")
    owner_url = database.server.admin_url.set(database=db_engine.url.database)
    return Owner(url=owner_url, app_role=database.app_role)


@pytest.fixture
def bare_role(database: SessionDatabase) -> Iterator[AppRole]:
    """A login role of the test's own that no migration granted anything; dropped after."""
    from tests.harness.servers import AppRole

    password = uuid.uuid4().hex
    role = AppRole(f"bare_{uuid.uuid4().hex[:8]}", password)
    database.server.create_role(role.name, password)
    try:
        yield role
    finally:
        database.server.drop_role(role.name)


@pytest.fixture
async def db_scope(
    request: pytest.FixtureRequest, database: SessionDatabase, db_engine: AsyncEngine
) -> AsyncIterator[DatabaseScope]:
    from tests.harness.isolation import database_scope

    # One async fixture sets up everything below: each async fixture adds to every test.
    try:
        async with database_scope(db_engine, isolated=is_isolated(request)) as scope:
            yield scope
    except Exception:
        # A dead server ends the run after this test (and this xdist worker's, after
        # theirs), instead of every remaining test failing against it one by one.
        if (reason := database.server_gone()) is not None:
            request.session.shouldstop = reason
        raise


@pytest.fixture
def db_connection(db_scope: DatabaseScope) -> AsyncConnection:
    """A connection inside a transaction that is rolled back after the test."""
    return db_scope.connection


@pytest.fixture
def db_sessions(db_scope: DatabaseScope) -> async_sessionmaker[AsyncSession]:
    """Session factory for code under test: joins the test's transaction, or commits for real."""
    return db_scope.sessions


@pytest.fixture
def db_read_sessions(db_scope: DatabaseScope) -> async_sessionmaker[AsyncSession]:
    """Read-only session factory, as the code under test gets from make_read_session_factory."""
    return db_scope.read_sessions


@pytest.fixture
def db_session(db_scope: DatabaseScope) -> AsyncSession:
    return db_scope.session


@pytest.fixture
def make(db_session: AsyncSession) -> Make:
    """Rows from factories (tests/factories.py), added through `db_session` and flushed."""
    from tests.factories import Make

    return Make(db_session)


@pytest.fixture
def assert_max_queries(db_engine: AsyncEngine) -> QueryGuard:
    """`with assert_max_queries(2): ...` fails the test if the block sends more statements."""
    from tests.harness.queries import max_queries

    return partial(max_queries, db_engine)
{%- if cookiecutter.use_fastapi %}


@pytest.fixture(scope="session")
def shared_api() -> FastAPI:
    """One app per process: FastAPI prepares each route of an app on its first request."""
    from {{ cookiecutter.package_name }}.api import create_app
    from {{ cookiecutter.package_name }}.settings import Settings

    return create_app(Settings())


def bound_to_test(app: FastAPI, db_scope: DatabaseScope) -> FastAPI:
    """`app` with its requests' units of work running on the test's sessions."""
    app.state.database = db_scope.database
    return app


@pytest.fixture
def api(shared_api: FastAPI, db_scope: DatabaseScope) -> Iterator[FastAPI]:
    """The app, its requests' units of work running on the test's sessions.

    Shared by the tests of a process: a test that adds routes asks for `own_api`.
    """
    yield bound_to_test(shared_api, db_scope)
    del shared_api.state.database


@pytest.fixture
def own_api(db_scope: DatabaseScope) -> FastAPI:
    """An app of the test's own, to add routes to, on the test's sessions."""
    from {{ cookiecutter.package_name }}.api import create_app
    from {{ cookiecutter.package_name }}.settings import Settings

    return bound_to_test(create_app(Settings()), db_scope)


@pytest.fixture
async def client(api: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the app over ASGI."""
    import httpx

    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
{%- endif %}
