"""Why the database cannot be used, in one line: which of the host, the port, the user
or the database is wrong, or that nothing answered in time. Never the password.

asyncpg (the service's driver) says it exactly: PostgreSQL's SQLSTATE when the server
answered and refused, a socket error when no server was reached. psycopg (migrations)
has only libpq's text, whose server part is in the server's language: the usual
failures are recognised in English, and any other is shown as libpq put it.
"""

import asyncio
import re
import socket

from sqlalchemy import URL, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.package_name }}.db.errors import sqlstate_and_constraint

INVALID_PASSWORD = "28P01"
# No pg_hba.conf line lets the user in, or the role may not log in.
INVALID_AUTHORIZATION = "28000"
UNKNOWN_DATABASE = "3D000"
# The server refused for good: only a fix of DATABASE_URL or of the server helps.
REFUSALS = frozenset({INVALID_PASSWORD, INVALID_AUTHORIZATION, UNKNOWN_DATABASE})
DEFAULT_PORT = 5432
# psycopg's own words (never translated) before libpq's when a connection failed.
PSYCOPG_CONNECT_FAILED = re.compile(r"connection (?:failed|is bad): (?P<libpq>.*)")
PSYCOPG_UNRESOLVED = re.compile(
    r"failed to resolve host '[^']*': (?:\[Errno [^\]]*\] )?(?P<why>.*)"
)
# Older psycopg 3.2 releases pass the resolver's error on as it is (getaddrinfo's, negative).
RESOLVER_ERROR = re.compile(r"\[Errno -\d+\] (?P<why>.*)")
LIBPQ_WRONG_PASSWORD = re.compile(r'password authentication failed for user "[^"]*"')
LIBPQ_UNKNOWN_DATABASE = re.compile(r'database "[^"]*" does not exist')


class CannotConnect(Exception):
    """The database could not be used; the message says why, in one line."""

    def __init__(self, reason: str, *, refused_by_server: bool) -> None:
        super().__init__(reason)
        # The server answered and said no (a wrong user, password or database),
        # rather than being out of reach for now.
        self.refused_by_server = refused_by_server


async def check_connection(engine: AsyncEngine, seconds: float) -> None:
    """Connect and run SELECT 1 within `seconds`; CannotConnect says why not."""
    try:
        async with asyncio.timeout(seconds), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (DBAPIError, OSError, PoolTimeoutError) as error:
        sqlstate = sqlstate_and_constraint(error)[0] if isinstance(error, DBAPIError) else None
        reason = asyncpg_failure(error, engine.url, seconds)
        raise CannotConnect(reason, refused_by_server=sqlstate in REFUSALS) from error


def asyncpg_failure(error: BaseException, url: URL, seconds: float) -> str:
    """What `error`, raised connecting to `url` for up to `seconds`, means."""
    address = where(url)[1]
    if isinstance(error, DBAPIError):
        sqlstate = sqlstate_and_constraint(error)[0]
        if sqlstate == INVALID_PASSWORD:
            return wrong_password(url)
        if sqlstate == UNKNOWN_DATABASE:
            return unknown_database(url)
        said = one_line(error.orig, url.password)
        return f"the server at {address} refused the connection: {said}" if sqlstate else said
    if isinstance(error, socket.gaierror):
        return not_found(url, error.strerror or str(error))
    if isinstance(error, ConnectionRefusedError):
        return refused(url)
    if isinstance(error, FileNotFoundError):
        return no_socket(url)
    if isinstance(error, TimeoutError):
        return f"no answer from {address} within {seconds:g} s"
    if isinstance(error, PoolTimeoutError):
        return f"no connection to {address} free in the pool within {seconds:g} s"
    return f"cannot reach {address}: {one_line(error, url.password)}"


def psycopg_failure(error: BaseException | None, url: URL) -> CannotConnect:
    """What `error`, raised by psycopg connecting to `url`, means."""
    from psycopg.errors import ConnectionTimeout

    said = one_line(error, url.password)
    libpq = failed["libpq"] if (failed := PSYCOPG_CONNECT_FAILED.match(said)) else said
    if LIBPQ_WRONG_PASSWORD.search(libpq):
        return CannotConnect(wrong_password(url), refused_by_server=True)
    if LIBPQ_UNKNOWN_DATABASE.search(libpq):
        return CannotConnect(unknown_database(url), refused_by_server=True)
    if isinstance(error, ConnectionTimeout):
        reason = f"no answer from {where(url)[1]} within {connect_timeout(url)} s"
    elif unresolved := PSYCOPG_UNRESOLVED.fullmatch(said) or RESOLVER_ERROR.fullmatch(said):
        reason = not_found(url, unresolved["why"])
    elif libpq.endswith("Connection refused"):
        reason = refused(url)
    elif libpq.endswith("No such file or directory"):
        reason = no_socket(url)
    else:
        reason = libpq
    return CannotConnect(reason, refused_by_server=False)


def connect_timeout(url: URL) -> int:
    """psycopg's: the URL's connect_timeout, else PGCONNECT_TIMEOUT, else its default."""
    from psycopg.conninfo import timeout_from_conninfo

    parameters: dict[str, str | int | None] = {
        key: value for key, value in url.query.items() if isinstance(value, str)
    }
    return timeout_from_conninfo(parameters)


def wrong_password(url: URL) -> str:
    # PostgreSQL says the same for a user it does not know, on purpose.
    return f'authentication failed for user "{url.username}" (wrong password or no such user)'


def unknown_database(url: URL) -> str:
    return f'database "{url.database}" does not exist on {where(url)[1]}'


def not_found(url: URL, resolver_says: str) -> str:
    return f'host "{where(url)[0]}" not found ({resolver_says})'


def refused(url: URL) -> str:
    return f"connection refused on {where(url)[1]}: no server listens there"


def no_socket(url: URL) -> str:
    return f"no server socket at {where(url)[1]}"


def where(url: URL) -> tuple[str, str]:
    """The host `url` names, and where it connects: host:port, or a unix socket."""
    # libpq's spelling for a unix socket's folder (or a host): ?host=
    in_query = url.query.get("host")
    host = in_query if isinstance(in_query, str) else url.host or "localhost"
    port = url.port or DEFAULT_PORT
    if host.startswith("/"):
        return host, f"{host}/.s.PGSQL.{port}"
    return host, f"{host}:{port}"


def one_line(error: BaseException | None, password: str | None) -> str:
    """The first line of what the driver said, without the password should it repeat it."""
    lines = str(error).strip().splitlines()
    said = lines[0] if lines else type(error).__name__
    return said.replace(password, "***") if password else said
