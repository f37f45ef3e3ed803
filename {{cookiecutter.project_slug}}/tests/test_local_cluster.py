"""Finding the server binaries and starting a cluster; the embedded default is in test_cli.py."""

from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.localpg.binaries import (
    INSTALL_HELP,
    PostgresNotFound,
    bindir_candidates,
    find_bindir,
)
from {{ cookiecutter.package_name }}.localpg.cluster import Cluster


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
    assert INSTALL_HELP in message
    assert "apt-get install postgresql" in message
    assert "brew install" in message


def test_pgserver_wheel_is_the_last_resort(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bindir = tmp_path / "pgserver" / "pginstall" / "bin"
    bindir.mkdir(parents=True)
    (tmp_path / "pgserver" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert list(bindir_candidates())[-1] == bindir


@pytest.mark.usefixtures("server_bindir")
def test_found_bindir_has_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PG_BINDIR", raising=False)
    bindir = find_bindir()
    assert (bindir / "initdb").is_file()
    assert (bindir / "postgres").is_file()


def test_failed_start_reports_the_server_log(tmp_path: Path, server_bindir: Path) -> None:
    cluster = Cluster(tmp_path / "data", bindir=server_bindir)
    with pytest.raises(Exception, match="postgres exited"):
        cluster.start()
    assert not cluster.running
