"""Benchmark the data layer's idioms against raw asyncpg and the naive SQLAlchemy ones.

    uv run python -m benchmarks.data_layer              # on a throwaway cluster
    uv run python -m benchmarks.data_layer --scale 0.1  # a tenth of the work, quicker
    uv run python -m benchmarks.data_layer --json       # one JSON document on stdout

Every figure comes from one run on one server (a throwaway cluster made from
the test harness's migrated cache), so compare the ratios, not the absolute
times, across machines. Each timing is the best of --repeat runs.
"""

import asyncio
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from {{ cookiecutter.package_name }}.db.migrations import PROJECT_ROOT, upgrade_database
from {{ cookiecutter.package_name }}.localpg.binaries import find_bindir
from {{ cookiecutter.package_name }}.localpg.cache import MIGRATED_DATABASE, Migrations
from {{ cookiecutter.package_name }}.localpg.cluster import Cluster
from {{ cookiecutter.package_name }}.localpg.runs import shared_cluster
from benchmarks.data_layer.concurrency import concurrency
from benchmarks.data_layer.context import Bench, Sizes
from benchmarks.data_layer.replicas import routed_reads
from benchmarks.data_layer.sequential import bulk_insert, gets, listing, per_request
from benchmarks.data_layer.telemetry import telemetry_cost
from benchmarks.reporting import (
    Column,
    Figure,
    Row,
    benchmark_parser,
    format_seconds,
    print_json,
    print_table,
    progress,
)

SCENARIOS = ("insert", "gets", "requests", "telemetry", "list", "replicas", "concurrency")


async def run(cluster: Cluster, sizes: Sizes, scenarios: Sequence[str] = SCENARIOS) -> list[Row]:
    url = cluster.url(MIGRATED_DATABASE).render_as_string(hide_password=False)
    bench = Bench(url, sizes)
    await bench.open()
    try:
        if "insert" in scenarios:
            with progress("insert"):
                await bulk_insert(bench)
        with progress("seed the reads"):
            keys = await bench.seed()
        readers = {
            "gets": gets,
            "requests": per_request,
            "telemetry": telemetry_cost,
            "list": listing,
        }
        for name, scenario in readers.items():
            if name in scenarios:
                with progress(name):
                    await scenario(bench, keys)
        if "replicas" in scenarios:
            with progress("replicas"):
                await routed_reads(bench, keys, cluster)
        if "concurrency" in scenarios:
            # One line of progress per level of concurrency.
            await concurrency(bench, keys)
    finally:
        await bench.close()
    return bench.rows


# How the details column shows a figure; the JSON document has the plain numbers.
SHOWN: dict[str, Callable[[Any], str]] = {
    "seconds": format_seconds,
    "ops_per_s": "{:,.0f}".format,
    "of_asyncpg": "{:.0%}".format,
    "p50_seconds": format_seconds,
    "p99_seconds": format_seconds,
    "cpu_of_primary": "{:.2f}x".format,
    "cpu_of_off": "{:.3f}x".format,
    "slowest_seconds": format_seconds,
}


def details(row: Row) -> str:
    def shown(name: str, value: Figure) -> str:
        text = SHOWN.get(name, str)(value)
        return f"{name.removesuffix('_seconds')} {text}"

    return ", ".join(shown(name, value) for name, value in row.figures.items() if name != "seconds")


COLUMNS = [
    Column("scenario", lambda row: row.scenario, "<"),
    Column("variant", lambda row: row.variant, "<"),
    Column("time", lambda row: SHOWN["seconds"](row.figures["seconds"])),
    Column("ratio", lambda row: " / ".join(f"{ratio:.2f}x" for ratio in row.ratios.values())),
    Column("details", details, "<"),
]


def main() -> None:
    parser = benchmark_parser("benchmarks.data_layer", __doc__, "timing")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every workload size")
    parser.add_argument(
        "--only", nargs="+", choices=SCENARIOS, default=SCENARIOS, help="run these scenarios"
    )
    arguments = parser.parse_args()
    sizes = Sizes(repeat=arguments.repeat).scaled(arguments.scale)

    with benchmark_cluster() as cluster:
        rows = asyncio.run(run(cluster, sizes, arguments.only))
    if arguments.json:
        settings = {"scale": arguments.scale, "only": list(arguments.only), **asdict(sizes)}
        print_json("data_layer", settings, rows)
    else:
        print_table(rows, COLUMNS)


@contextmanager
def benchmark_cluster() -> Iterator[Cluster]:
    """A throwaway cluster of its own with the migrated database (the test harness's cache)."""
    migrations = Migrations(folder=PROJECT_ROOT / "migrations", apply=upgrade_database)
    name = f"benchmark-{uuid.uuid4().hex[:8]}"
    with shared_cluster(find_bindir(), name, migrations) as cluster:
        yield cluster
