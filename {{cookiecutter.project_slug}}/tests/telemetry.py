"""Spans and metrics as the tests read them: spans from an in-memory exporter, metrics
parsed from the text a Prometheus scrape gets."""

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.package_name }}.observability import metrics, tracing


@contextmanager
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    """Trace into memory for the block, as an exporter configured by OTEL_* would."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = tracing.provider()
    tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_provider(previous)
        provider.shutdown()


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def sample(name: str, scrape: str | None = None, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 if none)."""
    text = scrape if scrape is not None else metrics.exposition()[0].decode()
    return sum(
        found.value
        for family in text_string_to_metric_families(text)
        for found in family.samples
        if found.name == name and labels.items() <= found.labels.items()
    )
