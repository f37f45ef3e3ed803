"""pytest-postgresql, run as its documentation says: what the harness is measured against.

It goes in a throwaway venv of its own, and runs as the server account when we
are root, as PostgreSQL will not run as root.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from {{ cookiecutter.package_name }}.localpg.account import hand_over, is_reachable, server_account
from {{ cookiecutter.package_name }}.localpg.binaries import find_bindir
from benchmarks.pytest_runs import Run, run_pytest, tests_text, write_tests
from benchmarks.reporting import best_of, progress

PEER_TEST = """
def test_INDEX(postgresql):
    with postgresql.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE probe (v text)")
        cursor.execute("INSERT INTO probe VALUES (%s)", ("bINDEX",))
        postgresql.commit()
        cursor.execute("SELECT count(*) FROM probe")
        assert cursor.fetchone()[0] >= 1
"""
PEER_BARE_TEST = "\ndef test_INDEX(postgresql):\n    assert postgresql is not None\n"
PEER_FLOOR_TEST = "\ndef test_INDEX():\n    assert INDEX >= 0\n"
PEER_CONFTEST = """
from pathlib import Path
from pytest_postgresql import factories

postgresql_proc = factories.postgresql_proc(load=[Path(__file__).parent / "schema.sql"])
postgresql = factories.postgresql("postgresql_proc")
"""
PEER_SCHEMA = "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);\n"
PEER_PACKAGES = ["pytest", "pytest-postgresql", "psycopg[binary]"]


def reachable_python() -> str | None:
    """A Python interpreter the unprivileged account can run (pyenv under /root is not)."""
    account = server_account()
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        path = Path(candidate).resolve()
        if path.is_file() and is_reachable(path, account):
            return str(path)
    return None


def peer_runs(work: Path, count: int, repeat: int) -> tuple[dict[str, Run], str]:
    """pytest-postgresql as documented, in a throwaway venv; unprivileged when we are root."""
    account = server_account()
    python = reachable_python()
    # `uv run` tells its children where uv is.
    uv = os.environ.get("UV") or shutil.which("uv")
    if python is None or uv is None:
        return {}, "pytest-postgresql skipped: needs uv and a Python the server account can run"
    folder = Path(tempfile.mkdtemp(prefix="peer-", dir=work))
    folder.chmod(0o755)
    venv = folder / "venv"
    make_venv = [uv, "venv", "--quiet", "--python", python, str(venv)]
    install = [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python")]
    # Whatever uv says goes to stderr: stdout is for the results.
    with progress("install pytest-postgresql"):
        subprocess.run(make_venv, check=True, stdout=sys.stderr)
        subprocess.run([*install, *PEER_PACKAGES], check=True, stdout=sys.stderr)
    tests = folder / "tests"
    tests.mkdir()
    (tests / "conftest.py").write_text(PEER_CONFTEST)
    (tests / "schema.sql").write_text(PEER_SCHEMA)
    hand_over(folder, account)
    options = [f"--postgresql-exec={find_bindir() / 'pg_ctl'}", f"--rootdir={tests}"]
    env = {"PATH": os.environ["PATH"], "HOME": str(folder)}
    python_in_venv = str(venv / "bin" / "python")

    def measure(name: str, size: int, template: str, *extra: str) -> Run:
        test_file = write_tests(tests / name, size, template, "")
        hand_over(tests / name, account)
        with progress(f"pytest-postgresql: {name}, {tests_text(size)}"):
            return best_of(
                repeat if size == 1 else 1,
                lambda: run_pytest(
                    python_in_venv, test_file, *options, *extra, cwd=tests, env=env, account=account
                ),
            )

    # Its documented default keeps the cluster in the temp dir; on tmpfs it is faster.
    tmpfs = f"--basetemp={Path('/dev/shm') / folder.name}"
    results = {
        "peer floor 1": measure("floor", 1, PEER_FLOOR_TEST),
        "peer floor N": measure("floor", count, PEER_FLOOR_TEST),
        "peer 1": measure("peer", 1, PEER_TEST),
        "peer N": measure("peer", count, PEER_TEST),
    }
    if Path("/dev/shm").is_dir():
        results["peer tmpfs 1"] = measure("peer-tmpfs", 1, PEER_TEST, tmpfs)
        results["peer tmpfs N"] = measure("peer-tmpfs", count, PEER_TEST, tmpfs)
        results["peer bare 1"] = measure("peer-bare", 1, PEER_BARE_TEST, tmpfs)
        results["peer bare N"] = measure("peer-bare", count, PEER_BARE_TEST, tmpfs)
        shutil.rmtree(Path("/dev/shm") / folder.name, ignore_errors=True)
    runner = f"as {account.name}" if account else "as the current user"
    return results, f"pytest-postgresql {peer_version(python_in_venv)}, run {runner}"


def peer_version(python: str) -> str:
    result = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('pytest-postgresql'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip()
