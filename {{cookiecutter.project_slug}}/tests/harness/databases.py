"""The session's database: a private cluster, or the server in TEST_DATABASE_URL.

A private cluster is a copy of the migrated cache (localpg.cache), shared by every
process of a run (pytest-xdist workers included), each with its own database cloned
from the migrated one; the last process out stops the server. On an external server
the databases are named after the process that owns them, so that the next run can
drop what a killed run left.

The tests of the service log in as an application role that the migrations grant
what the service needs, and no more: a test that needed to change the schema would
fail. The migrations run as the owner: the cluster's superuser, or TEST_DATABASE_URL's
role, which makes a role of its own for each process.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
import secrets
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from {{ cookiecutter.package_name }}.localpg.binaries import PostgresNotFound, find_bindir
from {{ cookiecutter.package_name }}.localpg.cache import MIGRATED_DATABASE, Migrations
from {{ cookiecutter.package_name }}.localpg.cluster import APP_ROLE, Cluster
from {{ cookiecutter.package_name }}.localpg.processes import is_alive, postmaster_pid, process_identity
from {{ cookiecutter.package_name }}.localpg.runs import shared_cluster, take_spare
from tests.harness.identity import RunIdentity
from tests.harness.servers import AppRole, Server, SessionDatabase, session_clones

if TYPE_CHECKING:
    from sqlalchemy import URL

    from tests.harness.early_start import EarlyCluster

# tests/harness/databases.py is two levels below the project root.
MIGRATIONS_FOLDER = Path(__file__).resolve().parents[2] / "migrations"
# Alembic and what migrations/env.py imports, slow enough to import while the server starts.
MIGRATION_MODULES = (
    "alembic.command",
    "{{ cookiecutter.package_name }}.db.engine",
    "{{ cookiecutter.package_name }}.db.migrations",
    "{{ cookiecutter.package_name }}.features",
    "{{ cookiecutter.package_name }}.settings",
)


def import_all(names: tuple[str, ...]) -> None:
    """Import modules, e.g. in a thread while a server starts."""
    for name in names:
        importlib.import_module(name)


def import_migration_modules() -> None:
    from {{ cookiecutter.package_name }}.features import load_models

    import_all(MIGRATION_MODULES)
    load_models()


def migrate(url: URL) -> None:
    """Bring the database at `url` to the latest revision, granting the tests' role."""
    from {{ cookiecutter.package_name }}.db.migrations import upgrade_database

    upgrade_database(url, app_role=APP_ROLE)


def project_migrations() -> Migrations:
    return Migrations(
        folder=MIGRATIONS_FOLDER,
        apply=migrate,
        preload=import_migration_modules,
        login_role=APP_ROLE,
    )


def died(cluster: Cluster) -> str | None:
    """Why the run's server is gone (killed, out of memory), or None while it runs."""
    pid = postmaster_pid(cluster.datadir)
    if pid is not None and is_alive(process_identity(pid)):
        return None
    return (
        f"the test PostgreSQL server stopped during the run; its log, {cluster.log_path}, "
        f"ends with:\n{cluster.log_tail(lines=3)}\n"
    )


# What the first test's engine and sessions import (SQLAlchemy, the driver, the service's
# engine and settings), slow enough to import while the cluster is copied and started
# (when collection has not started it already) and the session's database is cloned.
SESSION_MODULES = (
    "asyncpg",
    "sqlalchemy.dialects.postgresql.asyncpg",
    "sqlalchemy.ext.asyncio",
    "tests.harness.isolation",
)


@contextlib.contextmanager
def private_database(
    identity: RunIdentity, early: EarlyCluster | None = None
) -> Iterator[SessionDatabase]:
    with contextlib.ExitStack() as stack:
        cluster = early.take(stack) if early is not None else None
        if cluster is None:
            try:
                bindir = find_bindir()
            except PostgresNotFound as error:
                pytest.exit(str(error), returncode=pytest.ExitCode.USAGE_ERROR)
            cluster = stack.enter_context(
                shared_cluster(bindir, identity.run, project_migrations())
            )
        server = Server(cluster.url("postgres", driver="asyncpg"))
        # The run's first process takes the cache's spare clone; the others clone their own.
        name = take_spare(cluster)
        if name is None:
            name = f"{MIGRATED_DATABASE}_{identity.worker}"
            server.clone(MIGRATED_DATABASE, name)
        app_role = AppRole(APP_ROLE)
        with session_clones(server, MIGRATED_DATABASE) as clones:
            yield SessionDatabase(
                url=app_role.login(server.admin_url.set(database=name)),
                server=server,
                clones=clones,
                server_gone=partial(died, cluster),
                app_role=app_role,
                cluster=cluster,
            )


EXTERNAL_PREFIX = "test_{{ cookiecutter.package_name }}"[:21]


def host_tag() -> str:
    """Names this host in database names, so that runs on other hosts are left alone."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def external_owner_tag() -> str:
    """Names this process in database names: host, pid and start time.

    The next run on this host drops the databases of a run whose process is gone
    (killed, or interrupted before its clean-up).
    """
    return f"{host_tag()}_{process_identity(os.getpid()).replace('-', '_')}"


def orphans_among(names: list[str]) -> list[str]:
    """Those of `names` (of this host's test databases or roles) whose process is gone,
    longest first: clones and session databases before their template."""
    # pid, then its start time where the platform tells it (not on macOS).
    pattern = re.compile(rf"{re.escape(EXTERNAL_PREFIX)}_{host_tag()}_(\d+)(?:_(\d+))?(_|$)")
    return sorted(
        (
            name
            for name in names
            if (owner := pattern.match(name))
            and not is_alive(f"{owner[1]}-{owner[2]}" if owner[2] else owner[1])
        ),
        key=len,
        reverse=True,
    )


def reap_external(server: Server) -> list[str]:
    """Drop this host's test databases whose run has ended without dropping them, then
    their roles."""
    import psycopg

    prefix = f"{EXTERNAL_PREFIX}_{host_tag()}_"
    with server.connect() as connection:
        databases, roles = (
            [
                str(name)
                for (name,) in connection.execute(
                    f"SELECT {column} FROM {catalog} WHERE starts_with({column}, %s)", (prefix,)
                )
            ]
            for catalog, column in (("pg_database", "datname"), ("pg_roles", "rolname"))
        )
    orphans = orphans_among(databases)
    for name in orphans:
        server.drop(name)
    for role in orphans_among(roles):
        # Granted privileges in a database of another run's (not ours to drop): left.
        with contextlib.suppress(psycopg.errors.DependentObjectsStillExist):
            server.drop_role(role)
            orphans.append(role)
    return orphans


@contextlib.contextmanager
def external_app_role(server: Server, name: str) -> Iterator[AppRole]:
    """A login role for this process's tests, with a password of its own; dropped after
    the block, which must drop the databases it was granted privileges in."""
    import psycopg

    role = AppRole(name, secrets.token_urlsafe(24))
    try:
        server.create_role(role.name, str(role.password))
    except psycopg.errors.InsufficientPrivilege:
        pytest.exit(
            "TEST_DATABASE_URL's role may not create roles: the tests run the service as "
            "a role of their own, which the migrations grant the service's privileges to. "
            "Give it CREATEROLE (ALTER ROLE <user> CREATEROLE) or use a superuser",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
    try:
        yield role
    finally:
        server.drop_role(role.name)


@contextlib.contextmanager
def external_database(server_url: str) -> Iterator[SessionDatabase]:
    """Databases on an existing server, named after this process, migrated here, dropped after."""
    from sqlalchemy import make_url

    from {{ cookiecutter.package_name }}.db.migrations import upgrade_database

    server = Server(make_url(server_url).set(drivername="postgresql+asyncpg"))
    reap_external(server)
    # The suffix starts with a letter so that it never reads as a start time.
    template = f"{EXTERNAL_PREFIX}_{external_owner_tag()}_r{uuid.uuid4().hex[:4]}"
    name = f"{template}_session"
    with external_app_role(server, f"{template}_app") as app_role:
        server.create(template)
        try:
            upgrade_database(server.admin_url.set(database=template), app_role=app_role.name)
            url = server.clone(template, name)
            try:
                with session_clones(server, template) as clones:
                    yield SessionDatabase(
                        url=app_role.login(url),
                        server=server,
                        clones=clones,
                        server_gone=server.unreachable,
                        app_role=app_role,
                    )
            finally:
                server.drop(name)
        finally:
            server.drop(template)


@contextlib.contextmanager
def session_database(
    identity: RunIdentity | None = None, early: EarlyCluster | None = None
) -> Iterator[SessionDatabase]:
    """TEST_DATABASE_URL when set, else a private cluster (the one `early` started, if it
    did); stops the session if neither."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="session-imports") as preload:
        # The server's start waits on other processes: the imports take its time meanwhile.
        imported = preload.submit(import_all, SESSION_MODULES)
        if server_url:
            imported.result()
            with external_database(server_url) as database:
                yield database
            return
        with private_database(identity or RunIdentity.of(), early) as database:
            imported.result()
            yield database
