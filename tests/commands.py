"""Run commands for the template's tests: the pinned uv, and subprocesses that must succeed."""

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

# The uv that scripts/bootstrap installed beside this Python, else the one on PATH.
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


# A tmpfs over /usr/lib/postgresql, as on a machine with no PostgreSQL installed: it also
# leaves /usr/local/bin/initdb and the other links into it dangling, and pg_config's
# bindir empty.
HIDE_SYSTEM_POSTGRES = "mount -t tmpfs -o mode=0755 tmpfs /usr/lib/postgresql"


def in_mount_namespace(setup: str, command: list[str]) -> list[str]:
    """`command`, run after the shell commands `setup` in a private mount namespace."""
    script = f'{setup} && exec "$@"'
    unshare = ["unshare", "--mount", "--propagation=private", "--"]
    return [*unshare, "sh", "-c", script, "run", *command]


def run(
    cwd: Path,
    *command: str,
    timeout: float = 900,
    base_environment: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `command` in `cwd` outside any virtualenv and with no DATABASE_URL.

    With `check`, a failure fails the test with the command and what it printed.
    """
    inherited = os.environ if base_environment is None else base_environment
    environment = {
        key: value for key, value in inherited.items() if key not in {"VIRTUAL_ENV", "DATABASE_URL"}
    }
    result = subprocess.run(
        list(command),
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        assert result.returncode == 0, (
            f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result
