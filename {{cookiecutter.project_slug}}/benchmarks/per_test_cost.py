"""Benchmark the test harness against no database and against pytest-postgresql.

    uv run python -m benchmarks.per_test_cost               # 200 tests per variant
    uv run python -m benchmarks.per_test_cost --tests 500 --repeat 5 --skip-peer
    uv run python -m benchmarks.per_test_cost --json        # one JSON document on stdout

Every variant runs the same generated tests, each an INSERT, a commit and a SELECT
through a session (the floor runs empty tests). Per-test overhead is the slope
between a 1-test and an N-test run, minus the floor's slope; start-up is the
1-test run minus the floor's. Times come from pytest's own session clock, except
"wall", which is the whole command; each is the best of --repeat runs (one run for
pytest-postgresql's N tests, which take a minute). All figures are from one
invocation on one machine: compare the ratios, not the absolute numbers, across machines.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from {{ cookiecutter.package_name }}.db.migrations import PROJECT_ROOT
from {{ cookiecutter.package_name }}.localpg.binaries import find_bindir
from {{ cookiecutter.package_name }}.localpg.cache import base_key, cache_key
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
    await db_session.execute(text("INSERT INTO alembic_version VALUES (:v)"), dict(v="bINDEX"))
    await db_session.commit()
    assert await db_session.scalar(text("SELECT count(*) FROM alembic_version")) >= 1
"""
BARE_TEST = "\nasync def test_INDEX(db_session):\n    assert db_session is not None\n"
FLOOR_TEST = "\nasync def test_INDEX():\n    assert INDEX >= 0\n"
# What each generated test does, the rows' scenario.
FULL_TEST = "INSERT, commit, SELECT"
FIXTURE_ONLY = "fixture only"


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

        with progress(f"harness: {name}, {tests_text(size)}"):
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


def summary(runs: dict[str, Run], count: int, peer_note: str) -> dict[str, Figure]:
    floor = (runs["floor N"]["session"] - runs["floor 1"]["session"]) / (count - 1) * 1000
    return {
        "parallel_over_serial_wall": runs["parallel N"]["wall"] / runs["harness N"]["wall"],
        "floor_ms_per_test": floor,
        "peer": peer_note,
    }


def print_report(rows: list[Row], count: int, totals: dict[str, Figure]) -> None:
    print(f"\n{count} tests per variant, each an INSERT, a commit and a SELECT unless marked")
    print("fixture only; start-up and per-test cost are above the same environment's floor\n")
    print_table(rows, COLUMNS)
    print(f"\n-n 2 wall time / serial wall time: {totals['parallel_over_serial_wall']:.2f}")
    print(
        f"floor (pytest-asyncio, no database): {totals['floor_ms_per_test']:.2f} ms per test; "
        f"{totals['peer']}"
    )


def main() -> None:
    parser = benchmark_parser("benchmarks.per_test_cost", __doc__, "measurement")
    parser.add_argument("--tests", type=int, default=200, help="tests per variant (default 200)")
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
    rows, totals = report_rows(runs, arguments.tests), summary(runs, arguments.tests, peer_note)
    if arguments.json:
        settings = {key: getattr(arguments, key) for key in ("tests", "repeat", "skip_peer")}
        print_json("per_test_cost", settings, rows, totals)
    else:
        print_report(rows, arguments.tests, totals)


if __name__ == "__main__":
    main()
