"""DB_PGBOUNCER: the engine works through PgBouncer in transaction mode.

PgBouncer here has two server connections for many clients, so consecutive
transactions of one client run on different server connections.
{%- if cookiecutter.include_example_models %} A representative
part of the repository and transfer tests runs through it.
{%- endif %}

Replicas behind PgBouncers of their own serve reads as they do directly.
"""

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import URL, {% if cookiecutter.include_example_models %}func, {% endif %}make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.package_name }}.db.engine import (
    application_name,
    create_async_engine_from_settings,
    read_engine_for,
)
from {{ cookiecutter.package_name }}.db.replicas.read_after import reading_after
from {{ cookiecutter.package_name }}.db.session import (
    make_read_session_factory,
    make_session_factory,
    transaction,
)
{%- if cookiecutter.include_example_models %}
from {{ cookiecutter.package_name }}.features.blog.models import User
from {{ cookiecutter.package_name }}.features.blog.repositories import UserRepository
from {{ cookiecutter.package_name }}.repositories.base import COPY_THRESHOLD
{%- endif %}
from {{ cookiecutter.package_name }}.settings import Settings
from tests.harness.pgbouncer import INSTALL_HINT, PgBouncerError, find_pgbouncer, pgbouncer
from tests.harness.replicas import ReplicaServer
from tests.harness.servers import Owner, SessionDatabase
from tests.replica_routing import (
    create_notes_table,
    read_note,
    replicas_of,
    routed_database,
    routed_settings,
    write_note,
)

CLIENTS = 16
ROUNDS = 6

NAME = text("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")


@pytest.fixture(scope="session")
def bouncer(database: SessionDatabase) -> Iterator[URL]:
    """One PgBouncer for the session, in front of the test server (any database)."""
    executable = find_pgbouncer()
    if executable is None:
        if os.environ.get("REQUIRE_PGBOUNCER"):
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    with pgbouncer(executable, database.url) as url:
        yield url


def test_pgbouncer_variable_names_the_executable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    not_executable = tmp_path / "pgbouncer"
    not_executable.write_text("")
    monkeypatch.setenv("PGBOUNCER", str(not_executable))
    with pytest.raises(PgBouncerError, match=r"PGBOUNCER=.* is not an executable file"):
        find_pgbouncer()
    not_executable.chmod(0o755)
    assert find_pgbouncer() == not_executable


def engine_through(bouncer: URL, postgres_url: str, *, pgbouncer_mode: bool) -> AsyncEngine:
    url = bouncer.set(database=make_url(postgres_url).database)
    settings = Settings(
        database_url=SecretStr(url.render_as_string(hide_password=False)),
        pgbouncer=pgbouncer_mode,
        pool_size=CLIENTS,
    )
    return create_async_engine_from_settings(settings)


@pytest.fixture
async def bounced(bouncer: URL, postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine in PgBouncer mode, through PgBouncer, on the test's own database."""
    engine = engine_through(bouncer, postgres_url, pgbouncer_mode=True)
    yield engine
    await engine.dispose()


async def many_clients(engine: AsyncEngine) -> None:
    """Every client runs distinct statements, in units of work and in read sessions."""
    sessions = make_session_factory(engine)
    reads = make_read_session_factory(engine)

    async def client(number: int) -> None:
        for round_ in range(ROUNDS):
            async with transaction(sessions) as session:
                value = await session.scalar(text(f"SELECT {number} + :r"), {"r": round_})
                assert value == number + round_
            async with reads() as session:
                doubled = await session.scalar(text("SELECT CAST(:v AS int) * 2"), {"v": number})
                assert doubled == number * 2

    await asyncio.gather(*(client(number) for number in range(CLIENTS)))


@pytest.mark.isolated_db
async def test_pgbouncer_mode_shares_server_connections_safely(bounced: AsyncEngine) -> None:
    await many_clients(bounced)


def test_pgbouncer_mode_reads_on_the_ordinary_engine() -> None:
    settings = Settings(database_url=SecretStr("postgresql://app@bouncer/app"), pgbouncer=True)
    engine = create_async_engine_from_settings(settings)
    assert read_engine_for(engine, settings) is engine


@pytest.mark.isolated_db
async def test_pgbouncer_mode_reads_run_in_transactions(bounced: AsyncEngine) -> None:
    # now() is the transaction's start time: the same for both statements.
    async with make_read_session_factory(bounced)() as session:
        first = await session.scalar(text("SELECT now()"))
        await asyncio.sleep(0.01)
        assert await session.scalar(text("SELECT now()")) == first


def test_statement_timeout_cannot_pass_through_pgbouncer() -> None:
    with pytest.raises(ValueError, match="ALTER ROLE"):
        Settings(pgbouncer=True, statement_timeout_ms=100)
{%- if cookiecutter.include_example_models %}


@pytest.mark.isolated_db
async def test_repository_through_pgbouncer(bounced: AsyncEngine) -> None:
    sessions = make_session_factory(bounced)
    rows = [{"email": f"u{i}@example.com", "name": f"User {i}"} for i in range(COPY_THRESHOLD)]
    async with transaction(sessions) as session:
        users = UserRepository(session)
        copied = await users.add_many(rows)
        ada = await users.create(email="ada@example.com", name="Ada")
        await users.upsert(
            [{"email": "ada@example.com", "name": "Ada L."}], conflict=[func.lower(User.email)]
        )
    async with make_read_session_factory(bounced)() as session:
        users = UserRepository(session)
        assert (await users.get_or_raise(ada.id)).name == "Ada L."
        page = await users.list_with_posts(limit=10)
        assert [user.id for user in page] == copied[:10]
{%- endif %}


async def test_replicas_behind_pgbouncers_of_their_own_serve_reads(
    bouncer: URL,
    postgres_url: str,
    replica_urls: list[str],
    replica: ReplicaServer,
    db_owner: Owner,
) -> None:
    executable = find_pgbouncer()
    assert executable is not None
    await create_notes_table(db_owner)
    replica.wait_caught_up()
    primary = bouncer.set(database=make_url(postgres_url).database)
    with pgbouncer(executable, make_url(replica_urls[0])) as replica_bouncer:
        settings = routed_settings(
            primary.render_as_string(hide_password=False),
            [replica_bouncer.render_as_string(hide_password=False)],
            pgbouncer=True,
        )
        async with routed_database(settings) as database:
            replica.pause_replay()
            with reading_after():
                await write_note(database, 1, "bounced")
                assert await read_note(database.read_sessions, 1) == ("bounced", False)
            with reading_after():
                assert await read_note(database.read_sessions, 1) == (None, True)
            replica.resume_replay()
            replica.wait_caught_up()
            await replicas_of(database).check()
            assert await read_note(database.read_sessions, 1) == ("bounced", True)


async def test_connections_through_pgbouncer_keep_their_names(bounced: AsyncEngine) -> None:
    # PgBouncer passes application_name on to the server connection it lends.
    async with bounced.connect() as connection:
        assert await connection.scalar(NAME) == application_name("primary")
