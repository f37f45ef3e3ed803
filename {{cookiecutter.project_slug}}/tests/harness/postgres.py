"""The session's database: a private cluster, or the server in TEST_DATABASE_URL.

A private cluster is built once (initdb + the real Alembic migrations), cached
keyed on the server binaries and the migrations, and copied for each session:
a copy and a start take ~0.1 s where initdb and migrating take seconds.
"""

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from {{ cookiecutter.package_name }}.db.local import (
    Cluster,
    PostgresNotFound,
    find_bindir,
    hand_over,
    server_account,
)
from {{ cookiecutter.package_name }}.db.migrations import PROJECT_ROOT, upgrade

DATABASE = "{{ cookiecutter.package_name }}_test"
# Bump to invalidate every cache when the way it is built changes.
CACHE_FORMAT = "1"
MIN_TMPFS_FREE_BYTES = 512 * 1024 * 1024
STALE_CACHE_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class SessionDatabase:
    """A migrated database for the session, and a way to reach its server."""

    url: URL
    admin_url: URL

    def sibling(self, name: str) -> URL:
        return self.url.set(database=name)


def scratch_root() -> Path:
    """Where clusters live: tmpfs when it has room (much faster), else the temp dir."""
    shm = Path("/dev/shm")
    base = Path(tempfile.gettempdir())
    if shm.is_dir() and os.access(shm, os.W_OK):
        usage = shutil.disk_usage(shm)
        if usage.free >= MIN_TMPFS_FREE_BYTES:
            base = shm
    root = base / "{{ cookiecutter.package_name }}-postgres"
    root.mkdir(exist_ok=True)
    # The server account (when we are root) must be able to traverse it.
    root.chmod(0o755)
    return root


def cache_key(bindir: Path, migrations: Path = PROJECT_ROOT / "migrations") -> str:
    digest = hashlib.sha256(CACHE_FORMAT.encode())
    postgres = (bindir / "postgres").stat()
    digest.update(f"{bindir}:{postgres.st_size}:{postgres.st_mtime_ns}".encode())
    for path in sorted(migrations.rglob("*.py")):
        digest.update(str(path.relative_to(migrations)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def migrate(url: URL) -> None:
    engine = create_engine(url.set(drivername="postgresql+psycopg"), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            upgrade(connection)
    finally:
        engine.dispose()


def build_cache(bindir: Path, root: Path, target: Path) -> None:
    """initdb, migrate, stop; publish with an atomic rename so no one sees half a cache."""
    build = Path(tempfile.mkdtemp(prefix="build-", dir=root))
    try:
        hand_over(build, server_account())
        cluster = Cluster(build / "data", bindir=bindir)
        cluster.initdb()
        try:
            cluster.start()
            cluster.create_database(DATABASE)
            migrate(cluster.url(DATABASE))
        finally:
            cluster.stop()
        build.rename(target)
    finally:
        shutil.rmtree(build, ignore_errors=True)


def remove_stale_caches(root: Path, keep: Path) -> None:
    """Caches of old migrations, unused for a week (each use touches its cache)."""
    cutoff = time.time() - STALE_CACHE_SECONDS
    for cache in root.glob("cache-*"):
        if cache != keep and cache.stat().st_mtime < cutoff:
            shutil.rmtree(cache, ignore_errors=True)


def migrated_cache(bindir: Path, root: Path) -> Path:
    target = root / f"cache-{cache_key(bindir)}"
    if not target.is_dir():
        with (root / "build.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not target.is_dir():
                build_cache(bindir, root, target)
                remove_stale_caches(root, keep=target)
    os.utime(target)
    return target


@contextlib.contextmanager
def private_database(bindir: Path) -> Iterator[SessionDatabase]:
    root = scratch_root()
    cache = migrated_cache(bindir, root)
    run = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    try:
        # cp -a keeps ownership and modes, which the server checks on start.
        subprocess.run(["cp", "-a", str(cache / "data"), str(run / "data")], check=True)
        hand_over(run, server_account())
        cluster = Cluster(run / "data", bindir=bindir)
        try:
            cluster.start()
            yield SessionDatabase(url=cluster.url(DATABASE), admin_url=cluster.url("postgres"))
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(run, ignore_errors=True)


@contextlib.contextmanager
def external_database(server_url: str) -> Iterator[SessionDatabase]:
    """A uniquely named, migrated database on an existing server, dropped at the end."""
    admin_url = make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"test_{{ cookiecutter.package_name }}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            migrate(admin_url.set(database=name))
            yield SessionDatabase(
                url=admin_url.set(drivername="postgresql+asyncpg", database=name),
                admin_url=admin_url.set(drivername="postgresql+asyncpg"),
            )
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextlib.contextmanager
def session_database() -> Iterator[SessionDatabase]:
    """TEST_DATABASE_URL when set, else a private cluster; stops the session if neither."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    if server_url:
        with external_database(server_url) as database:
            yield database
        return
    try:
        bindir = find_bindir()
    except PostgresNotFound as error:
        pytest.exit(str(error), returncode=pytest.ExitCode.USAGE_ERROR)
    with private_database(bindir) as database:
        yield database
