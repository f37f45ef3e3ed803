"""Clusters of a test's own that listen on 127.0.0.1, with the pg_hba rules and server
settings the test gives: TLS, password logins. The harness's clusters listen on a unix
socket only, where neither applies."""

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from {{ cookiecutter.package_name }}.localpg.account import hand_over
from {{ cookiecutter.package_name }}.localpg.cache import base_key
from {{ cookiecutter.package_name }}.localpg.cluster import Cluster
from {{ cookiecutter.package_name }}.localpg.scratch import locked, scratch_root

DATABASE = "app"
# The superuser over the socket, for setting up; what the test decides over TCP.
LOCAL_TRUST = "local all all trust\nlocal replication all trust\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def initialise(cluster: Cluster) -> None:
    """A copy of the initdb'd base the harness keeps for these binaries, which the run's
    cluster was made from (a copy takes a fraction of initdb's time); initdb without one."""
    root = scratch_root()
    base = root / f"base-{base_key(cluster.bindir)}" / "data"
    # Under the lock: a base is published, or aged out, while the lock is held.
    with locked(root):
        if base.is_dir():
            subprocess.run(["cp", "-a", str(base), str(cluster.datadir)], check=True)
            return
    cluster.initdb()


@contextmanager
def tcp_cluster(
    bindir: Path, hba: str, settings: dict[str, str] | None = None, files: Path | None = None
) -> Iterator[Cluster]:
    """A started cluster on 127.0.0.1 (its `port`), with database `app`; `files` (such as
    certificates) are copied where the server may read them, named in `settings` as
    {files}/<name>."""
    # Beside the harness's clusters: on tmpfs when it has room, where a cluster starts faster.
    folder = Path(tempfile.mkdtemp(prefix="tcp-cluster-", dir=scratch_root()))
    try:
        server_files = folder / "files"
        if files is not None:
            shutil.copytree(files, server_files)
        own = {key: value.format(files=server_files) for key, value in (settings or {}).items()}
        cluster = Cluster(
            folder / "data",
            bindir=bindir,
            settings={"listen_addresses": "127.0.0.1", "port": str(free_port()), **own},
        )
        hand_over(folder, cluster.account)
        initialise(cluster)
        (cluster.datadir / "pg_hba.conf").write_text(LOCAL_TRUST + hba)
        hand_over(folder, cluster.account)
        cluster.start()
        try:
            with cluster.connect() as connection:
                connection.execute(f"CREATE DATABASE {DATABASE}")
            yield cluster
        finally:
            cluster.stop(discard=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
