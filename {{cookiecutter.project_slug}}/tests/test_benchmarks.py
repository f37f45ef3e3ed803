"""The data-layer benchmark still runs: a tiny workload, every scenario, sane figures."""

import math

import pytest

from benchmarks.data_layer.runner import COLUMNS
from benchmarks.reporting import print_table
from tests.benchmark_runs import run_benchmark

# The benchmark starts a cluster of its own, also when TEST_DATABASE_URL is set.
pytestmark = [pytest.mark.harness, pytest.mark.usefixtures("server_bindir")]


def test_data_layer_benchmark_runs_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    # A scale that still takes the insert past add_many's COPY threshold.
    run = run_benchmark("benchmarks.data_layer", "--scale", "0.012", "--repeat", "1")
    rows = run.rows
    scenarios = {row.scenario for row in rows}
    # insert, gets, requests, telemetry, list, replicas, and one per level of concurrency.
    assert len(scenarios) == 6 + len(run.document["settings"]["concurrency"])
    for row in rows:
        assert isinstance(row.figures["seconds"], float)
        assert row.figures["seconds"] > 0
        assert len(row.ratios) == 1
        assert all(math.isfinite(ratio) for ratio in row.ratios.values())
    listing = {row.variant: row.figures for row in rows if row.scenario.startswith("list")}
    assert listing["repository list_with_posts (selectinload)"]["queries"] == 2
    routed = {row.variant: row.figures for row in rows if row.scenario.endswith("routed")}
    assert list(routed) == [
        "primary: read-only session + get",
        "routed to the replica",
        "routed, replay paused: primary",
    ]
    assert all(isinstance(figures["cpu_of_primary"], float) for figures in routed.values())
    telemetry = {row.variant: row.figures for row in rows if row.scenario.endswith("telemetry")}
    assert list(telemetry) == [
        "off",
        "configured, idle",
        "metrics on",
        "metrics on, tracing 100% (in memory)",
    ]
    assert telemetry["off"]["cpu_of_off"] == 1.0
    assert all(isinstance(figures["cpu_of_off"], float) for figures in telemetry.values())
    # A line on stderr as each scenario starts and ends, the seeding of the reads too.
    started, finished = progress_lines(run.stderr)
    assert started == finished
    assert len(finished) == len(scenarios) + 1

    print_table(rows, COLUMNS)
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["scenario", "variant", "time", "ratio", "details"]
    assert len(table) == 1 + len(rows)


def progress_lines(stderr: str) -> tuple[list[str], list[str]]:
    lines = stderr.splitlines()
    started = [line.removeprefix("start ") for line in lines if line.startswith("start ")]
    finished = [
        line.removeprefix("done  ").rsplit(" in ", 1)[0]
        for line in lines
        if line.startswith("done  ")
    ]
    return started, finished
