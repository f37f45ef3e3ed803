"""What traces and metrics cost a read request: CPU per request against telemetry off.

Each variant runs the read-request work (a read-only session and a get, inside a
span as a request's would be) on an engine of its own: off (no statement hooks,
no metrics), configured but idle (hooks and the slow-statement clock; no
exporter, no metrics), metrics on, and tracing every request into memory through
the SDK's batch processor, as an OTLP exporter would be fed.
"""

from collections.abc import Awaitable, Callable

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from {{ cookiecutter.package_name }}.db.base import Key
from {{ cookiecutter.package_name }}.db.engine import create_read_engine_from_settings
from {{ cookiecutter.package_name }}.db.session import AsyncSessionFactory, make_read_session_factory
from {{ cookiecutter.package_name }}.features.blog.repositories import UserRepository
from {{ cookiecutter.package_name }}.observability import tracing
from benchmarks.data_layer.context import Bench, wall_and_cpu


async def telemetry_cost(bench: Bench, keys: list[Key]) -> None:
    wanted = [keys[i % len(keys)] for i in range(bench.sizes.gets)]
    scenario = f"{len(wanted):,} read requests: telemetry"
    quiet = bench.settings.model_copy(update={"metrics_enabled": False})
    variants = {
        "off": (create_read_engine_from_settings(quiet, observed=False), False),
        "configured, idle": (create_read_engine_from_settings(quiet), False),
        "metrics on": (create_read_engine_from_settings(bench.settings), False),
        "metrics on, tracing 100% (in memory)": (
            create_read_engine_from_settings(bench.settings),
            True,
        ),
    }

    def requests(sessions: AsyncSessionFactory) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            for key in wanted:
                with tracing.span("request"):
                    async with sessions() as session:
                        await UserRepository(session).get(key)

        return run

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    runs = {
        variant: requests(make_read_session_factory(engine))
        for variant, (engine, _) in variants.items()
    }
    measured: dict[str, tuple[float, float]] = {}
    try:
        # Round after round of every variant, rather than each variant's runs in a row:
        # a machine that slows down for a while slows them all.
        for _ in range(bench.sizes.repeat):
            for variant, (_, traced) in variants.items():
                tracing.use_provider(provider if traced else None)
                wall, cpu = await wall_and_cpu(runs[variant])
                best_wall, best_cpu = measured.get(variant, (wall, cpu))
                measured[variant] = (min(wall, best_wall), min(cpu, best_cpu))
                exporter.clear()
    finally:
        tracing.use_provider(None)
        provider.shutdown()
        for engine, _ in variants.values():
            await engine.dispose()
    bench.add_cpu_figures(scenario, measured, len(wanted), "per request", "off")
