"""Benchmark the test harness against no database and against pytest-postgresql.

    uv run python -m benchmarks.per_test_cost               # 200 tests per variant
    uv run python -m benchmarks.per_test_cost --tests 500 --repeat 5 --skip-peer
    uv run python -m benchmarks.per_test_cost --json        # one JSON document on stdout
    uv run python -m benchmarks.per_test_cost --skip-peer --suite   # also this project's suite

Every variant runs the same generated tests, each an INSERT into a temporary table
of its own, a commit and a SELECT through a session (the floor runs empty tests): the
harness's tests run as the service's role, which may not create tables. Per-test
overhead is the slope between a 1-test and an N-test run, minus the floor's slope;
start-up is the 1-test run minus the floor's. Times come from pytest's own session
clock, except "wall", which is the whole command; each is the best of --repeat runs
(one run for pytest-postgresql's N tests, which take a minute). All figures are from one
invocation on one machine: compare the ratios, not the absolute numbers, across machines.

The one-test loop, what a developer waits for after each edit, is measured in whole
processes with bytecode written, as ratios to `python -c "import pytest"`: one test
that needs no database, one `db_session` test doing SELECT 1, and the harness's own
cost per test over a no-database test's. With --suite, the project's own suite is timed
against a file of as many no-database tests as --tests.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from {{ cookiecutter.package_name }}.db.migrations import PROJECT_ROOT
from {{ cookiecutter.package_name }}.localpg.binaries import find_bindir
from {{ cookiecutter.package_name }}.localpg.cache import base_key, cache_key
from {{ cookiecutter.package_name }}.localpg.cluster import APP_ROLE
from {{ cookiecutter.package_name }}.localpg.scratch import locked, scratch_root
from benchmarks.peer import peer_runs
from benchmarks.pytest_runs import Run, run_pytest, tests_text, write_tests
from benchmarks.reporting import (
    Column,
    Figure,
    Row,
    benchmark_parser,
    best_of,
    print_json,
    print_table,
    progress,
)

HARNESS_TEST = """
async def test_INDEX(db_session):
    await db_session.execute(text("CREATE TEMPORARY TABLE probe (v text)"))
    await db_session.execute(text("INSERT INTO probe VALUES (:v)"), dict(v="bINDEX"))
    await db_session.commit()
    assert await db_session.scalar(text("SELECT count(*) FROM probe")) >= 1
"""
BARE_TEST = "\nasync def test_INDEX(db_session):\n    assert db_session is not None\n"
SELECT_TEST = """
async def test_INDEX(db_session):
    assert await db_session.scalar(text("SELECT 1")) == 1
"""
FLOOR_TEST = "\nasync def test_INDEX():\n    assert INDEX >= 0\n"
# What each generated test does, the rows' scenario.
FULL_TEST = "temporary table, INSERT, commit, SELECT"
FIXTURE_ONLY = "fixture only"


def benchmark_environment() -> dict[str, str]:
    # Bytecode written, as on a developer's machine: some CI machines turn it off.
    unset = {"TEST_DATABASE_URL", "PYTHONDONTWRITEBYTECODE"}
    return {key: value for key, value in os.environ.items() if key not in unset}


def wall_time(command: list[str], repeat: int, cwd: Path = PROJECT_ROOT) -> float:
    """The fastest of `repeat` runs of `command`, in seconds, which must succeed."""

    def once() -> Run:
        started = time.perf_counter()
        result = subprocess.run(
            command, cwd=cwd, env=benchmark_environment(), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}")
        return {"wall": time.perf_counter() - started}

    return best_of(repeat, once)["wall"]


def harness_runs(work: Path, count: int, repeat: int) -> dict[str, Run]:
    python = sys.executable
    project = [
        "-p",
        "tests.conftest",
        f"--rootdir={PROJECT_ROOT}",
        "-c",
        str(PROJECT_ROOT / "pyproject.toml"),
    ]
    env = benchmark_environment()
    header = "import pytest\nfrom sqlalchemy import text\n"
    isolated_test = HARNESS_TEST.replace("async def", "@pytest.mark.isolated_db\nasync def")

    def measure(
        name: str, size: int, template: str, *options: str, clear: tuple[str, ...] = ()
    ) -> Run:
        # The floor's tests import nothing: a test that needs no database pays for none.
        test_file = write_tests(work / name, size, template, "" if name == "floor" else header)

        def run_once() -> Run:
            # Under the lock: another session may be copying this cache right now.
            with locked(scratch_root()):
                for cache in clear:
                    shutil.rmtree(scratch_root() / cache, ignore_errors=True)
            return run_pytest(python, test_file, *project, *options, cwd=PROJECT_ROOT, env=env)

        with progress(f"harness: {name}, {tests_text(size)}"):
            return best_of(repeat, run_once)

    runs = {
        "floor 1": measure("floor", 1, FLOOR_TEST),
        "floor N": measure("floor", count, FLOOR_TEST),
    }
    bindir = find_bindir()
    base, migrated = (
        f"base-{base_key(bindir)}",
        f"cache-{cache_key(bindir, PROJECT_ROOT / 'migrations', APP_ROLE)}",
    )
    runs["first 1"] = measure("first", 1, HARNESS_TEST, clear=(base, migrated))
    runs["changed 1"] = measure("changed", 1, HARNESS_TEST, clear=(migrated,))
    runs["harness 1"] = measure("harness", 1, HARNESS_TEST)
    runs["harness N"] = measure("harness", count, HARNESS_TEST)
    runs["parallel N"] = measure("parallel", count, HARNESS_TEST, "-n", "2")
    runs["select 1"] = measure("select", 1, SELECT_TEST)
    runs["select N"] = measure("select", count, SELECT_TEST)
    runs["bare 1"] = measure("bare", 1, BARE_TEST)
    runs["bare N"] = measure("bare", count, BARE_TEST)
    runs["isolated 1"] = measure("isolated", 1, isolated_test)
    runs["isolated N"] = measure("isolated", count, isolated_test)
    return runs


def report_rows(runs: dict[str, Run], count: int) -> list[Row]:
    """A row per variant that ran, its ratios the per-test cost of its peers over its own."""

    def startup(variant: str, floor: str = "floor") -> float:
        return (runs[f"{variant} 1"]["session"] - runs[f"{floor} 1"]["session"]) * 1000

    def per_test(variant: str, floor: str = "floor") -> float:
        def slope(name: str) -> float:
            return (runs[f"{name} N"]["session"] - runs[f"{name} 1"]["session"]) / (count - 1)

        return (slope(variant) - slope(floor)) * 1000

    def row(name: str, variant: str, floor: str = "floor", work: str = FULL_TEST) -> Row | None:
        if f"{variant} N" not in runs:
            return None
        figures: dict[str, Figure] = {
            "startup_ms": startup(variant, floor),
            "per_test_ms": per_test(variant, floor),
            "wall_s": runs[f"{variant} N"]["wall"],
        }
        return Row(work, name, figures)

    def only(name: str, **figures: Figure) -> Row:
        """A row with the one figure its runs give."""
        return Row(
            FULL_TEST, name, {"startup_ms": None, "per_test_ms": None, "wall_s": None, **figures}
        )

    rows = [
        row("harness", "harness"),
        only("harness, first run", startup_ms=startup("first")),
        only("harness, migrations changed", startup_ms=startup("changed")),
        only("harness -n 2", wall_s=runs["parallel N"]["wall"]),
        row("harness, fixture only", "bare", work=FIXTURE_ONLY),
        row("isolated_db marker", "isolated"),
        row("pytest-postgresql", "peer", "peer floor"),
        row("pytest-postgresql, tmpfs", "peer tmpfs", "peer floor"),
        row("pytest-postgresql, fixture only", "peer bare", "peer floor", FIXTURE_ONLY),
    ]
    ran = [item for item in rows if item is not None]
    peers = ("pytest-postgresql", "pytest-postgresql, tmpfs")
    # The pytest-postgresql rows doing the same work, for the ratio column.
    versus = {
        "harness": peers,
        "harness, fixture only": ("pytest-postgresql, fixture only",),
        "isolated_db marker": peers,
    }
    per_test_ms = {
        item.variant: value
        for item in ran
        if isinstance(value := item.figures["per_test_ms"], float)
    }
    for item in ran:
        own, others = per_test_ms.get(item.variant, 0.0), versus.get(item.variant, ())
        if own > 0 and all(name in per_test_ms for name in others):
            item.ratios = {name: per_test_ms[name] / own for name in others if per_test_ms[name]}
    return ran


def number(value: Figure, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


COLUMNS = [
    Column("variant", lambda row: row.variant, "<"),
    Column("start-up ms", lambda row: number(row.figures["startup_ms"], 0)),
    Column("per test ms", lambda row: number(row.figures["per_test_ms"], 2)),
    Column("wall s", lambda row: number(row.figures["wall_s"], 2)),
    Column("less than peer", lambda row: " / ".join(f"{r:.1f}x" for r in row.ratios.values()), "<"),
]


def summary(
    runs: dict[str, Run], count: int, peer_note: str, import_pytest: float
) -> dict[str, Figure]:
    def slope(name: str) -> float:
        return (runs[f"{name} N"]["session"] - runs[f"{name} 1"]["session"]) / (count - 1)

    floor = slope("floor")
    harness_over_test = (slope("select") - floor) / floor if floor > 0 else None
    totals: dict[str, Figure] = {
        "parallel_over_serial_wall": runs["parallel N"]["wall"] / runs["harness N"]["wall"],
        "floor_ms_per_test": floor * 1000,
        "import_pytest_s": import_pytest,
        "one_test_without_database_over_import": runs["floor 1"]["wall"] / import_pytest,
        "one_db_session_test_over_import": runs["select 1"]["wall"] / import_pytest,
        "harness_per_test_over_test_without_database": harness_over_test,
        "peer": peer_note,
    }
    if "suite" in runs:
        totals["suite_s"] = runs["suite"]["wall"]
        totals["suite_over_no_database_file"] = runs["suite"]["wall"] / runs["floor N"]["wall"]
    return totals


def ratio(value: Figure) -> str:
    return f"{value:.1f}x" if isinstance(value, float) else "n/a (slopes too small)"


def print_report(rows: list[Row], count: int, totals: dict[str, Figure]) -> None:
    print(
        f"\n{count} tests per variant, each a temporary table, an INSERT, a commit and a SELECT "
        "unless marked"
    )
    print("fixture only; start-up and per-test cost are above the same environment's floor\n")
    print_table(rows, COLUMNS)
    print(f"\n-n 2 wall time / serial wall time: {totals['parallel_over_serial_wall']:.2f}")
    print(
        f"floor (pytest-asyncio, no database): {totals['floor_ms_per_test']:.2f} ms per test; "
        f"{totals['peer']}"
    )
    print(
        f"\none-test loop, whole processes, as multiples of `import pytest` "
        f"({totals['import_pytest_s']:.2f} s):"
    )
    without_database = totals["one_test_without_database_over_import"]
    print(f"  one test without a database: {ratio(without_database)}")
    print(f"  one db_session test (SELECT 1): {ratio(totals['one_db_session_test_over_import'])}")
    print(
        "  harness cost per test / a no-database test's own cost: "
        f"{ratio(totals['harness_per_test_over_test_without_database'])}"
    )
    if "suite_s" in totals:
        print(
            f"this project's suite: {totals['suite_s']:.1f} s, "
            f"{ratio(totals['suite_over_no_database_file'])} a file of {count} no-database tests"
        )


def main() -> None:
    parser = benchmark_parser("benchmarks.per_test_cost", __doc__, "measurement")
    parser.add_argument("--tests", type=int, default=200, help="tests per variant (default 200)")
    parser.add_argument(
        "--skip-peer", action="store_true", help="do not install and run pytest-postgresql"
    )
    parser.add_argument(
        "--suite", action="store_true", help="also time this project's own suite, once"
    )
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="harness-benchmark-") as scratch:
        work = Path(scratch)
        work.chmod(0o755)
        runs = harness_runs(work, arguments.tests, arguments.repeat)
        import_pytest = wall_time([sys.executable, "-c", "import pytest"], arguments.repeat)
        if arguments.suite:
            with progress("this project's suite"):
                suite = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
                runs["suite"] = {"wall": wall_time(suite, 1)}
        peer_note = "pytest-postgresql skipped (--skip-peer)"
        if not arguments.skip_peer:
            peer, peer_note = peer_runs(work, arguments.tests, arguments.repeat)
            runs |= peer
    rows = report_rows(runs, arguments.tests)
    totals = summary(runs, arguments.tests, peer_note, import_pytest)
    if arguments.json:
        names = ("tests", "repeat", "skip_peer", "suite")
        settings = {key: getattr(arguments, key) for key in names}
        print_json("per_test_cost", settings, rows, totals)
    else:
        print_report(rows, arguments.tests, totals)


if __name__ == "__main__":
    main()
