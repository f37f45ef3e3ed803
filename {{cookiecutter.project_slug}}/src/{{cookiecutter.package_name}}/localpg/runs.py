"""A run's cluster: a copy of the migrated cache, shared by the processes of one run.

The first process to join starts it, every process records itself as an owner,
and the last one out stops and removes it, with any standby of it left there. A
run whose owners were all killed is reaped by the next one to start.
"""

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from {{ cookiecutter.package_name }}.localpg.account import server_account
from {{ cookiecutter.package_name }}.localpg.cache import (
    SPARE_DATABASE,
    Migrations,
    base_key,
    build_cache,
    cache_key,
    copy_cluster,
)
from {{ cookiecutter.package_name }}.localpg.cluster import Cluster
from {{ cookiecutter.package_name }}.localpg.processes import (
    interrupts_deferred,
    is_alive,
    process_identity,
)
from {{ cookiecutter.package_name }}.localpg.scratch import (
    locked,
    reap,
    remove_stale_caches,
    scratch_root,
    stop_standbys,
)


def take_spare(cluster: Cluster) -> str | None:
    """The cache's spare clone of the migrated database, for the first process of the run
    to ask (creating the marker is atomic); None for the others, which clone their own."""
    try:
        os.close(os.open(cluster.datadir.parent / "spare-taken", os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return None
    return SPARE_DATABASE


class NoCache(Exception):
    """The migrated cache is not built, and the caller asked not to build it."""


def up_to_date_cache(root: Path, bindir: Path, migrations: Migrations, *, build: bool) -> Path:
    """The migrated cache for these binaries and migrations, built if missing (NoCache
    unless `build`); call with the lock held."""
    cache = root / f"cache-{cache_key(bindir, migrations.folder, migrations.login_role)}"
    base = root / f"base-{base_key(bindir)}"
    if not cache.is_dir():
        if not build:
            raise NoCache(cache)
        build_cache(bindir, root, cache, migrations)
        remove_stale_caches(root, keep={cache, base})
    # A server unpacked from a wheel lives here too: keep it from ageing out.
    unpacked = [bindir.parent] if bindir.is_relative_to(root) else []
    for used in (cache, base, *unpacked):
        with contextlib.suppress(FileNotFoundError):
            os.utime(used)
    return cache


@contextlib.contextmanager
def shared_cluster(
    bindir: Path, name: str, migrations: Migrations, *, build: bool = True
) -> Iterator[Cluster]:
    """Join the cluster called `name`, starting it if we are first; stop it if we are last out.

    Without `build`, a missing cache raises NoCache: building it runs the migrations, which
    import the service.
    """
    root = scratch_root()
    account = server_account()
    run = root / f"run-{name}"
    owner = run / "owners" / process_identity(os.getpid())
    cluster = Cluster(run / "data", bindir=bindir)
    with locked(root):
        reap(root)
        # The run's later processes join its server: the cache may have gone since.
        if not run.is_dir():
            cache = up_to_date_cache(root, bindir, migrations, build=build)
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
        with interrupts_deferred(), locked(root):
            owner.unlink(missing_ok=True)
            if not any(is_alive(other.name) for other in (run / "owners").iterdir()):
                # Standbys of it too: those a killed process left behind.
                stop_standbys(run)
                cluster.stop(discard=True)
                shutil.rmtree(run, ignore_errors=True)
