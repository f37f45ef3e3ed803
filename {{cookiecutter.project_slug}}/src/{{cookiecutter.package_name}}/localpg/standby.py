"""A hot standby of a running cluster: a streaming replica, for code that reads from replicas.

pg_basebackup copies the primary and configures the copy to stream from it (-R),
through a replication slot of its own, so the primary keeps the WAL the standby
has not received yet, also while the standby is stopped. The standby lives in the
primary's run folder (standby-<owner>/), so whatever stops and deletes the run,
the last process out or the reaper of a killed run, stops the standby first.
"""

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from {{ cookiecutter.package_name }}.localpg.account import as_account, hand_over
from {{ cookiecutter.package_name }}.localpg.cluster import (
    SUPERUSER,
    Cluster,
    server_environment,
    short_socket_dir,
)
from {{ cookiecutter.package_name }}.localpg.errors import ClusterError
from {{ cookiecutter.package_name }}.localpg.processes import process_identity
from {{ cookiecutter.package_name }}.localpg.scratch import STANDBY_PREFIX

# On by default since PostgreSQL 10; said here because the standby is useless without it.
HOT_STANDBY = {"hot_standby": "on"}


def reserve_slot(primary: Cluster, slot: str) -> None:
    """A physical slot that keeps the primary's WAL from now on.

    pg_basebackup --create-slot makes it only once the copy has started, and a
    throwaway cluster (1 MB segments, a small min_wal_size) may recycle the segments
    the copy needs before then when another process's work forces checkpoints.
    """
    with primary.connect() as connection:
        connection.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))


def base_backup(primary: Cluster, datadir: Path, slot: str) -> None:
    """Copy the running `primary` into `datadir` as a standby streaming through `slot`."""
    reserve_slot(primary, slot)
    command = [
        str(primary.bindir / "pg_basebackup"),
        f"--pgdata={datadir}",
        "--write-recovery-conf",
        "--wal-method=stream",
        "--checkpoint=fast",
        f"--slot={slot}",
        f"--host={primary.socket_dir}",
        f"--port={primary.port}",
        f"--username={SUPERUSER}",
        # A throwaway copy, like the primary: nothing to sync to disk.
        "--no-sync",
    ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd="/",
        env=server_environment(primary.bindir),
        check=False,
        **as_account(primary.account),
    )
    if result.returncode != 0:
        raise ClusterError(f"pg_basebackup of {primary.datadir} failed:\n{result.stderr.strip()}")


def drop_slot(primary: Cluster, slot: str, timeout: float = 30.0) -> None:
    """Drop `slot` on `primary`; a stopped standby's walsender lets go of it shortly after."""
    deadline = time.monotonic() + timeout
    with primary.connect() as connection:
        while True:
            held = connection.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            if held is None:
                return
            if not held[0]:
                with contextlib.suppress(psycopg.errors.ObjectInUse):
                    connection.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                    return
            if time.monotonic() > deadline:
                raise ClusterError(f"replication slot {slot} still in use after {timeout} s")
            time.sleep(0.01)


def create_standby(primary: Cluster, folder: Path, slot: str) -> Cluster:
    """A started hot standby of `primary` in `folder`/data, streaming through `slot`."""
    folder.mkdir()
    hand_over(folder, primary.account)
    standby = Cluster(
        folder / "data",
        socket_dir=short_socket_dir(folder, primary.account),
        bindir=primary.bindir,
        settings=HOT_STANDBY,
    )
    try:
        base_backup(primary, standby.datadir, slot)
        # A hot standby's pid file reads "ready" once it accepts connections, as a primary's.
        standby.start()
    except BaseException:
        remove_standby(primary, standby, slot)
        raise
    return standby


def remove_standby(primary: Cluster, standby: Cluster, slot: str) -> None:
    """Stop `standby`, drop its slot on `primary`, delete its folder."""
    try:
        standby.stop(discard=True)
        drop_slot(primary, slot)
    finally:
        shutil.rmtree(standby.datadir.parent, ignore_errors=True)
        if standby.socket_dir != standby.datadir.parent:
            shutil.rmtree(standby.socket_dir, ignore_errors=True)


@contextlib.contextmanager
def standby_of(primary: Cluster) -> Iterator[Cluster]:
    """This process's hot standby of `primary`, in the primary's run folder, removed after."""
    owner = process_identity(os.getpid())
    folder = primary.datadir.parent / f"{STANDBY_PREFIX}{owner}"
    slot = f"standby_{owner.replace('-', '_')}"
    standby = create_standby(primary, folder, slot)
    try:
        yield standby
    finally:
        remove_standby(primary, standby, slot)
