"""What the tests of database faults share: addresses nobody answers, pools of one connection."""

import socket

from pydantic import SecretStr
from sqlalchemy import URL

from {{ cookiecutter.package_name }}.settings import Settings

SECRET = "s3cret-Pa55"
# Nothing listens on port 1: connecting fails at once. Its password must never show.
UNREACHABLE_URL = f"postgresql://app:{SECRET}@127.0.0.1:1/app"
# Short, so that the tests of a full pool wait as little as they can.
POOL_TIMEOUT = 0.1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the system just handed it out)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def one_connection_settings(url: str | URL) -> Settings:
    """Settings for `url` whose pools hold one connection each, waited for POOL_TIMEOUT.

    The connection a test holds, or a restart kills, is the one the next unit of work needs.
    """
    if isinstance(url, URL):
        url = url.render_as_string(hide_password=False)
    return Settings(
        database_url=SecretStr(url), pool_size=1, max_overflow=0, pool_timeout=POOL_TIMEOUT
    )
