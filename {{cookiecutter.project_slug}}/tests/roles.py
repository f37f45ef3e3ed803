"""Roles of a test's own: roles belong to the whole server, which tests share."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import URL

from tests.harness.servers import connect


@contextmanager
def temporary_role(url: URL, prefix: str, options: str = "NOLOGIN") -> Iterator[str]:
    """A new role named `prefix`_<random>, dropped after with what was granted to it."""
    role = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with connect(url, autocommit=True) as owner:
        owner.execute(f"CREATE ROLE {role} {options}")
    try:
        yield role
    finally:
        with connect(url, autocommit=True) as owner:
            owner.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            owner.execute(f"DROP OWNED BY {role}")
            owner.execute(f"DROP ROLE {role}")
