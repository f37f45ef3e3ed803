"""The data-layer benchmark still runs: a tiny workload, every scenario, sane figures."""

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.harness

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.isolated_db
async def test_data_layer_benchmark_runs_every_scenario(postgres_url: str) -> None:
    data_layer = load("data_layer")
    sizes = data_layer.Sizes(
        bulk_rows=1_200, gets=20, listed_users=10, concurrency=(2,), ops_per_level=40, repeat=1
    )
    report = await data_layer.run(postgres_url, sizes)
    scenarios = {row.scenario for row in report.rows}
    assert len(scenarios) == 5
    for row in report.rows:
        assert row.seconds > 0
        assert math.isfinite(report.ratio(row.scenario, row.variant))
    listing = {row.variant: row.extra for row in report.rows if row.scenario.startswith("list")}
    assert listing["repository list_with_posts (selectinload)"]["queries"] == "2"
