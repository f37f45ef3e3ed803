"""Benchmark the test harness against no database and against pytest-postgresql.

    uv run python benchmarks/harness.py               # 200 tests per variant
    uv run python benchmarks/harness.py --tests 500 --skip-peer

Every variant runs the same generated tests, each an INSERT, a commit and a SELECT
through a session (the floor runs empty tests). Per-test overhead is the slope
between a 1-test and an N-test run, minus the floor's slope; start-up is the
1-test run minus the floor's. Times come from pytest's own session clock, except
"wall", which is the whole command. All figures are from one run on one machine:
compare the ratios, not the absolute numbers, across machines.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from {{ cookiecutter.package_name }}.db.local import (  # noqa: E402
    ServerAccount,
    as_account,
    find_bindir,
    hand_over,
    is_reachable,
    server_account,
)
from tests.harness.postgres import cache_key, scratch_root  # noqa: E402

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


def harness_runs(work: Path, count: int) -> dict[str, Run]:
    python = sys.executable
    project = [
        "-p",
        "tests.conftest",
        f"--rootdir={PROJECT}",
        "-c",
        str(PROJECT / "pyproject.toml"),
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_XDIST")}
    env.pop("TEST_DATABASE_URL", None)
    header = "import pytest\nfrom sqlalchemy import text\n"
    isolated_test = HARNESS_TEST.replace("async def", "@pytest.mark.isolated_db\nasync def")

    def measure(name: str, size: int, template: str, *options: str) -> Run:
        test_file = write_tests(work / name, size, template, header)
        return run_pytest(python, test_file, *project, *options, cwd=PROJECT, env=env)

    runs = {
        "floor 1": measure("floor", 1, FLOOR_TEST),
        "floor N": measure("floor", count, FLOOR_TEST),
    }
    shutil.rmtree(scratch_root() / f"cache-{cache_key(find_bindir())}", ignore_errors=True)
    runs["cold 1"] = measure("cold", 1, HARNESS_TEST)
    runs["harness 1"] = measure("harness", 1, HARNESS_TEST)
    runs["harness N"] = measure("harness", count, HARNESS_TEST)
    runs["parallel N"] = measure("parallel", count, HARNESS_TEST, "-n", "2")
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


def peer_runs(work: Path, count: int) -> tuple[dict[str, Run], str]:
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

    def measure(name: str, size: int, template: str) -> Run:
        test_file = write_tests(tests / name, size, template, "")
        hand_over(tests / name, account)
        return run_pytest(python_in_venv, test_file, *options, cwd=tests, env=env, account=account)

    results = {
        "peer floor 1": measure("floor", 1, PEER_FLOOR_TEST),
        "peer floor N": measure("floor", count, PEER_FLOOR_TEST),
        "peer 1": measure("peer", 1, PEER_TEST),
        "peer N": measure("peer", count, PEER_TEST),
    }
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


def report(runs: dict[str, Run], count: int, peer_note: str) -> None:
    def startup(variant: str, floor: str = "floor") -> float:
        return (runs[f"{variant} 1"].session - runs[f"{floor} 1"].session) * 1000

    def per_test(variant: str, floor: str = "floor") -> float:
        def slope(name: str) -> float:
            return (runs[f"{name} N"].session - runs[f"{name} 1"].session) / (count - 1)

        return (slope(variant) - slope(floor)) * 1000

    peer = per_test("peer", "peer floor") if "peer N" in runs else None

    def versus_peer(overhead: float) -> str:
        return f"{peer / overhead:.1f}x less" if peer is not None and overhead > 0 else ""

    rows = [
        ("harness", f"{startup('harness'):.0f}", per_test("harness"), runs["harness N"].wall),
        ("harness, cold cache", f"{startup('cold'):.0f}", None, None),
        ("harness -n 2", "", None, runs["parallel N"].wall),
        (
            "isolated_db marker",
            f"{startup('isolated'):.0f}",
            per_test("isolated"),
            runs["isolated N"].wall,
        ),
    ]
    if peer is not None:
        rows.append(
            ("pytest-postgresql", f"{startup('peer', 'peer floor'):.0f}", peer, runs["peer N"].wall)
        )

    print(f"\n{count} tests per variant; start-up and per-test cost above the floor")
    heading = f"{'variant':<22}{'start-up ms':>12}{'per test ms':>13}{'wall s':>9}"
    print(f"\n{heading}  vs pytest-postgresql")
    for name, started, overhead, wall in rows:
        overhead_text = f"{overhead:.2f}" if overhead is not None else ""
        wall_text = f"{wall:.2f}" if wall is not None else ""
        ratio = (
            versus_peer(overhead) if overhead is not None and name != "pytest-postgresql" else ""
        )
        print(f"{name:<22}{started:>12}{overhead_text:>13}{wall_text:>9}  {ratio}")
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
        "--skip-peer", action="store_true", help="do not install and run pytest-postgresql"
    )
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="harness-benchmark-") as scratch:
        work = Path(scratch)
        work.chmod(0o755)
        runs = harness_runs(work, arguments.tests)
        peer_note = "pytest-postgresql skipped (--skip-peer)"
        if not arguments.skip_peer:
            peer, peer_note = peer_runs(work, arguments.tests)
            runs |= peer
        report(runs, arguments.tests, peer_note)


if __name__ == "__main__":
    main()
