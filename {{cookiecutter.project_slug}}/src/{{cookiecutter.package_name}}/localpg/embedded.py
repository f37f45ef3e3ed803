"""The embedded default: a durable private cluster kept in the project, for the CLI.

With DATABASE_URL unset, `migrate`, `revision` and `serve` run on it, so a new
clone runs with one command.

When the server account cannot enter the project, the cluster lives in a stand-in
folder under the temp dir instead, which deleting the project does not remove. A
stand-in records the project it serves, so that once the project is gone and the
stand-in has not been used for a week, a later command removes it, as stale caches
are.
"""

import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import URL

from {{ cookiecutter.package_name }}.localpg.account import (
    ServerAccount,
    hand_over,
    is_reachable,
    server_account,
)
from {{ cookiecutter.package_name }}.localpg.binaries import find_bindir, server_major, server_version
from {{ cookiecutter.package_name }}.localpg.cluster import Cluster, short_socket_dir
from {{ cookiecutter.package_name }}.localpg.errors import ClusterError, ClusterInUse
from {{ cookiecutter.package_name }}.localpg.processes import running_server
from {{ cookiecutter.package_name }}.localpg.scratch import STALE_CACHE_SECONDS

logger = logging.getLogger(__name__)

# In a stand-in: the folder in the project it stands in for.
STANDS_IN_FOR = "stands-in-for"
# Held shared by every command using the cluster, exclusively by whoever removes it.
IN_USE_LOCK = ".in-use"


def stand_in_name(root: Path) -> str:
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return f"postgres-{root.parent.name}-{digest}"


def embedded_root(root: Path) -> Path:
    """`root`, or a stable stand-in under the temp dir when the server cannot reach it.

    As root, the server runs as another account, which cannot enter folders such
    as /root or pytest's temporary directories.
    """
    root = root.resolve()
    if is_reachable(root, server_account()):
        return root
    return Path(tempfile.gettempdir()) / stand_in_name(root)


@contextmanager
def in_use(root: Path) -> Iterator[None]:
    """Create `root` if need be and keep it from being removed as abandoned during the block.

    Its modification time is when it was last used: a stand-in goes a week after.
    """
    while True:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_path = root / IN_USE_LOCK
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
            try:
                current = lock_path.stat().st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(lock.fileno()).st_ino:
                try:
                    yield
                finally:
                    os.utime(root)
                return
        # It was removed while we waited for its remover's lock: make it again.


def abandoned(stand_in: Path, served: Path, cutoff: float) -> bool:
    """Whether the project of `stand_in` is gone, it is unused since `cutoff` and stopped.

    Call holding its lock exclusively: then no command is about to start it.
    """
    return (
        not served.parent.exists()
        and stand_in.stat().st_mtime < cutoff
        and running_server(stand_in / "data") is None
    )


def remove_abandoned_stand_ins() -> list[Path]:
    """Remove the stand-ins under the temp dir whose project is gone, unused for a week.

    Only folders that record the project they stand in for, under the name given
    to that project's stand-in, with the lock of their users: nothing else in the
    temp dir is ours.
    """
    cutoff = time.time() - STALE_CACHE_SECONDS
    removed = []
    for record in Path(tempfile.gettempdir()).glob(f"postgres-*/{STANDS_IN_FOR}"):
        stand_in = record.parent
        try:
            served = Path(record.read_text().strip())
            if stand_in.name != stand_in_name(served) or served.parent.exists():
                continue
            # Opened, not created: every command using a stand-in made one.
            with (stand_in / IN_USE_LOCK).open() as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if abandoned(stand_in, served, cutoff):
                    shutil.rmtree(stand_in, ignore_errors=True)
                    removed.append(stand_in)
                    logger.info("removed %s: %s is gone", stand_in, served.parent)
        except OSError:
            # In use (its lock is held), removed by another command meanwhile, or not ours.
            continue
    return removed


def bindir_for(datadir: Path) -> Path:
    """Server binaries that can run `datadir`: of the major that created it, if it exists."""
    version_file = datadir / "PG_VERSION"
    if not version_file.is_file():
        return find_bindir()
    created_by = int(version_file.read_text().strip())
    bindir = find_bindir(created_by)
    if server_major(bindir) != created_by:
        raise ClusterError(
            f"{datadir} was created by PostgreSQL {created_by}, and no PostgreSQL "
            f"{created_by} server is here (found {server_version(bindir)} in {bindir}). "
            f"Install PostgreSQL {created_by} or point PG_BINDIR at one; or, to start over "
            f"on {server_major(bindir)}, move {datadir.parent} aside: its data is not carried "
            "over (pg_dump it first with the old server, or pg_upgrade it)"
        )
    return bindir


@contextmanager
def socket_folder(root: Path, account: ServerAccount | None) -> Iterator[Path]:
    """Where the server's socket goes: `root`, or a short folder removed afterwards."""
    socket_dir = short_socket_dir(root, account)
    try:
        yield socket_dir
    finally:
        if socket_dir != root:
            shutil.rmtree(socket_dir, ignore_errors=True)


@contextmanager
def embedded_cluster(root: Path, database: str, app_role: str | None = None) -> Iterator[URL]:
    """A durable private cluster in `root`, running for the duration of the block; the
    superuser's URL of `database`, and the login role `app_role` made if need be."""
    requested, root = root.resolve(), embedded_root(root)
    if root != requested:
        logger.warning("%s is not reachable by the server account; using %s", requested, root)
    remove_abandoned_stand_ins()
    # Checked before anything is touched; start() checks again, for a server started since.
    running = running_server(root / "data")
    if running is not None:
        raise ClusterInUse(root / "data", running)
    account = server_account()
    with in_use(root):
        if root != requested:
            (root / STANDS_IN_FOR).write_text(f"{requested}\n")
        hand_over(root, account)
        with socket_folder(root, account) as socket_dir:
            bindir = bindir_for(root / "data")
            cluster = Cluster(root / "data", bindir=bindir, socket_dir=socket_dir, durable=True)
            logger.info(
                "PostgreSQL %s from %s, data in %s", server_version(bindir), bindir, root / "data"
            )
            if not (cluster.datadir / "PG_VERSION").exists():
                logger.info("creating a private PostgreSQL cluster in %s", cluster.datadir)
                cluster.initdb()
            cluster.start()
            # Only a server this block started is stopped: never one it refused to adopt.
            try:
                cluster.create_database(database)
                if app_role is not None:
                    cluster.create_role(app_role)
                yield cluster.url(database)
            finally:
                cluster.stop()
