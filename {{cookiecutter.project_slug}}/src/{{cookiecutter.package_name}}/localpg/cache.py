"""Migrated clusters, built once and copied for each run.

initdb and the migrations take seconds; copying a stopped, migrated cluster and
starting it takes a fraction of that. A cache is keyed on the server binaries
and the migrations, and built from an initdb'd base kept per server build, so a
changed migration costs a copy and the migrations, not another initdb.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from {{ cookiecutter.package_name }}.localpg.account import ServerAccount, hand_over, server_account
from {{ cookiecutter.package_name }}.localpg.cluster import Cluster

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

# The migrated database in every cached cluster; runs clone theirs from it.
MIGRATED_DATABASE = "{{ cookiecutter.package_name }}_test"
# A clone of it made with the cache, for the first process of a run to take as its own:
# creating a database on a just-started server costs that process a checkpoint.
SPARE_DATABASE = f"{MIGRATED_DATABASE}_spare"
# Bump to invalidate every cache when the way it is built changes.
CACHE_FORMAT = "5"


def nothing_to_preload() -> None:
    return None


@dataclass(frozen=True)
class Migrations:
    """What brings a cluster's database to the latest revision."""

    folder: Path
    apply: Callable[[URL], None]
    # Imports that applying needs: they run while initdb or the copy keeps the server busy.
    preload: Callable[[], None] = nothing_to_preload
    # A login role made before applying, such as the one the migrations grant to.
    login_role: str | None = None


def base_key(bindir: Path) -> str:
    """Identifies the server binaries (and how clusters are built)."""
    postgres = (bindir / "postgres").stat()
    identity = f"{CACHE_FORMAT}:{bindir}:{postgres.st_size}:{postgres.st_mtime_ns}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def cache_key(bindir: Path, migrations: Path, login_role: str | None = None) -> str:
    """Identifies the server binaries, the migrations and the role they grant to: a cache
    built without the role (the data-layer benchmark's) must not serve the tests."""
    digest = hashlib.sha256(f"{base_key(bindir)}:{login_role}".encode())
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


def build_cache(bindir: Path, root: Path, target: Path, migrations: Migrations) -> None:
    """A migrated cluster in `target`, made from the initdb'd base of these binaries."""
    account = server_account()
    base = root / f"base-{base_key(bindir)}"

    def initialise(folder: Path) -> None:
        hand_over(folder, account)
        Cluster(folder / "data", bindir=bindir).initdb()

    def migrate_copy(folder: Path, preloaded: Future[None]) -> None:
        copy_cluster(base, folder, account)
        cluster = Cluster(folder / "data", bindir=bindir)
        try:
            cluster.start()
            cluster.create_database(MIGRATED_DATABASE)
            if migrations.login_role is not None:
                cluster.create_role(migrations.login_role)
            preloaded.result()
            migrations.apply(cluster.url(MIGRATED_DATABASE))
            cluster.create_database(SPARE_DATABASE, template=MIGRATED_DATABASE)
        finally:
            cluster.stop()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="migration-imports") as preload:
        preloaded = preload.submit(migrations.preload)
        if not base.is_dir():
            build(root, base, initialise)
        build(root, target, lambda folder: migrate_copy(folder, preloaded))
