"""The harness benchmark still runs with its documented command and prints every figure."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# The benchmark starts private clusters, also when TEST_DATABASE_URL is set.
pytestmark = [pytest.mark.harness, pytest.mark.usefixtures("server_bindir")]
BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "per_test_cost.py"
ROWS = [
    "harness",
    "harness, first run",
    "harness, migrations changed",
    "harness -n 2",
    "harness, fixture only",
    "isolated_db marker",
]


def test_per_test_cost_benchmark_prints_a_row_per_variant() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--tests", "3", "--repeat", "1", "--skip-peer"],
        env={key: value for key, value in os.environ.items() if key != "TEST_DATABASE_URL"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("variant"))
    rows = [re.split(r" {2,}", line.strip()) for line in lines[header + 1 :]]
    table = {cells[0]: cells[1:] for cells in rows[: rows.index([""])]}
    assert list(table) == ROWS
    figures = {name: [float(cell) for cell in cells] for name, cells in table.items()}
    # With three tests the slopes are noise; the cold start is not: it runs initdb.
    assert figures["harness, first run"][0] > figures["harness"][0]
    assert figures["harness -n 2"][0] > 0
    assert re.search(r"-n 2 wall time / serial wall time: \d+\.\d\d", result.stdout)
