"""What the data layer tells operators: a span per statement on the engine that ran it,
units of work, retries and migrations as spans, pool metrics, and slow statements."""

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from pydantic import SecretStr
from sqlalchemy import make_url, text
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.package_name }}.db.database import Database
from {{ cookiecutter.package_name }}.db.engine import create_async_engine_from_settings
from {{ cookiecutter.package_name }}.db.migrations import upgrade_database
from {{ cookiecutter.package_name }}.db.retry import run_in_transaction
from {{ cookiecutter.package_name }}.db.session import transaction
from {{ cookiecutter.package_name }}.logs import JsonFormatter
from {{ cookiecutter.package_name }}.observability import tracing
from {{ cookiecutter.package_name }}.observability.tracing import (
    TracingSettingError,
    provider_from_environment,
)
from {{ cookiecutter.package_name }}.settings import Settings
from tests.telemetry import children, named, recorded_spans, sample

SECRET = "a value no span may carry"


def query_of(span: ReadableSpan) -> object:
    return (span.attributes or {}).get("db.query.text")


def settings_on(url: str, **overrides: Any) -> Settings:
    return Settings(database_url=SecretStr(url), **overrides)


async def test_each_statement_is_a_span_below_the_work_that_ran_it_without_values(
    db_session: AsyncSession, postgres_url: str
) -> None:
    with recorded_spans() as exporter, tracing.span("handling") as handling:
        assert handling is not None
        await db_session.execute(text("SELECT length(:value)"), {"value": SECRET})
    spans = exporter.get_finished_spans()
    database = make_url(postgres_url).database
    (select,) = named(spans, f"SELECT {database}")
    assert select in children(spans, named(spans, "handling")[0])
    attributes = dict(select.attributes or {})
    assert attributes["db.system.name"] == "postgresql"
    assert attributes["db.namespace"] == database
    assert attributes["db.query.text"] == "SELECT length($1)"
    # The harness's own engine ran it.
    assert attributes["db.client.connection.pool.name"] == "harness"
    assert attributes["server.address"]
    assert SECRET not in repr([span.to_json() for span in spans])


@pytest.mark.isolated_db
async def test_a_unit_of_work_is_a_span_and_a_failed_statement_records_its_sqlstate(
    postgres_url: str,
) -> None:
    database = Database.from_settings(settings_on(postgres_url))
    try:
        with recorded_spans() as exporter, pytest.raises(Exception, match="division by zero"):
            async with transaction(database.sessions) as session:
                await session.execute(text("SELECT 1 / 0"))
    finally:
        await database.dispose()
    spans = exporter.get_finished_spans()
    (work,) = named(spans, "unit of work")
    (failed,) = [s for s in children(spans, work) if query_of(s) == "SELECT 1 / 0"]
    assert failed.attributes is not None
    assert failed.attributes["db.response.status_code"] == "22012"
    assert failed.status.status_code.name == "ERROR"
    assert work.status.status_code.name == "ERROR"


@pytest.mark.isolated_db
async def test_a_retried_unit_of_work_shows_each_retry(postgres_url: str) -> None:
    database = Database.from_settings(settings_on(postgres_url))
    attempts = 0

    async def conflicts_once(session: AsyncSession) -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            # What PostgreSQL raises to break a conflict: SQLSTATE 40001.
            await session.execute(
                text("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$")
            )
        return attempts

    before = sample("db_transaction_retries_total", sqlstate="40001")
    try:
        with recorded_spans() as exporter:
            assert await run_in_transaction(conflicts_once, database.sessions) == 2
    finally:
        await database.dispose()
    (run,) = named(exporter.get_finished_spans(), "run_in_transaction")
    assert [event.name for event in run.events] == ["retry"]
    assert len(named(exporter.get_finished_spans(), "unit of work")) == 2
    assert sample("db_transaction_retries_total", sqlstate="40001") == before + 1


@pytest.mark.isolated_db
async def test_migrations_are_a_span_over_their_statements(postgres_url: str) -> None:
    url = settings_on(postgres_url).url("psycopg")
    with recorded_spans() as exporter:
        await asyncio.to_thread(upgrade_database, url)
    spans = exporter.get_finished_spans()
    (migrate,) = named(spans, "migrate")
    statements = children(spans, migrate)
    assert statements
    assert {dict(s.attributes or {})["db.client.connection.pool.name"] for s in statements} == {
        "migrate"
    }


@pytest.mark.isolated_db
async def test_pool_metrics_follow_checkouts_and_count_the_waits_that_run_out(
    postgres_url: str,
) -> None:
    settings = settings_on(postgres_url, pool_size=1, pool_timeout=0.2)
    engine = create_async_engine_from_settings(settings, server="pool-metrics-test")
    labels = {"pool": "primary", "server": "pool-metrics-test"}
    try:
        async with engine.connect() as holding:
            await holding.execute(text("SELECT 1"))
            assert sample("db_pool_checked_out", **labels) == 1
            assert sample("db_pool_size", **labels) == 1
            with pytest.raises(PoolTimeoutError):
                async with engine.connect():
                    pass
            assert sample("db_pool_checkout_timeouts_total", **labels) == 1
            assert sample("db_pool_waiting", **labels) == 0
        assert sample("db_pool_checked_out", **labels) == 0
        assert sample("db_pool_checkout_wait_seconds_count", **labels) == 2
        # The timed-out wait lasted the pool timeout.
        assert sample("db_pool_checkout_wait_seconds_sum", **labels) >= 0.2
    finally:
        await engine.dispose()
    # The pool that replaces the disposed one counts only once used.
    assert sample("db_pool_size", **labels) == 0
    async with engine.connect():
        assert sample("db_pool_size", **labels) == 1
    await engine.dispose()
    assert sample("db_pool_size", **labels) == 0


@pytest.mark.isolated_db
async def test_a_slow_statement_is_logged_once_as_one_line(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    database = Database.from_settings(settings_on(postgres_url, slow_query_ms=50))
    try:
        async with database.read_sessions() as session:
            await session.execute(text("SELECT 1"))
            await session.execute(text("SELECT pg_sleep(:seconds)\n  -- slow"), {"seconds": 0.1})
    finally:
        await database.dispose()
    (line,) = [r for r in caplog.records if r.name == "{{ cookiecutter.package_name }}.db.slow"]
    entry = json.loads(JsonFormatter().format(line))
    assert entry["duration_ms"] >= 100
    assert entry["statement"] == "SELECT pg_sleep($1) -- slow"
    assert entry["pool"] == "read"
    assert entry["level"] == "WARNING"
    assert "request_id" in entry
    assert "\n" not in JsonFormatter().format(line)


@pytest.mark.parametrize(
    ("environment", "exporters"),
    [
        ({}, None),
        ({"OTEL_TRACES_EXPORTER": "none"}, None),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["SimpleSpanProcessor"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["BatchSpanProcessor"]),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"},
            None,
        ),
    ],
    ids=["unset", "none", "console", "endpoint only", "sdk disabled"],
)
def test_tracing_is_off_until_an_exporter_is_configured(
    environment: dict[str, str], exporters: list[str] | None
) -> None:
    provider = provider_from_environment("svc", environment)
    if exporters is None:
        assert provider is None
        return
    assert provider is not None
    processors = provider._active_span_processor._span_processors
    assert [type(processor).__name__ for processor in processors] == exporters
    assert provider.resource.attributes["service.name"] == "svc"
    provider.shutdown()


@pytest.mark.parametrize(
    ("environment", "named_variable"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ],
    ids=["unknown exporter", "grpc"],
)
def test_a_tracing_setting_the_service_cannot_honour_is_named(
    environment: dict[str, str], named_variable: str
) -> None:
    with pytest.raises(TracingSettingError, match=named_variable):
        provider_from_environment("svc", environment)


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps each export's spans."""

    received: list[ExportTraceServiceRequest]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(  # type: ignore[attr-defined]
            (self.path, ExportTraceServiceRequest.FromString(body))
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


async def test_spans_reach_an_otlp_collector_over_http(
    db_session: AsyncSession, collector: ThreadingHTTPServer
) -> None:
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    provider = provider_from_environment(
        "svc", {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "exported"}
    )
    assert provider is not None
    previous = tracing.provider()
    tracing.use_provider(provider)
    try:
        with tracing.span("exported work"):
            await db_session.execute(text("SELECT 1"))
    finally:
        tracing.use_provider(previous)
        # Flushes the batch to the collector.
        await asyncio.to_thread(provider.shutdown)
    received = collector.received  # type: ignore[attr-defined]
    assert {path for path, _ in received} == {"/v1/traces"}
    spans = [
        (resource.resource, span)
        for _, request in received
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    names = {span.name for _, span in spans}
    assert "exported work" in names
    assert any(name.startswith("SELECT ") for name in names)
    service_names = {
        attribute.value.string_value
        for resource, _ in spans
        for attribute in resource.attributes
        if attribute.key == "service.name"
    }
    assert service_names == {"exported"}
