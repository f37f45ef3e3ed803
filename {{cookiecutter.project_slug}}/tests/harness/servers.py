"""Admin access to the test server: databases cloned from a migrated template, and dropped,
and the login role the service's tests run as."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

# psycopg and the service's modules are imported where used: a test on the harness's own
# cluster, which takes the cache's spare database, connects as admin only to clone more.
if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow
    from sqlalchemy import URL

    from {{ cookiecutter.package_name }}.localpg.cluster import Cluster


def connect(
    url: URL, *, autocommit: bool = False, timeout: int = 30
) -> psycopg.Connection[TupleRow]:
    """A psycopg connection to the database `url` names, over TCP or a unix socket."""
    import psycopg

    from {{ cookiecutter.package_name }}.db.engine import application_name

    socket_dir = url.query.get("host")
    return psycopg.connect(
        host=socket_dir if isinstance(socket_dir, str) else url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=url.database,
        autocommit=autocommit,
        connect_timeout=timeout,
        application_name=application_name("harness"),
    )


@dataclass(frozen=True)
class Server:
    """Admin access to a PostgreSQL server: clone and drop databases."""

    admin_url: URL

    def connect(self, timeout: int = 30) -> psycopg.Connection[tuple[object, ...]]:
        url = self.admin_url.set(database=self.admin_url.database or "postgres")
        return connect(url, autocommit=True, timeout=timeout)

    def unreachable(self) -> str | None:
        """Why the server no longer answers, or None while it does."""
        import psycopg

        try:
            with self.connect(timeout=5):
                return None
        except psycopg.OperationalError as error:
            return (
                f"the test server at {self.admin_url.render_as_string(hide_password=True)} "
                f"stopped answering ({type(error).__name__}: {str(error).strip()[:200]})"
            )

    def create(self, name: str) -> URL:
        """A new, empty database."""
        return self.clone("template0", name)

    def clone(self, template: str, name: str) -> URL:
        """A new database copied from `template`, which must have no open connections."""
        from psycopg import sql

        with self.connect() as connection:
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
            # FILE_COPY (PostgreSQL 15+) copies files instead of WAL-logging every page.
            if connection.info.server_version >= 150000:
                statement += sql.SQL(" STRATEGY FILE_COPY")
            connection.execute(statement)
        return self.admin_url.set(database=name)

    def drop(self, name: str) -> None:
        from psycopg import sql

        with self.connect() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def create_role(self, name: str, password: str) -> None:
        """A login role with no privilege of its own."""
        from psycopg import sql

        with self.connect() as connection:
            connection.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )

    def drop_role(self, name: str) -> None:
        """Drop the role; the databases it was granted privileges in must be gone."""
        from psycopg import sql

        with self.connect() as connection:
            connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


class Clones:
    """Databases cloned from the template for isolated tests, off the test's critical path.

    One background thread clones the next database while the current test runs,
    and drops finished ones; nothing is cloned ahead until a test first asks.
    """

    def __init__(self, server: Server, template: str) -> None:
        self.server = server
        self.template = template
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clones")
        self._next: Future[tuple[str, URL]] | None = None

    def _clone(self) -> tuple[str, URL]:
        name = f"{self.template}_{uuid.uuid4().hex[:10]}"
        return name, self.server.clone(self.template, name)

    def take(self) -> tuple[str, URL]:
        ready = self._next or self._worker.submit(self._clone)
        self._next = self._worker.submit(self._clone)
        return ready.result()

    def release(self, name: str) -> None:
        self._worker.submit(self.server.drop, name)

    def close(self) -> None:
        if self._next is not None:
            with contextlib.suppress(Exception):
                self.release(self._next.result()[0])
        self._worker.shutdown(wait=True)


@dataclass(frozen=True)
class AppRole:
    """The role the service's tests log in as: it may read and write the tables, which the
    migrations grant it, but not change them. No password on the harness's own cluster."""

    name: str
    password: str | None = None

    def login(self, url: URL) -> URL:
        """`url`'s database, as this role."""
        return url.set(username=self.name, password=self.password)


@dataclass(frozen=True)
class Owner:
    """A test's own database as the owner of its tables, for a test that needs tables the
    migrations do not make."""

    url: URL
    app_role: AppRole

    async def execute(self, *statements: str) -> None:
        """Run `statements` and commit them, then grant the application role what the
        migrations would on what they made."""
        await asyncio.to_thread(self._execute, statements)

    def _execute(self, statements: tuple[str, ...]) -> None:
        from {{ cookiecutter.package_name }}.db.roles import grants

        with connect(self.url) as connection:
            for statement in statements:
                connection.execute(statement)
            connection.execute(grants(self.app_role.name))
            connection.commit()


@dataclass(frozen=True)
class SessionDatabase:
    """This process's migrated database, and clones of the template for isolated tests.

    `url` is the service's: the application role's. The server and the clones are
    the owner's, who migrates. `server_gone` says why the server is no longer there,
    or None while it is; `cluster` is the harness's own cluster, None on a server in
    TEST_DATABASE_URL.
    """

    url: URL
    server: Server
    clones: Clones
    server_gone: Callable[[], str | None]
    app_role: AppRole
    cluster: Cluster | None = None

    @property
    def template(self) -> str:
        return self.clones.template


@contextlib.contextmanager
def session_clones(server: Server, template: str) -> Iterator[Clones]:
    clones = Clones(server, template)
    try:
        yield clones
    finally:
        clones.close()
