"""Benchmark the test harness against no database and against pytest-postgresql.

    uv run python benchmarks/per_test_cost.py               # 200 tests per variant
    uv run python benchmarks/per_test_cost.py --tests 500 --repeat 5 --skip-peer

Every variant runs the same generated tests, each an INSERT, a commit and a SELECT
through a session (the floor runs empty tests). Per-test overhead is the slope
between a 1-test and an N-test run, minus the floor's slope; start-up is the
1-test run minus the floor's. Times come from pytest's own session clock, except
"wall", which is the whole command; each is the best of --repeat runs (one run for
pytest-postgresql's N tests, which take a minute). All figures are from one
invocation on one machine: compare the ratios, not the absolute numbers, across machines.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from {{ cookiecutter.package_name }}.db.migrations import PROJECT_ROOT
from {{ cookiecutter.package_name }}.localpg.account import (
    ServerAccount,
    as_account,
    hand_over,
    is_reachable,
    server_account,
)
from {{ cookiecutter.package_name }}.localpg.binaries import find_bindir
from {{ cookiecutter.package_name }}.localpg.cache import base_key, cache_key
from {{ cookiecutter.package_name }}.localpg.scratch import locked, scratch_root

HARNESS_TEST = """
async def test_INDEX(db_session):
    await db_session.execute(text("INSERT INTO alembic_version VALUES (:v)"), dict(v="bINDEX"))
    await db_session.commit()
    assert await db_session.scalar(text("SELECT count(*) FROM alembic_version")) >= 1
"""
PEER_TEST = """
def test_INDEX(postgresql):
    with postgresql.cursor() as cursor:
        cursor.execute("INSERT INTO alembic_version VALUES (%s)", ("bINDEX",))
        postgresql.commit()
        cursor.execute("SELECT count(*) FROM alembic_version")
        assert cursor.fetchone()[0] >= 1
"""
BARE_TEST = "\nasync def test_INDEX(db_session):\n    assert db_session is not None\n"
PEER_BARE_TEST = "\ndef test_INDEX(postgresql):\n    assert postgresql is not None\n"
FLOOR_TEST = "\nasync def test_INDEX():\n    assert INDEX >= 0\n"
PEER_FLOOR_TEST = "\ndef test_INDEX():\n    assert INDEX >= 0\n"
PEER_CONFTEST = """
from pathlib import Path
from pytest_postgresql import factories

postgresql_proc = factories.postgresql_proc(load=[Path(__file__).parent / "schema.sql"])
postgresql = factories.postgresql("postgresql_proc")
"""
PEER_SCHEMA = "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);\n"
PEER_PACKAGES = ["pytest", "pytest-postgresql", "psycopg[binary]"]


@dataclass
class Run:
    session: float
    wall: float


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
    return Run(session=float(match.group(2)), wall=wall)


def best_of(times: int, run_once: Callable[[], Run]) -> Run:
    """The fastest of `times` runs: noise on a shared machine only ever adds time."""
    runs = [run_once() for _ in range(times)]
    return Run(session=min(run.session for run in runs), wall=min(run.wall for run in runs))


def harness_runs(work: Path, count: int, repeat: int) -> dict[str, Run]:
    python = sys.executable
    project = [
        "-p",
        "tests.conftest",
        f"--rootdir={PROJECT_ROOT}",
        "-c",
        str(PROJECT_ROOT / "pyproject.toml"),
    ]
    env = {key: value for key, value in os.environ.items() if key != "TEST_DATABASE_URL"}
    header = "import pytest\nfrom sqlalchemy import text\n"
    isolated_test = HARNESS_TEST.replace("async def", "@pytest.mark.isolated_db\nasync def")

    def measure(
        name: str, size: int, template: str, *options: str, clear: tuple[str, ...] = ()
    ) -> Run:
        test_file = write_tests(work / name, size, template, header)

        def run_once() -> Run:
            # Under the lock: another session may be copying this cache right now.
            with locked(scratch_root()):
                for cache in clear:
                    shutil.rmtree(scratch_root() / cache, ignore_errors=True)
            return run_pytest(python, test_file, *project, *options, cwd=PROJECT_ROOT, env=env)

        return best_of(repeat, run_once)

    runs = {
        "floor 1": measure("floor", 1, FLOOR_TEST),
        "floor N": measure("floor", count, FLOOR_TEST),
    }
    bindir = find_bindir()
    base, migrated = (
        f"base-{base_key(bindir)}",
        f"cache-{cache_key(bindir, PROJECT_ROOT / 'migrations')}",
    )
    runs["first 1"] = measure("first", 1, HARNESS_TEST, clear=(base, migrated))
    runs["changed 1"] = measure("changed", 1, HARNESS_TEST, clear=(migrated,))
    runs["harness 1"] = measure("harness", 1, HARNESS_TEST)
    runs["harness N"] = measure("harness", count, HARNESS_TEST)
    runs["parallel N"] = measure("parallel", count, HARNESS_TEST, "-n", "2")
    runs["bare 1"] = measure("bare", 1, BARE_TEST)
    runs["bare N"] = measure("bare", count, BARE_TEST)
    runs["isolated 1"] = measure("isolated", 1, isolated_test)
    runs["isolated N"] = measure("isolated", count, isolated_test)
    return runs


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
    subprocess.run([uv, "venv", "--quiet", "--python", python, str(venv)], check=True)
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), *PEER_PACKAGES],
        check=True,
    )
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


@dataclass
class Row:
    name: str
    startup_ms: float | None
    per_test_ms: float | None
    wall_s: float | None
    # The pytest-postgresql rows doing the same work, for the ratio column.
    versus: tuple[str, ...] = ()


def report(runs: dict[str, Run], count: int, peer_note: str) -> None:
    def startup(variant: str, floor: str = "floor") -> float:
        return (runs[f"{variant} 1"].session - runs[f"{floor} 1"].session) * 1000

    def per_test(variant: str, floor: str = "floor") -> float:
        def slope(name: str) -> float:
            return (runs[f"{name} N"].session - runs[f"{name} 1"].session) / (count - 1)

        return (slope(variant) - slope(floor)) * 1000

    def row(name: str, variant: str, floor: str = "floor", versus: tuple[str, ...] = ()) -> Row:
        if f"{variant} N" not in runs:
            return Row(name, None, None, None)
        wall = runs[f"{variant} N"].wall
        return Row(name, startup(variant, floor), per_test(variant, floor), wall, versus)

    peers = ("pytest-postgresql", "pytest-postgresql, tmpfs")
    rows = [
        row("harness", "harness", versus=peers),
        Row("harness, first run", startup("first"), None, None),
        Row("harness, migrations changed", startup("changed"), None, None),
        Row("harness -n 2", None, None, runs["parallel N"].wall),
        row("harness, fixture only", "bare", versus=("pytest-postgresql, fixture only",)),
        row("isolated_db marker", "isolated", versus=peers),
        row("pytest-postgresql", "peer", "peer floor"),
        row("pytest-postgresql, tmpfs", "peer tmpfs", "peer floor"),
        row("pytest-postgresql, fixture only", "peer bare", "peer floor"),
    ]
    by_name = {item.name: item for item in rows}

    def ratio(item: Row) -> str:
        others = [by_name[name].per_test_ms for name in item.versus]
        if item.per_test_ms is None or item.per_test_ms <= 0 or None in others:
            return ""
        return " / ".join(f"{other / item.per_test_ms:.1f}x" for other in others if other)

    def number(value: float | None, digits: int) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    print(f"\n{count} tests per variant, each an INSERT, a commit and a SELECT unless marked")
    print("fixture only; start-up and per-test cost are above the same environment's floor\n")
    print(f"{'variant':<32}{'start-up ms':>12}{'per test ms':>13}{'wall s':>9}  less than peer")
    for item in rows:
        if item.wall_s is None and item.startup_ms is None:
            continue
        print(
            f"{item.name:<32}{number(item.startup_ms, 0):>12}{number(item.per_test_ms, 2):>13}"
            f"{number(item.wall_s, 2):>9}  {ratio(item)}"
        )
    parallel = runs["parallel N"].wall / runs["harness N"].wall
    floor = (runs["floor N"].session - runs["floor 1"].session) / (count - 1) * 1000
    print(f"\n-n 2 wall time / serial wall time: {parallel:.2f}")
    print(f"floor (pytest-asyncio, no database): {floor:.2f} ms per test; {peer_note}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tests", type=int, default=200, help="tests per variant (default 200)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per measurement; the best counts (default 3)"
    )
    parser.add_argument(
        "--skip-peer", action="store_true", help="do not install and run pytest-postgresql"
    )
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="harness-benchmark-") as scratch:
        work = Path(scratch)
        work.chmod(0o755)
        runs = harness_runs(work, arguments.tests, arguments.repeat)
        peer_note = "pytest-postgresql skipped (--skip-peer)"
        if not arguments.skip_peer:
            peer, peer_note = peer_runs(work, arguments.tests, arguments.repeat)
            runs |= peer
        report(runs, arguments.tests, peer_note)


if __name__ == "__main__":
    main()
