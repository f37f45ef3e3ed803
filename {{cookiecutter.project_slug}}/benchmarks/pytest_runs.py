"""Generated test files, and timed pytest runs of them, for the per-test cost benchmark.

Kept apart from per_test_cost.py because both the harness's runs and
pytest-postgresql's (peer.py) go through them.
"""

import re
import subprocess
import time
from pathlib import Path

from {{ cookiecutter.package_name }}.localpg.account import ServerAccount, as_account

# A pytest run's times in seconds: "session" by pytest's clock, "wall" the whole command.
Run = dict[str, float]


def tests_text(count: int) -> str:
    return "1 test" if count == 1 else f"{count} tests"


def write_tests(folder: Path, count: int, template: str, header: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = header + "".join(template.replace("INDEX", str(index)) for index in range(count))
    path = folder / f"test_bench_{count}.py"
    path.write_text(body)
    return path


def run_pytest(
    python: str,
    test_file: Path,
    *options: str,
    cwd: Path,
    env: dict[str, str],
    account: ServerAccount | None = None,
) -> Run:
    command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, str(test_file)]
    started = time.perf_counter()
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        **as_account(account),
    )
    wall = time.perf_counter() - started
    match = re.search(r"(\d+) passed.* in ([\d.]+)s", result.stdout)
    if result.returncode != 0 or match is None:
        raise SystemExit(
            f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return {"session": float(match.group(2)), "wall": wall}
