"""Run commands for the template's tests: the pinned uv, and subprocesses that must succeed."""

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

# The uv that scripts/bootstrap installed beside this Python, else the one on PATH.
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


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
