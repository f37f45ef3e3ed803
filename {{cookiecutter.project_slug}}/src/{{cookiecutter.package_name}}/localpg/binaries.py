"""Find PostgreSQL's server binaries: PG_BINDIR, pg_config, versioned installs, PATH, wheels."""

import glob
import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

INSTALL_HELP = """\
PostgreSQL server binaries (initdb and postgres) were not found.
Fix it in one of these ways:
  - Debian/Ubuntu: sudo apt-get install postgresql
  - Fedora/RHEL:   sudo dnf install postgresql-server
  - macOS:         brew install postgresql@17
  - Any platform:  pip install pgserver (a wheel that bundles the server binaries)
  - Point at an installation: export PG_BINDIR=/path/to/postgresql/bin
  - Use a server you already run: export TEST_DATABASE_URL=postgresql://user:password@host/db
    (tests) or DATABASE_URL=... (the service)"""
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


def bindir_candidates() -> Iterator[Path]:
    """Where server binaries may be, in the order they are tried (after PG_BINDIR)."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            yield Path(result.stdout.strip())
    for pattern in VERSIONED_BINDIR_PATTERNS:
        yield from sorted(map(Path, glob.glob(pattern)), key=_version_key, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        yield Path(initdb).resolve().parent
    # The pgserver wheel bundles a PostgreSQL build; only its binaries are used.
    pgserver = importlib.util.find_spec("pgserver")
    if pgserver is not None and pgserver.submodule_search_locations:
        yield Path(pgserver.submodule_search_locations[0]) / "pginstall" / "bin"


def find_bindir() -> Path:
    """PG_BINDIR, pg_config --bindir, the newest versioned install, PATH, the pgserver wheel."""
    configured = os.environ.get("PG_BINDIR")
    if configured:
        if _has_server(Path(configured)):
            return Path(configured)
        raise PostgresNotFound(
            f"PG_BINDIR={configured} has no initdb and postgres.\n{INSTALL_HELP}"
        )
    for candidate in bindir_candidates():
        if _has_server(candidate):
            return candidate
    raise PostgresNotFound(INSTALL_HELP)
