"""TLS for asyncpg, from the libpq parameters of a URL, so that `?sslmode=verify-full&
sslrootcert=...` means to the async engines what it means to psycopg and to every
PostgreSQL client.

psycopg hands the parameters to libpq itself. asyncpg takes none of them as
arguments, so they are taken out of the URL and made into the `ssl` argument it
does take: a mode it knows (`prefer`, `allow`), False, or an SSLContext that
checks what libpq's mode checks. As with libpq, `require` with a root certificate
verifies the server as `verify-ca` does.
"""

import ssl
from typing import Any

from sqlalchemy.engine import URL

from {{ cookiecutter.package_name }}.settings import DEFAULT_ROOT_CERT, SYSTEM_ROOTS

TLS_PARAMETERS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword")


def asyncpg_tls(url: URL) -> tuple[URL, dict[str, Any]]:
    """`url` without libpq's TLS parameters, and asyncpg's arguments for them (none when
    the URL names none: asyncpg then does as libpq, `prefer`, or what PGSSLMODE says)."""
    if not any(key in url.query for key in TLS_PARAMETERS):
        return url, {}
    return url.difference_update_query(TLS_PARAMETERS), {"ssl": asyncpg_ssl(url)}


def asyncpg_ssl(url: URL) -> Any:
    """asyncpg's `ssl` argument for the libpq parameters in `url` (settings.py checked them)."""
    query = {key: str(value) for key, value in url.query.items() if key in TLS_PARAMETERS}
    mode = query.get("sslmode", "prefer")
    root = query.get("sslrootcert")
    if mode == "disable":
        return False
    if mode in ("allow", "prefer"):
        return mode
    if mode == "require" and root is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = mode == "verify-full"
        context.verify_mode = ssl.CERT_REQUIRED
        if root == SYSTEM_ROOTS:
            context.load_default_certs()
        else:
            context.load_verify_locations(cafile=root or DEFAULT_ROOT_CERT.expanduser())
    if "sslcert" in query:
        context.load_cert_chain(
            query["sslcert"], query.get("sslkey"), password=query.get("sslpassword")
        )
    return context
