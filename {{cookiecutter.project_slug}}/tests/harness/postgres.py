"""The session's database: a private cluster, or the server in TEST_DATABASE_URL.

A private cluster is built once (initdb + the real Alembic migrations), cached
keyed on the server binaries and the migrations, and copied for each run: a copy
and a start take ~0.1 s where initdb and migrating take seconds. Every process
of a run (pytest-xdist workers included) shares the copy and gets its own
database cloned from the migrated one; the last process out stops the server.
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

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import URL, create_engine, make_url
from sqlalchemy.pool import NullPool

from {{ cookiecutter.package_name }}.db.local import (
    Cluster,
    PostgresNotFound,
    find_bindir,
    hand_over,
    server_account,
    stop_postmaster,
)
from {{ cookiecutter.package_name }}.db.migrations import PROJECT_ROOT, upgrade

TEMPLATE_DATABASE = "{{ cookiecutter.package_name }}_test"
# Bump to invalidate every cache when the way it is built changes.
CACHE_FORMAT = "3"
MIN_TMPFS_FREE_BYTES = 512 * 1024 * 1024
STALE_CACHE_SECONDS = 7 * 24 * 3600


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


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """One process at a time builds caches, starts, stops and reaps clusters."""
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def process_identity(pid: int) -> str:
    """pid plus start time, so a recycled pid is not mistaken for the original."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return str(pid)
    return f"{pid}-{stat.rsplit(')', 1)[1].split()[19]}"


def is_alive(identity: str) -> bool:
    pid = int(identity.split("-", 1)[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return process_identity(pid) == identity or "-" not in identity


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
            cluster.create_database(TEMPLATE_DATABASE)
            migrate(cluster.url(TEMPLATE_DATABASE))
        finally:
            cluster.stop()
        build.rename(target)
    finally:
        shutil.rmtree(build, ignore_errors=True)


def reap(root: Path) -> list[Path]:
    """Remove what crashed or killed runs left: their servers, runs and half-built caches.

    Call with the lock held: a build in progress holds it, so any build folder
    seen here was abandoned, and a run whose owners are all dead is an orphan.
    """
    reaped = []
    for folder in [*root.glob("build-*"), *root.glob("run-*")]:
        owners = folder / "owners"
        if owners.is_dir() and any(is_alive(owner.name) for owner in owners.iterdir()):
            continue
        stop_postmaster(folder / "data")
        shutil.rmtree(folder, ignore_errors=True)
        reaped.append(folder)
    return reaped


def remove_stale_caches(root: Path, keep: Path) -> None:
    """Caches of old migrations, unused for a week (each use touches its cache)."""
    cutoff = time.time() - STALE_CACHE_SECONDS
    for cache in root.glob("cache-*"):
        if cache != keep and cache.stat().st_mtime < cutoff:
            shutil.rmtree(cache, ignore_errors=True)


def run_id() -> str:
    """Shared by all pytest-xdist workers of one run, unique otherwise."""
    return os.environ.get("PYTEST_XDIST_TESTRUNUID", "")[:12] or uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Server:
    """Admin access to a PostgreSQL server: clone and drop databases."""

    admin_url: URL

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        url = self.admin_url
        socket_dir = url.query.get("host")
        return psycopg.connect(
            host=socket_dir if isinstance(socket_dir, str) else url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname=url.database or "postgres",
            autocommit=True,
        )

    def create(self, name: str) -> URL:
        """A new, empty database."""
        return self.clone("template0", name)

    def clone(self, template: str, name: str) -> URL:
        """A new database copied from `template`, which must have no open connections."""
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
        with self.connect() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@dataclass(frozen=True)
class SessionDatabase:
    """This process's migrated database, and the template it and isolated ones come from."""

    url: URL
    server: Server
    template: str

    def isolated(self) -> tuple[str, URL]:
        name = f"{self.template}_{uuid.uuid4().hex[:10]}"
        return name, self.server.clone(self.template, name)


def worker_database_name(template: str) -> str:
    return f"{template}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


@contextlib.contextmanager
def shared_cluster(bindir: Path) -> Iterator[Cluster]:
    """Join this run's cluster, starting it if we are first; stop it if we are last out."""
    root = scratch_root()
    account = server_account()
    run = root / f"run-{run_id()}"
    owner = run / "owners" / process_identity(os.getpid())
    cluster = Cluster(run / "data", bindir=bindir)
    with locked(root):
        reap(root)
        cache = root / f"cache-{cache_key(bindir)}"
        if not cache.is_dir():
            build_cache(bindir, root, cache)
            remove_stale_caches(root, keep=cache)
        os.utime(cache)
        if not run.is_dir():
            try:
                run.mkdir()
                # cp -a keeps the owner and modes the server checks on start.
                subprocess.run(["cp", "-a", str(cache / "data"), str(run / "data")], check=True)
                if account is not None:
                    os.chown(run, account.uid, account.gid)
                (run / "owners").mkdir()
                cluster.start()
            except BaseException:
                cluster.stop()
                shutil.rmtree(run, ignore_errors=True)
                raise
        owner.touch()
    try:
        yield cluster
    finally:
        with locked(root):
            owner.unlink(missing_ok=True)
            if not any(is_alive(other.name) for other in (run / "owners").iterdir()):
                cluster.stop()
                shutil.rmtree(run, ignore_errors=True)


@contextlib.contextmanager
def private_database(bindir: Path) -> Iterator[SessionDatabase]:
    with shared_cluster(bindir) as cluster:
        server = Server(cluster.url("postgres", driver="asyncpg"))
        url = server.clone(TEMPLATE_DATABASE, worker_database_name(TEMPLATE_DATABASE))
        yield SessionDatabase(url=url, server=server, template=TEMPLATE_DATABASE)


@contextlib.contextmanager
def external_database(server_url: str) -> Iterator[SessionDatabase]:
    """Uniquely named databases on an existing server, migrated here and dropped at the end."""
    server = Server(make_url(server_url).set(drivername="postgresql+asyncpg"))
    template = f"test_{{ cookiecutter.package_name }}_{uuid.uuid4().hex[:8]}"
    name = f"{template}_session"
    server.create(template)
    try:
        migrate(server.admin_url.set(database=template))
        url = server.clone(template, name)
        try:
            yield SessionDatabase(url=url, server=server, template=template)
        finally:
            server.drop(name)
    finally:
        server.drop(template)


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
