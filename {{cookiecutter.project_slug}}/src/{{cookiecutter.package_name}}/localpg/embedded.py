"""The embedded default: a durable private cluster kept in the project, for the CLI.

With DATABASE_URL unset, `migrate`, `revision` and `serve` run on it, so a new
clone runs with one command.
"""

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import URL

from {{ cookiecutter.package_name }}.localpg.account import hand_over, is_reachable, server_account
from {{ cookiecutter.package_name }}.localpg.binaries import find_bindir, server_major, server_version
from {{ cookiecutter.package_name }}.localpg.cluster import Cluster, short_socket_dir
from {{ cookiecutter.package_name }}.localpg.errors import ClusterError, ClusterInUse
from {{ cookiecutter.package_name }}.localpg.processes import running_server

logger = logging.getLogger(__name__)


def embedded_root(root: Path) -> Path:
    """`root`, or a stable stand-in under the temp dir when the server cannot reach it.

    As root, the server runs as another account, which cannot enter folders such
    as /root or pytest's temporary directories.
    """
    root = root.resolve()
    if is_reachable(root, server_account()):
        return root
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"postgres-{root.parent.name}-{digest}"


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
def embedded_cluster(root: Path, database: str) -> Iterator[URL]:
    """A durable private cluster in `root`, running for the duration of the block."""
    requested, root = root, embedded_root(root)
    if root != requested.resolve():
        logger.warning("%s is not reachable by the server account; using %s", requested, root)
    # Checked before anything is touched; start() checks again, for a server started since.
    running = running_server(root / "data")
    if running is not None:
        raise ClusterInUse(root / "data", running)
    account = server_account()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    hand_over(root, account)
    socket_dir = short_socket_dir(root, account)
    bindir = bindir_for(root / "data")
    cluster = Cluster(root / "data", bindir=bindir, socket_dir=socket_dir, durable=True)
    logger.info("PostgreSQL %s from %s, data in %s", server_version(bindir), bindir, root / "data")
    if not (cluster.datadir / "PG_VERSION").exists():
        logger.info("creating a private PostgreSQL cluster in %s", cluster.datadir)
        cluster.initdb()
    try:
        cluster.start()
        # Only a server this block started is stopped: never one it refused to adopt.
        try:
            cluster.create_database(database)
            yield cluster.url(database)
        finally:
            cluster.stop()
    finally:
        if socket_dir != root:
            shutil.rmtree(socket_dir, ignore_errors=True)
