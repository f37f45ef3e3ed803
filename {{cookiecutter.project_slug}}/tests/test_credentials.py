"""Passwords that change while the service runs: mounted secret files and a provider,
asked for each new connection, against a server that wants a password (SCRAM), whose
role's password the tests change mid-run."""

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.package_name }}.db.credentials import CredentialsUnavailable
from {{ cookiecutter.package_name }}.db.engine import (
    create_async_engine_from_settings,
    create_sync_engine_from_settings,
)
from {{ cookiecutter.package_name }}.localpg.cluster import Cluster
from {{ cookiecutter.package_name }}.settings import Settings
from tests.tcp_clusters import DATABASE, tcp_cluster
from tests.telemetry import recorded_spans

ROLE = "app_user"
FIRST, SECOND = "first-Secret-1", "second-Secret-2"
HBA = "host all all 127.0.0.1/32 scram-sha-256\n"
# What the provider below hands out, as a token service would.
current_password = {"value": FIRST}


def provide(url: object) -> str:
    return current_password["value"]


async def provide_later(url: object) -> str:
    await asyncio.sleep(0)
    return current_password["value"]


def refuse(url: object) -> str:
    raise RuntimeError(f"no token for you: {FIRST}")


def nothing(url: object) -> str:
    return ""


@pytest.fixture(scope="module")
def server(server_bindir: Path) -> Iterator[Cluster]:
    with tcp_cluster(server_bindir, HBA) as cluster:
        yield cluster


@pytest.fixture
def role(server: Cluster) -> Iterator[str]:
    """A role that logs in with FIRST; the URL without a password."""
    with server.connect() as connection:
        connection.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{FIRST}'")
    current_password["value"] = FIRST
    try:
        yield f"postgresql://{ROLE}@127.0.0.1:{server.port}/{DATABASE}"
    finally:
        with server.connect() as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (ROLE,),
            )
            connection.execute(f"DROP ROLE {ROLE}")


def change_password(server: Cluster, password: str) -> None:
    with server.connect() as connection:
        connection.execute(f"ALTER ROLE {ROLE} PASSWORD '{password}'")


async def who(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        return str(await connection.scalar(text("SELECT current_user")))


def secret_file(folder: Path, content: str) -> Path:
    path = folder / "password"
    path.write_text(content)
    return path


async def rotation_keeps_working(server: Cluster, settings: Settings, rotate: object) -> None:
    """A held connection survives the change; the next new one uses the new password."""
    engine = create_async_engine_from_settings(settings, pool_size=2)
    try:
        async with engine.connect() as held:
            assert await held.scalar(text("SELECT current_user")) == ROLE
            change_password(server, SECOND)
            assert callable(rotate)
            rotate()
            # A second, new connection while the first is checked out.
            assert await who(engine) == ROLE
            assert await held.scalar(text("SELECT 1")) == 1
        sync = create_sync_engine_from_settings(settings)
        try:
            with sync.connect() as connection:
                assert connection.scalar(text("SELECT current_user")) == ROLE
        finally:
            sync.dispose()
    finally:
        await engine.dispose()


async def test_a_rotated_password_file_is_read_for_new_connections(
    server: Cluster,
    role: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    path = secret_file(tmp_path, FIRST + "\n")
    settings = Settings(database_url=SecretStr(role), password_file=path, slow_query_ms=1)
    caplog.set_level(logging.DEBUG)
    with recorded_spans() as exporter:
        await rotation_keeps_working(server, settings, lambda: path.write_text(SECOND + "\n"))
    spans = [span.to_json() for span in exporter.get_finished_spans()]
    assert spans
    # Everything the service said: logs (every statement logged as slow), output, spans.
    output = capfd.readouterr()
    shown = caplog.text + output.out + output.err + repr(settings) + str(spans)
    shown += str(settings.model_dump())
    assert FIRST not in shown
    assert SECOND not in shown


async def test_a_provider_sync_or_async_gives_each_new_connection_its_password(
    server: Cluster, role: str, caplog: pytest.LogCaptureFixture
) -> None:
    for provider in ("provide", "provide_later"):
        current_password["value"] = FIRST
        change_password(server, FIRST)
        spec = f"tests.test_credentials:{provider}"
        settings = Settings(database_url=SecretStr(role), password_provider=spec)

        def rotate() -> None:
            current_password["value"] = SECOND

        await rotation_keeps_working(server, settings, rotate)
    assert FIRST not in caplog.text
    assert SECOND not in caplog.text


async def test_the_url_file_s_password_is_read_again_when_the_file_changes(
    server: Cluster, role: str, tmp_path: Path
) -> None:
    with_password = role.replace(f"{ROLE}@", f"{ROLE}:{FIRST}@")
    path = secret_file(tmp_path, with_password + "\n")
    settings = Settings(url_file=path)
    assert settings.url().password == FIRST
    rewritten = role.replace(f"{ROLE}@", f"{ROLE}:{SECOND}@")
    await rotation_keeps_working(server, settings, lambda: path.write_text(rewritten))


@pytest.mark.parametrize(
    ("provider", "complaint"),
    [("refuse", "DB_PASSWORD_PROVIDER raised RuntimeError"), ("nothing", "returned nothing")],
)
async def test_a_provider_that_fails_names_itself_and_no_secret(
    role: str, provider: str, complaint: str
) -> None:
    settings = Settings(
        database_url=SecretStr(role), password_provider=f"tests.test_credentials:{provider}"
    )
    engine = create_async_engine_from_settings(settings)
    try:
        with pytest.raises(CredentialsUnavailable, match=complaint) as raised:
            await who(engine)
    finally:
        await engine.dispose()
    assert FIRST not in str(raised.value)


async def test_a_wrong_password_in_the_file_is_refused_by_the_server(
    role: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=SecretStr(role), password_file=secret_file(tmp_path, "no"))
    engine = create_async_engine_from_settings(settings)
    try:
        with pytest.raises(DBAPIError, match="password authentication failed"):
            await who(engine)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (
            {"DATABASE_URL": "postgresql://a@h/d", "DATABASE_URL_FILE": "{folder}/url"},
            "DATABASE_URL and DATABASE_URL_FILE are both set",
        ),
        (
            {"DATABASE_URL": "postgresql://a:pw@h/d", "DATABASE_PASSWORD_FILE": "{folder}/url"},
            "DATABASE_URL carries a password and DATABASE_PASSWORD_FILE gives one",
        ),
        (
            {"DATABASE_URL": "postgresql://a@h/d", "DATABASE_PASSWORD_FILE": "{folder}/none"},
            "DATABASE_PASSWORD_FILE: cannot read",
        ),
        (
            {"DATABASE_URL": "postgresql://a@h/d", "DATABASE_PASSWORD_FILE": "{folder}/empty"},
            "DATABASE_PASSWORD_FILE: .* is empty",
        ),
        (
            {"DATABASE_URL": "postgresql://a@h/d", "DB_PASSWORD_PROVIDER": "no.such.module:f"},
            "DB_PASSWORD_PROVIDER=no.such.module:f: ModuleNotFoundError",
        ),
        (
            {"DATABASE_URL": "postgresql://a@h/d", "DB_PASSWORD_PROVIDER": "token"},
            "must name module:callable",
        ),
        (
            {
                "DATABASE_URL": "postgresql://a@h/d",
                "DATABASE_PASSWORD_FILE": "{folder}/url",
                "DB_PASSWORD_PROVIDER": "tests.test_credentials:provide",
            },
            "DATABASE_PASSWORD_FILE and DB_PASSWORD_PROVIDER are both set",
        ),
    ],
    ids=[
        "value and file",
        "password twice",
        "missing file",
        "empty file",
        "unknown module",
        "no callable",
        "file and provider",
    ],
)
def test_a_secret_setting_that_cannot_work_is_named_at_start_up(
    environment: dict[str, str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "url").write_text("postgresql://a:from-file@h/d\n")
    (tmp_path / "empty").write_text("\n")
    for name, value in environment.items():
        monkeypatch.setenv(name, value.format(folder=tmp_path))
    with pytest.raises(ValidationError, match=message) as raised:
        Settings()
    assert "from-file" not in str(raised.value)
