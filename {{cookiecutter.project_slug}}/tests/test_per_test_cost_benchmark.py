"""The harness benchmark still runs with its documented command and prints every figure."""

import re

import pytest

from benchmarks.per_test_cost import print_report
from tests.benchmark_runs import run_benchmark

# The benchmark starts private clusters, also when TEST_DATABASE_URL is set.
pytestmark = [pytest.mark.harness, pytest.mark.usefixtures("server_bindir")]
ROWS = [
    "harness",
    "harness, first run",
    "harness, migrations changed",
    "harness -n 2",
    "harness, fixture only",
    "isolated_db marker",
]


def test_per_test_cost_benchmark_prints_a_row_per_variant(
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = ["--tests", "3", "--repeat", "1", "--skip-peer"]
    run = run_benchmark("benchmarks.per_test_cost", *options)
    assert [row.variant for row in run.rows] == ROWS
    figures = {row["variant"]: row["figures"] for row in run.document["rows"]}
    # With three tests the slopes are noise; the cold start is not: it runs initdb.
    assert figures["harness, first run"]["startup_ms"] > figures["harness"]["startup_ms"]
    assert figures["harness -n 2"]["wall_s"] > 0
    totals = run.document["summary"]
    assert totals["parallel_over_serial_wall"] > 0
    # The one-test loop: a whole pytest process is slower than importing pytest alone.
    assert totals["one_test_without_database_over_import"] > 1
    assert totals["one_db_session_test_over_import"] > 1
    # A line on stderr as each run starts and ends.
    assert "start harness: floor, 1 test\n" in run.stderr
    assert re.search(r"^done  harness: isolated, 3 tests in \d+\.\d s$", run.stderr, re.M)

    print_report(run.rows, 3, run.document["summary"])
    lines = capsys.readouterr().out.splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("variant"))
    table = [re.split(r" {2,}", line.strip()) for line in lines[header + 1 :]]
    assert [cells[0] for cells in table[: table.index([""])]] == ROWS
    assert re.search(r"-n 2 wall time / serial wall time: \d+\.\d\d", "\n".join(lines))
    assert re.search(r"one test without a database: \d+\.\dx", "\n".join(lines))
    assert re.search(r"one db_session test \(SELECT 1\): \d+\.\dx", "\n".join(lines))
