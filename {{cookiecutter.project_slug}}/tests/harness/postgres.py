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
import importlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import URL, make_url

from {{ cookiecutter.package_name }}.db.local import (
    Cluster,
    PostgresNotFound,
    ServerAccount,
    find_bindir,
    hand_over,
    postmaster_pid,
    server_account,
    stop_postmaster,
)
from {{ cookiecutter.package_name }}.db.migrations import (
    PROJECT_ROOT,
    import_migration_modules,
    upgrade_database,
)

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
    # Per user: another user's runs, caches and locks are not ours to touch.
    root = base / f"{{ cookiecutter.package_name }}-postgres-{os.getuid()}"
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


def process_status(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name; empty without procfs."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat.rsplit(")", 1)[1].split()


def process_identity(pid: int) -> str:
    """pid plus start time, so a recycled pid is not mistaken for the original."""
    status = process_status(pid)
    return f"{pid}-{status[19]}" if status else str(pid)


def is_alive(identity: str) -> bool:
    """Whether the process is running; one that exited but is not reaped yet is not."""
    pid = int(identity.split("-", 1)[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    status = process_status(pid)
    if status and status[0] == "Z":
        return False
    return process_identity(pid) == identity or "-" not in identity


def base_key(bindir: Path) -> str:
    """Identifies the server binaries (and how clusters are built)."""
    postgres = (bindir / "postgres").stat()
    identity = f"{CACHE_FORMAT}:{bindir}:{postgres.st_size}:{postgres.st_mtime_ns}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def cache_key(bindir: Path, migrations: Path = PROJECT_ROOT / "migrations") -> str:
    """Identifies the server binaries and the migrations."""
    digest = hashlib.sha256(base_key(bindir).encode())
    for path in sorted(migrations.rglob("*.py")):
        digest.update(str(path.relative_to(migrations)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def copy_cluster(source: Path, target: Path, account: ServerAccount | None) -> None:
    """Copy a stopped cluster; cp -a keeps the owner and modes the server checks."""
    target.mkdir(exist_ok=True)
    subprocess.run(["cp", "-a", str(source / "data"), str(target / "data")], check=True)
    if account is not None:
        os.chown(target, account.uid, account.gid)


def build(root: Path, target: Path, steps: Callable[[Path], None]) -> None:
    """Run `steps` in a fresh folder, then publish it with an atomic rename."""
    folder = Path(tempfile.mkdtemp(prefix="build-", dir=root))
    try:
        steps(folder)
        folder.rename(target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def build_cache(bindir: Path, root: Path, target: Path) -> None:
    """A migrated cluster, made from a freshly initialised one kept per server version.

    A changed migration then costs a copy and the migrations, not another initdb.
    """
    account = server_account()
    base = root / f"base-{base_key(bindir)}"

    def initialise(folder: Path) -> None:
        hand_over(folder, account)
        Cluster(folder / "data", bindir=bindir).initdb()

    def migrate_copy(folder: Path, imported: Future[None]) -> None:
        copy_cluster(base, folder, account)
        cluster = Cluster(folder / "data", bindir=bindir)
        try:
            cluster.start()
            cluster.create_database(TEMPLATE_DATABASE)
            imported.result()
            upgrade_database(cluster.url(TEMPLATE_DATABASE))
        finally:
            cluster.stop()

    # The imports run while initdb, or the copy and start, keep the server busy.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="migration-imports") as preload:
        imported = preload.submit(import_migration_modules)
        if not base.is_dir():
            build(root, base, initialise)
        build(root, target, lambda folder: migrate_copy(folder, imported))


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
        stop_postmaster(folder / "data", discard=True)
        shutil.rmtree(folder, ignore_errors=True)
        reaped.append(folder)
    return reaped


def remove_stale_caches(root: Path, keep: Path) -> None:
    """Caches of old migrations or servers, unused for a week (each use touches its cache)."""
    cutoff = time.time() - STALE_CACHE_SECONDS
    for cache in [*root.glob("cache-*"), *root.glob("base-*")]:
        if cache != keep and cache.stat().st_mtime < cutoff:
            shutil.rmtree(cache, ignore_errors=True)


@dataclass(frozen=True)
class RunIdentity:
    """The pytest run this process belongs to, and its name among the run's workers."""

    run: str
    worker: str = "main"

    @classmethod
    def of(cls, config: pytest.Config | None = None) -> "RunIdentity":
        """xdist workers of one run share its id; any other process starts a run of its own.

        Read from the worker's own config, not from PYTEST_XDIST_* variables: a pytest
        started by a test inherits those, and must not join the run that started it.
        """
        workerinput = getattr(config, "workerinput", None)
        if workerinput is None:
            return cls(run=uuid.uuid4().hex[:12])
        return cls(run=str(workerinput["testrunuid"])[:12], worker=str(workerinput["workerid"]))


@dataclass(frozen=True)
class Server:
    """Admin access to a PostgreSQL server: clone and drop databases."""

    admin_url: URL

    def connect(self, timeout: int = 30) -> psycopg.Connection[tuple[object, ...]]:
        url = self.admin_url
        socket_dir = url.query.get("host")
        return psycopg.connect(
            host=socket_dir if isinstance(socket_dir, str) else url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname=url.database or "postgres",
            autocommit=True,
            connect_timeout=timeout,
        )

    def unreachable(self) -> str | None:
        """Why the server no longer answers, or None while it does."""
        try:
            with self.connect(timeout=5):
                return None
        except psycopg.OperationalError as error:
            return (
                f"the test server at {self.admin_url.render_as_string(hide_password=True)} "
                f"stopped answering ({type(error).__name__}: {str(error).strip()[:200]})"
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


class Clones:
    """Databases cloned from the template for isolated tests, off the test's critical path.

    One background thread clones the next database while the current test runs,
    and drops finished ones; nothing is cloned ahead until a test first asks.
    """

    def __init__(self, server: Server, template: str) -> None:
        self.server = server
        self.template = template
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clones")
        self._next: Future[tuple[str, URL]] | None = None

    def _clone(self) -> tuple[str, URL]:
        name = f"{self.template}_{uuid.uuid4().hex[:10]}"
        return name, self.server.clone(self.template, name)

    def take(self) -> tuple[str, URL]:
        ready = self._next or self._worker.submit(self._clone)
        self._next = self._worker.submit(self._clone)
        return ready.result()

    def release(self, name: str) -> None:
        self._worker.submit(self.server.drop, name)

    def close(self) -> None:
        if self._next is not None:
            with contextlib.suppress(Exception):
                self.release(self._next.result()[0])
        self._worker.shutdown(wait=True)


@dataclass(frozen=True)
class SessionDatabase:
    """This process's migrated database, and clones of the template for isolated tests.

    `server_gone` says why the server is no longer there, or None while it is.
    """

    url: URL
    server: Server
    clones: Clones
    server_gone: Callable[[], str | None]

    @property
    def template(self) -> str:
        return self.clones.template


@contextlib.contextmanager
def session_clones(server: Server, template: str) -> Iterator[Clones]:
    clones = Clones(server, template)
    try:
        yield clones
    finally:
        clones.close()


@contextlib.contextmanager
def shared_cluster(bindir: Path, name: str) -> Iterator[Cluster]:
    """Join the cluster called `name`, starting it if we are first; stop it if we are last out."""
    root = scratch_root()
    account = server_account()
    run = root / f"run-{name}"
    owner = run / "owners" / process_identity(os.getpid())
    cluster = Cluster(run / "data", bindir=bindir)
    with locked(root):
        reap(root)
        cache = root / f"cache-{cache_key(bindir)}"
        if not cache.is_dir():
            build_cache(bindir, root, cache)
            remove_stale_caches(root, keep=cache)
        for used in (cache, root / f"base-{base_key(bindir)}"):
            with contextlib.suppress(FileNotFoundError):
                os.utime(used)
        if not run.is_dir():
            try:
                copy_cluster(cache, run, account)
                (run / "owners").mkdir()
                cluster.start()
            except BaseException:
                cluster.stop(discard=True)
                shutil.rmtree(run, ignore_errors=True)
                raise
        owner.touch()
    try:
        yield cluster
    finally:
        with locked(root):
            owner.unlink(missing_ok=True)
            if not any(is_alive(other.name) for other in (run / "owners").iterdir()):
                cluster.stop(discard=True)
                shutil.rmtree(run, ignore_errors=True)


def died(cluster: Cluster) -> str | None:
    """Why the run's server is gone (killed, out of memory), or None while it runs."""
    pid = postmaster_pid(cluster.datadir)
    if pid is not None and is_alive(process_identity(pid)):
        return None
    return (
        f"the test PostgreSQL server stopped during the run; its log, {cluster.log_path}, "
        f"ends with:\n{cluster.log_tail(lines=3)}\n"
    )


@contextlib.contextmanager
def private_database(bindir: Path, identity: RunIdentity) -> Iterator[SessionDatabase]:
    # The first engine imports asyncpg (~50 ms): do it while the cluster is copied and started.
    with ThreadPoolExecutor(max_workers=1) as preload:
        driver = preload.submit(importlib.import_module, "asyncpg")
        with shared_cluster(bindir, identity.run) as cluster:
            driver.result()
            server = Server(cluster.url("postgres", driver="asyncpg"))
            url = server.clone(TEMPLATE_DATABASE, f"{TEMPLATE_DATABASE}_{identity.worker}")
            with session_clones(server, TEMPLATE_DATABASE) as clones:
                yield SessionDatabase(
                    url=url, server=server, clones=clones, server_gone=partial(died, cluster)
                )


EXTERNAL_PREFIX = "test_{{ cookiecutter.package_name }}"[:21]


def external_owner_tag() -> str:
    """Names this process in database names: host, pid and start time.

    The next run on this host drops the databases of a run whose process is gone
    (killed, or interrupted before its clean-up); other hosts' runs are left alone.
    """
    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
    return f"{host}_{process_identity(os.getpid()).replace('-', '_')}"


def reap_external(server: Server) -> list[str]:
    """Drop this host's test databases whose run has ended without dropping them."""
    host = external_owner_tag().split("_", 1)[0]
    # pid, then its start time where the platform tells it (not on macOS).
    pattern = re.compile(rf"{re.escape(EXTERNAL_PREFIX)}_{host}_(\d+)(?:_(\d+))?(_|$)")
    with server.connect() as connection:
        names = [
            str(name)
            for (name,) in connection.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                (f"{EXTERNAL_PREFIX}_{host}_",),
            )
        ]
    # Clones and the session database before the template they were copied from.
    orphans = sorted(
        (
            name
            for name in names
            if (owner := pattern.match(name))
            and not is_alive(f"{owner[1]}-{owner[2]}" if owner[2] else owner[1])
        ),
        key=len,
        reverse=True,
    )
    for name in orphans:
        server.drop(name)
    return orphans


@contextlib.contextmanager
def external_database(server_url: str) -> Iterator[SessionDatabase]:
    """Databases on an existing server, named after this process, migrated here, dropped after."""
    server = Server(make_url(server_url).set(drivername="postgresql+asyncpg"))
    reap_external(server)
    # The suffix starts with a letter so that it never reads as a start time.
    template = f"{EXTERNAL_PREFIX}_{external_owner_tag()}_r{uuid.uuid4().hex[:4]}"
    name = f"{template}_session"
    server.create(template)
    try:
        upgrade_database(server.admin_url.set(database=template))
        url = server.clone(template, name)
        try:
            with session_clones(server, template) as clones:
                yield SessionDatabase(
                    url=url, server=server, clones=clones, server_gone=server.unreachable
                )
        finally:
            server.drop(name)
    finally:
        server.drop(template)


@contextlib.contextmanager
def session_database(identity: RunIdentity | None = None) -> Iterator[SessionDatabase]:
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
    with private_database(bindir, identity or RunIdentity.of()) as database:
        yield database
