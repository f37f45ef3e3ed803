"""Run a benchmark as its documentation says, with --json, and read what it printed.

A benchmark starts PostgreSQL clusters of its own, so TEST_DATABASE_URL is left out
of its environment: the pytest runs it measures would use that server instead.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.reporting import Row

PROJECT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BenchmarkRun:
    """The JSON document a benchmark printed on stdout, and its progress lines on stderr."""

    document: dict[str, Any]
    stderr: str

    @property
    def rows(self) -> list[Row]:
        return [Row(**row) for row in self.document["rows"]]


def run_benchmark(module: str, *options: str) -> BenchmarkRun:
    """`python -m <module> <options> --json` in the project; fails the test if it fails."""
    result = subprocess.run(
        [sys.executable, "-m", module, *options, "--json"],
        cwd=PROJECT,
        env={key: value for key, value in os.environ.items() if key != "TEST_DATABASE_URL"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return BenchmarkRun(json.loads(result.stdout), result.stderr)
