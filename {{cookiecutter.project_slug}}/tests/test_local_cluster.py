"""Finding the server binaries and the embedded default used without DATABASE_URL."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import URL

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.db.local import (
    INSTALL_HELP,
    Cluster,
    PostgresNotFound,
    bindir_candidates,
    embedded_cluster,
    embedded_root,
    find_bindir,
)
from {{ cookiecutter.package_name }}.settings import get_settings


def connect(url: URL) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(host=str(url.query["host"]), user=url.username, dbname=url.database)


def test_pg_bindir_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = find_bindir()
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
    assert INSTALL_HELP in message
    assert "apt-get install postgresql" in message
    assert "brew install" in message


def test_pgserver_wheel_is_the_last_resort(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bindir = tmp_path / "pgserver" / "pginstall" / "bin"
    bindir.mkdir(parents=True)
    (tmp_path / "pgserver" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert list(bindir_candidates())[-1] == bindir


def test_found_bindir_has_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PG_BINDIR", raising=False)
    bindir = find_bindir()
    assert (bindir / "initdb").is_file()
    assert (bindir / "postgres").is_file()


@pytest.fixture
def project_dir(tmp_path: Path) -> Iterator[Path]:
    """A project folder; its cluster (wherever the server account can reach) goes after."""
    yield tmp_path
    shutil.rmtree(embedded_root(tmp_path / ".postgres"), ignore_errors=True)


def test_failed_start_reports_the_server_log(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "data")
    with pytest.raises(Exception, match="postgres exited"):
        cluster.start()
    assert not cluster.running


def test_migrate_command_uses_the_embedded_default_and_keeps_its_data(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project_dir)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        assert cli.main(["migrate"]) == 0
    finally:
        get_settings.cache_clear()
    with (
        embedded_cluster(project_dir / ".postgres", "{{ cookiecutter.package_name }}") as url,
        connect(url) as connection,
    ):
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone()
