"""Finding the server binaries and starting a cluster; the embedded default is in test_cli.py."""

import os
import signal
import tarfile
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.package_name }}.localpg import binaries
from {{ cookiecutter.package_name }}.localpg.binaries import (
    PostgresNotFound,
    bindir_candidates,
    find_bindir,
    project_major,
    server_version,
)
from {{ cookiecutter.package_name }}.localpg.cluster import Cluster
from {{ cookiecutter.package_name }}.localpg.processes import interrupts_deferred
from {{ cookiecutter.package_name }}.localpg.scratch import (
    KEPT_CACHES,
    STALE_CACHE_SECONDS,
    remove_stale_caches,
)
from {{ cookiecutter.package_name }}.localpg.wheels import unpack


def fake_installation(root: Path, version: str) -> Path:
    """A bin folder whose postgres answers --version as `version` would."""
    bindir = root / f"pg-{version}" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "initdb").write_text("")
    postgres = bindir / "postgres"
    postgres.write_text(f"#!/bin/sh\necho 'postgres (PostgreSQL) {version}'\n")
    postgres.chmod(0o755)
    return bindir


def test_pg_bindir_wins(monkeypatch: pytest.MonkeyPatch, server_bindir: Path) -> None:
    bindir = server_bindir
    monkeypatch.setenv("PG_BINDIR", str(bindir))
    assert find_bindir() == bindir


def test_wrong_pg_bindir_says_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PG_BINDIR", str(tmp_path))
    with pytest.raises(PostgresNotFound) as raised:
        find_bindir()
    message = str(raised.value)
    assert str(tmp_path) in message
    assert "uv sync" in message
    assert "apt-get install postgresql" in message
    assert "brew install" in message


def test_pgserver_wheel_is_the_last_resort(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bindir = tmp_path / "pgserver" / "pginstall" / "bin"
    bindir.mkdir(parents=True)
    (tmp_path / "pgserver" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert list(bindir_candidates())[-1] == bindir


@pytest.mark.usefixtures("server_bindir")
def test_found_bindir_has_the_server() -> None:
    # As this machine is set up, which may be PG_BINDIR alone, with no other server to find.
    bindir = find_bindir()
    assert (bindir / "initdb").is_file()
    assert (bindir / "postgres").is_file()


def test_discovery_passes_over_folders_without_a_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server_bindir: Path
) -> None:
    major = server_version(server_bindir).split(".")[0]
    # Of the wanted major, as the server is: only their missing binaries set them aside.
    no_initdb = fake_installation(tmp_path, f"{major}.0")
    (no_initdb / "initdb").unlink()
    empty = tmp_path / "empty" / "bin"
    empty.mkdir(parents=True)
    candidates = [tmp_path / "missing" / "bin", empty, no_initdb, server_bindir]
    monkeypatch.setattr(binaries, "bindir_candidates", lambda: iter(candidates))
    monkeypatch.delenv("PG_BINDIR", raising=False)
    monkeypatch.setenv("POSTGRES_MAJOR", major)
    assert find_bindir() == server_bindir


def test_failed_start_reports_the_server_log(tmp_path: Path, server_bindir: Path) -> None:
    cluster = Cluster(tmp_path / "data", bindir=server_bindir)
    with pytest.raises(Exception, match="postgres exited"):
        cluster.start()
    assert not cluster.running


@pytest.mark.parametrize(
    ("wanted", "chosen"),
    [(None, "17.6"), ("16", "16.10"), ("14", "17.6")],
    ids=["project-major-absent-newest", "wanted-major", "wanted-absent-newest"],
)
def test_the_wanted_major_is_chosen_else_the_newest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, wanted: str | None, chosen: str
) -> None:
    installed = [fake_installation(tmp_path, version) for version in ("15.4", "17.6", "16.10")]
    monkeypatch.setattr(binaries, "bindir_candidates", lambda: iter(installed))
    monkeypatch.setattr(binaries, "project_major", lambda: 99)
    monkeypatch.delenv("PG_BINDIR", raising=False)
    if wanted is None:
        monkeypatch.delenv("POSTGRES_MAJOR", raising=False)
    else:
        monkeypatch.setenv("POSTGRES_MAJOR", wanted)
    assert server_version(find_bindir()) == chosen


def test_the_projects_major_is_preferred(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    major = project_major()
    assert major is not None, "pyproject.toml names no [tool.localpg] postgres-major"
    versions = (f"{major + 1}.0", f"{major}.2", f"{major - 1}.9")
    installed = [fake_installation(tmp_path, version) for version in versions]
    monkeypatch.setattr(binaries, "bindir_candidates", lambda: iter(installed))
    monkeypatch.delenv("PG_BINDIR", raising=False)
    monkeypatch.delenv("POSTGRES_MAJOR", raising=False)
    assert find_bindir() == installed[1]


def test_a_wrong_postgres_major_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PG_BINDIR", raising=False)
    monkeypatch.setenv("POSTGRES_MAJOR", "latest")
    with pytest.raises(PostgresNotFound, match="POSTGRES_MAJOR=latest is not a PostgreSQL major"):
        find_bindir()


def test_a_wheels_server_is_unpacked_once_and_whole(tmp_path: Path) -> None:
    release = fake_installation(tmp_path / "release", "18.1").parent
    tarball = tmp_path / f"{release.name}.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(release, arcname=release.name)
    root = tmp_path / "scratch"
    (root / "unpack-killed").mkdir(parents=True)
    installed = unpack(tarball, root)
    assert server_version(installed / "bin") == "18.1"
    assert sorted(path.name for path in root.iterdir()) == [".lock", release.name]
    stamp = os.stat(installed / "bin" / "postgres").st_ino
    assert unpack(tarball, root) == installed
    assert os.stat(installed / "bin" / "postgres").st_ino == stamp


@pytest.mark.skipif("TEST_DATABASE_URL" in os.environ, reason="runs on the harness's own cluster")
async def test_the_harness_runs_the_server_it_found(
    db_session: AsyncSession, server_bindir: Path
) -> None:
    version = await db_session.scalar(text("SHOW server_version"))
    assert str(version).split()[0] == server_version(find_bindir())


def test_caches_and_unpacked_servers_unused_for_a_week_are_removed(tmp_path: Path) -> None:
    folders = [
        "cache-old",
        "cache-new",
        "base-old",
        "postgresql-15.0.0-old",
        "postgresql-18.1.0-new",
    ]
    for name in folders:
        (tmp_path / name).mkdir()
        if name.endswith("old"):
            weeks_ago = os.stat(tmp_path / name).st_mtime - STALE_CACHE_SECONDS - 60
            os.utime(tmp_path / name, (weeks_ago, weeks_ago))
    remove_stale_caches(tmp_path, keep={tmp_path / "cache-new"})
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "cache-new",
        "postgresql-18.1.0-new",
    ]


def test_only_the_caches_used_last_are_kept(tmp_path: Path) -> None:
    # Each edit of a migration makes a new cache, used minutes apart: none a week old.
    now = time.time()
    count = KEPT_CACHES + 3
    for kind in ("cache", "base", "postgresql-15.0.0"):
        for age in range(count):
            folder = tmp_path / f"{kind}-{age}"
            folder.mkdir()
            os.utime(folder, (now - 60 * age, now - 60 * age))
    oldest = {tmp_path / f"cache-{count - 1}", tmp_path / f"base-{count - 1}"}
    remove_stale_caches(tmp_path, keep=oldest)
    left = {path.name for path in tmp_path.iterdir()}
    for kind in ("cache", "base"):
        # The newest, and the ones in use however old.
        expected = {f"{kind}-{age}" for age in [*range(KEPT_CACHES), count - 1]}
        assert {name for name in left if name.startswith(f"{kind}-")} == expected
    # An unpacked server may be running a cluster: only a week unused removes it.
    assert len([name for name in left if name.startswith("postgresql-")]) == count


def test_ctrl_c_during_a_clean_up_takes_effect_when_it_ends() -> None:
    before = signal.getsignal(signal.SIGINT)
    finished = []
    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        finished.append("the clean-up")
    assert finished == ["the clean-up"]
    assert signal.getsignal(signal.SIGINT) is before
