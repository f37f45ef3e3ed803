"""Passwords that change while the service runs: mounted secret files and password
providers (IAM tokens), asked for each new connection.

A SecretFile is read again when it changes, as Kubernetes swaps a mounted secret; a
provider (`DB_PASSWORD_PROVIDER=module:callable`) is called with the URL it connects
to, sync or async, and returns the password, such as a short-lived token. Both go
in through SQLAlchemy's `do_connect` event, the same for asyncpg and psycopg: a
connection already open keeps working, the next one uses the new password. A
failure is a ConnectionError naming the setting, never the secret.
"""

import asyncio
import inspect
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.util import await_
from sqlalchemy.util.concurrency import in_greenlet

from {{ cookiecutter.package_name }}.settings import Settings, load_provider, read_secret

PasswordSource = Callable[[URL], str]


class CredentialsUnavailable(ConnectionError):
    """No password for a new connection; the message names the setting, never a secret."""


class SecretFile:
    """A file holding one secret, read again whenever it changes; trailing newline dropped."""

    def __init__(self, path: Path, setting: str) -> None:
        self.path, self.setting = path, setting
        self._seen: tuple[int, int, int] | None = None
        self._value = ""

    def read(self) -> str:
        try:
            status = os.stat(self.path)
            seen = (status.st_ino, status.st_mtime_ns, status.st_size)
            if seen != self._seen:
                # As the settings read it at start-up, with the same complaints.
                self._value = read_secret(self.path, self.setting)
                self._seen = seen
        except OSError as error:
            raise CredentialsUnavailable(
                f"{self.setting}: cannot read {self.path} ({type(error).__name__})"
            ) from None
        except ValueError as error:
            raise CredentialsUnavailable(str(error)) from None
        return self._value


def from_provider(provider: Callable[..., Any], setting: str) -> PasswordSource:
    def password(url: URL) -> str:
        try:
            result = provider(url)
            if inspect.isawaitable(result):
                result = awaited(result)
        except Exception as error:
            raise CredentialsUnavailable(
                f"{setting} raised {type(error).__name__} for {url.username}@{url.host}"
            ) from None
        if not isinstance(result, str) or not result:
            raise CredentialsUnavailable(
                f"{setting} returned {type(result).__name__ if result else 'nothing'}, "
                "not a password"
            )
        return result

    return password


def awaited(awaitable: Any) -> Any:
    """An async provider's answer, wherever a connection is being opened: inside
    SQLAlchemy's greenlet (the async engines), in a thread without an event loop (a
    migration), or beside a running loop (a sync engine used in async code)."""
    if in_greenlet():
        return await_(awaitable)

    async def answer() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(answer())
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, answer()).result()


def from_url_file(secret: SecretFile) -> PasswordSource:
    """The password of the URL (or of the URL for the same server, among several) in a file."""

    def password(url: URL) -> str:
        for line in secret.read().split(","):
            given = make_url(line.strip())
            same = (given.host, given.port, given.database) == (url.host, url.port, url.database)
            if same and given.password:
                return str(given.password)
        raise CredentialsUnavailable(f"{secret.setting}: no password for {url.host} in the file")

    return password


def password_source(settings: Settings, *, replica: bool = False) -> PasswordSource | None:
    """Where new connections get their password, if not from the URL as given."""
    if settings.password_provider is not None:
        return from_provider(load_provider(settings.password_provider), "DB_PASSWORD_PROVIDER")
    prefix = "DATABASE_REPLICA" if replica else "DATABASE"
    password_file = settings.replica_password_file if replica else settings.password_file
    if password_file is not None:
        secret = SecretFile(password_file, f"{prefix}_PASSWORD_FILE")
        return lambda url: secret.read()
    url_file = settings.replica_urls_file if replica else settings.url_file
    if url_file is not None:
        name = "DATABASE_REPLICA_URLS_FILE" if replica else "DATABASE_URL_FILE"
        return from_url_file(SecretFile(url_file, name))
    return None


def ask_for_passwords(engine: Engine, source: PasswordSource | None) -> None:
    """Give each new connection of `engine` (a sync engine, or an async one's) the password
    `source` has for it now."""
    if source is None:
        return

    def connecting(dialect: Any, record: Any, arguments: Any, parameters: dict[str, Any]) -> None:
        parameters["password"] = source(engine.url)

    event.listen(engine, "do_connect", connecting)
