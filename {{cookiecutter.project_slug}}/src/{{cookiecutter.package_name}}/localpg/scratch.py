"""The scratch folder where throwaway clusters, their caches and their runs live.

One folder per user, on tmpfs when it has room. Whatever builds, starts, stops
or reaps there holds its lock, so concurrent runs never see half-done work.
"""

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Collection, Iterator
from pathlib import Path

from {{ cookiecutter.package_name }}.localpg.processes import is_alive, stop_postmaster

MIN_TMPFS_FREE_BYTES = 512 * 1024 * 1024
STALE_CACHE_SECONDS = 7 * 24 * 3600
# Each cache is a cluster (~50 MB, in memory on tmpfs), and each change of a migration
# makes a new one: a few branches' worth are kept, the rest rebuilt when needed (~1 s).
KEPT_CACHES = 4
# A run folder holds its cluster in data/ and the standbys of it in standby-<owner>/data/.
STANDBY_PREFIX = "standby-"


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
        stop_servers(folder)
        shutil.rmtree(folder, ignore_errors=True)
        reaped.append(folder)
    return reaped


def standby_datadirs(run: Path) -> list[Path]:
    return sorted(run.glob(f"{STANDBY_PREFIX}*/data"))


def stop_standbys(run: Path) -> None:
    """Stop the standbys in a run folder that is about to be deleted."""
    for datadir in standby_datadirs(run):
        stop_postmaster(datadir, discard=True)


def stop_servers(run: Path) -> None:
    """Stop every server in a run folder that is about to be deleted, standbys first.

    None may outlive the folder: a server whose data directory is deleted runs on.
    """
    stop_standbys(run)
    stop_postmaster(run / "data", discard=True)


def remove_stale_caches(root: Path, keep: Collection[Path]) -> None:
    """Caches of old migrations or servers, and servers unpacked from wheels, unused for a
    week (each use touches what it uses); of the migrated caches and the initdb'd bases,
    only the KEPT_CACHES of each used last. Call with the lock held."""
    cutoff = time.time() - STALE_CACHE_SECONDS
    for kind in ("cache-*", "base-*", "postgresql-*"):
        used = sorted([(folder.stat().st_mtime, folder) for folder in root.glob(kind)])[::-1]
        # An unpacked server may be running a cluster: it goes by age alone.
        kept = len(used) if kind == "postgresql-*" else KEPT_CACHES
        for rank, (last_used, folder) in enumerate(used):
            if folder not in keep and (rank >= kept or last_used < cutoff):
                shutil.rmtree(folder, ignore_errors=True)
