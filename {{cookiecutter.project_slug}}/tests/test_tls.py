"""TLS with one meaning on every engine: libpq's sslmode and certificate parameters in the
URLs, against a real server with `ssl=on` and certificates made here.

The server and its streaming replica listen on 127.0.0.1 with a certificate for
`localhost` signed by a CA made in the test; a second CA signed nothing it serves.
A role `cert_user` may only log in with a client certificate.
"""

import asyncio
import logging
import shutil
import ssl
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.db.database import Database
from {{ cookiecutter.package_name }}.db.engine import (
    create_async_engine_from_settings,
    create_sync_engine_from_settings,
)
from {{ cookiecutter.package_name }}.db.migrations import upgrade_database
from {{ cookiecutter.package_name }}.db.reachability import CannotConnect, check_connection
from {{ cookiecutter.package_name }}.localpg.cluster import SUPERUSER
from {{ cookiecutter.package_name }}.localpg.standby import HOT_STANDBY, create_standby, remove_standby
from {{ cookiecutter.package_name }}.settings import Settings, get_settings
from tests.replica_routing import eventually
from tests.tcp_clusters import DATABASE, free_port, tcp_cluster

CERT_USER = "cert_user"
IS_ENCRYPTED = text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
HBA = """\
hostssl all cert_user 127.0.0.1/32 cert
hostssl all all 127.0.0.1/32 trust
host all all 127.0.0.1/32 trust
"""


def openssl(*arguments: str, cwd: Path) -> None:
    subprocess.run(["openssl", *arguments], cwd=cwd, check=True, capture_output=True)


def certificate_authority(folder: Path, name: str) -> None:
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
        "-subj", f"/CN={name}", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip


def signed(folder: Path, name: str, subject: str, extensions: str) -> None:
    """`name`.crt and .key for `subject`, signed by ca.crt."""
    (folder / f"{name}.ext").write_text(extensions)
    openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={subject}",
        cwd=folder,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
        cwd=folder,
    )  # fmt: skip
    (folder / f"{name}.key").chmod(0o600)


@dataclass(frozen=True)
class TlsServers:
    certificates: Path
    primary_port: int
    replica_port: int

    def url(
        self,
        query: dict[str, str],
        *,
        port: int | None = None,
        host: str = "localhost",
        user: str = SUPERUSER,
    ) -> str:
        tail = "&".join(f"{key}={value}" for key, value in query.items())
        port = port or self.primary_port
        return f"postgresql://{user}@{host}:{port}/{DATABASE}" + (f"?{tail}" if tail else "")

    def file(self, name: str) -> str:
        return str(self.certificates / name)


TLS = {
    "ssl": "on",
    "ssl_cert_file": "{files}/server.crt",
    "ssl_key_file": "{files}/server.key",
    "ssl_ca_file": "{files}/ca.crt",
}


@pytest.fixture(scope="module")
def tls(server_bindir: Path) -> Iterator[TlsServers]:
    with tempfile.TemporaryDirectory(prefix="tls-client-") as scratch:
        client = Path(scratch)
        certificate_authority(client, "ca")
        certificate_authority(client, "other-ca")
        signed(client, "server", "localhost", "subjectAltName=DNS:localhost\n")
        signed(client, "client", CERT_USER, "extendedKeyUsage=clientAuth\n")
        server = client / "server"
        server.mkdir()
        for name in ("server.crt", "server.key", "ca.crt"):
            shutil.copy(client / name, server / name)
        with tcp_cluster(server_bindir, HBA, TLS, files=server) as cluster:
            with cluster.connect() as connection:
                connection.execute(f"CREATE ROLE {CERT_USER} LOGIN")
            slot = f"tls_{uuid.uuid4().hex[:8]}"
            standby = create_standby(cluster, cluster.datadir.parent / "standby", slot)
            try:
                # Its copy of the primary's settings, on a port of its own.
                standby.stop()
                files = str(cluster.datadir.parent / "files")
                tls = {key: value.format(files=files) for key, value in TLS.items()}
                standby.settings = (
                    HOT_STANDBY
                    | tls
                    | {
                        "listen_addresses": "127.0.0.1",
                        "port": str(free_port()),
                    }
                )
                standby.start()
                yield TlsServers(client, cluster.port, standby.port)
            finally:
                remove_standby(cluster, standby, slot)


def settings_for(url: str, replica: str | None = None) -> Settings:
    return Settings(
        database_url=SecretStr(url),
        database_replica_urls=None if replica is None else SecretStr(replica),
        replica_check_interval_ms=20,
    )


async def encrypted(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        return bool(await connection.scalar(IS_ENCRYPTED))


def sync_encrypted(settings: Settings) -> bool:
    engine = create_sync_engine_from_settings(settings)
    try:
        with engine.connect() as connection:
            return bool(connection.scalar(IS_ENCRYPTED))
    finally:
        engine.dispose()


async def test_verify_full_encrypts_every_engine_primary_replica_and_migrations(
    tls: TlsServers,
) -> None:
    ca = tls.file("ca.crt")
    verify = {"sslmode": "verify-full", "sslrootcert": ca}
    url, replica = tls.url(verify), tls.url(verify, port=tls.replica_port)
    settings = settings_for(url, replica)
    await asyncio.to_thread(upgrade_database, settings.url("psycopg"))
    database = Database.from_settings(settings)
    try:
        await database.start()
        assert database.replicas is not None
        (standby,) = database.replicas.replicas
        await eventually(lambda: standby.state.value == "ok")
        assert await encrypted(database.engine)
        assert await encrypted(database.read_engine)
        assert await encrypted(standby.engine)
        assert await encrypted(standby.checks)
        async with database.read_sessions() as session:
            assert await session.scalar(text("SELECT pg_is_in_recovery()"))
            assert await session.scalar(IS_ENCRYPTED)
    finally:
        await database.dispose()
    assert sync_encrypted(settings)


@pytest.mark.parametrize(
    ("host", "mode", "root", "encrypts"),
    [
        ("localhost", "verify-ca", "ca.crt", True),
        ("127.0.0.1", "verify-ca", "ca.crt", True),
        ("127.0.0.1", "require", None, True),
        ("localhost", "prefer", None, True),
        ("localhost", "disable", None, False),
    ],
    ids=["verify-ca", "verify-ca by address", "require without a CA", "prefer", "disable"],
)
async def test_each_mode_connects_as_libpq_would_on_both_drivers(
    tls: TlsServers, host: str, mode: str, root: str | None, encrypts: bool
) -> None:
    query = {"sslmode": mode} | ({"sslrootcert": tls.file(root)} if root else {})
    settings = settings_for(tls.url(query, host=host))
    engine = create_async_engine_from_settings(settings)
    try:
        assert await encrypted(engine) is encrypts
    finally:
        await engine.dispose()
    assert sync_encrypted(settings) is encrypts


@pytest.mark.parametrize(
    ("host", "root", "refusal"),
    [
        ("localhost", "other-ca.crt", "certificate verify failed"),
        ("127.0.0.1", "ca.crt", "match|mismatch"),
    ],
    ids=["another CA", "host name mismatch"],
)
async def test_verify_full_refuses_a_server_it_cannot_verify_on_both_drivers(
    tls: TlsServers, host: str, root: str, refusal: str
) -> None:
    verify = {"sslmode": "verify-full", "sslrootcert": tls.file(root)}
    settings = settings_for(tls.url(verify, host=host))
    engine = create_async_engine_from_settings(settings)
    try:
        with pytest.raises(ssl.SSLCertVerificationError, match=refusal):
            await encrypted(engine)
    finally:
        await engine.dispose()
    with pytest.raises(Exception, match=refusal):
        sync_encrypted(settings)


async def test_a_client_certificate_logs_in_where_the_server_asks_for_one(
    tls: TlsServers,
) -> None:
    verify = {"sslmode": "verify-full", "sslrootcert": tls.file("ca.crt")}
    certificate = {"sslcert": tls.file("client.crt"), "sslkey": tls.file("client.key")}
    settings = settings_for(tls.url(verify | certificate, user=CERT_USER))
    engine = create_async_engine_from_settings(settings)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT current_user")) == CERT_USER
    finally:
        await engine.dispose()
    assert sync_encrypted(settings)
    without = settings_for(tls.url(verify, user=CERT_USER))
    engine = create_async_engine_from_settings(without)
    try:
        with pytest.raises(Exception, match="certificate"):
            await encrypted(engine)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sslmode=verify-everything", "sslmode=verify-everything is not one of disable, allow"),
        ("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem", "sslrootcert /nonexistent/ca.pem"),
        ("sslcert=/nonexistent/c.crt&sslkey=/nonexistent/c.key", "sslcert /nonexistent/c.crt"),
    ],
    ids=["unknown mode", "missing CA file", "missing client certificate"],
)
def test_a_tls_setting_that_cannot_work_fails_at_start_up_naming_it(
    query: str, message: str
) -> None:
    url = f"postgresql://app@db.example:5432/app?{query}"
    with pytest.raises(ValidationError, match=message) as raised:
        Settings(database_url=SecretStr(url))
    assert "DATABASE_URL" in str(raised.value)
    with pytest.raises(ValidationError, match=message) as raised:
        Settings(
            database_url=SecretStr(url.replace(query, "")), database_replica_urls=SecretStr(url)
        )
    assert "DATABASE_REPLICA_URLS" in str(raised.value)


async def test_a_refused_certificate_is_one_line_from_migrate_and_the_service_check(
    tls: TlsServers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = tls.url({"sslmode": "verify-full", "sslrootcert": tls.file("other-ca.crt")})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        with caplog.at_level(logging.INFO):
            assert await asyncio.to_thread(cli.main, ["migrate"]) == 1
    finally:
        get_settings.cache_clear()
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "certificate verify failed" in line
    assert "\n" not in line
    engine = create_async_engine_from_settings(settings_for(url))
    try:
        with pytest.raises(CannotConnect, match="certificate verify failed") as refused:
            await check_connection(engine, 5)
    finally:
        await engine.dispose()
    assert "\n" not in str(refused.value)
