"""What operators see of requests: a trace per request down to the server that answered
each statement, its error code, log lines that name the trace, and /metrics."""

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from pydantic import SecretStr
from sqlalchemy import make_url, text

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.api.dependencies import DatabaseDep, ReadSessionDep, SessionDep
from {{ cookiecutter.package_name }}.db.replicas.servers import ReplicaState
from {{ cookiecutter.package_name }}.settings import Settings
from tests.api.conftest import assert_service_busy, error_of
from tests.faults import one_connection_settings
from tests.harness.replicas import ReplicaServer
from tests.harness.servers import Owner
from tests.replica_routing import (
    create_notes_table,
    routed_database,
    routed_settings,
    until_state,
)
from tests.telemetry import children, named, recorded_spans, sample

routes = APIRouter()
holding = asyncio.Event()
release = asyncio.Event()


@routes.put("/notes/{note_id}", status_code=204)
async def put_note(note_id: int, session: SessionDep) -> None:
    await session.execute(text("INSERT INTO notes (id, body) VALUES (:id, 'b')"), {"id": note_id})


@routes.get("/notes/{note_id}")
async def get_note(note_id: int, session: ReadSessionDep) -> dict[str, bool]:
    in_recovery = await session.scalar(text("SELECT pg_is_in_recovery()"))
    return {"from_replica": bool(in_recovery)}


@routes.get("/fails")
async def fails() -> None:
    logging.getLogger("{{ cookiecutter.package_name }}.test").warning("about to fail")
    raise RuntimeError("a bug")


@routes.get("/tracing")
async def tracing_state() -> dict[str, bool]:
    return {"recording": trace.get_current_span().is_recording()}


@routes.get("/holds")
async def holds(database: DatabaseDep) -> None:
    async with database.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        holding.set()
        await release.wait()


@asynccontextmanager
async def unchecked_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client for `app` with its lifespan, its answers not checked against the document:
    these routes and /metrics are not in it."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        yield client


def with_routes(app: FastAPI) -> FastAPI:
    app.include_router(routes)
    return app


def attributes(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def server_span(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    (found,) = [span for span in named(spans, name) if span.kind.name == "SERVER"]
    return found


def below(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    """Every span under `parent`, at any depth."""
    found = children(spans, parent)
    return found + [deeper for child in found for deeper in below(spans, child)]


async def test_a_write_then_a_read_through_a_replica_trace_down_to_each_server(
    postgres_url: str, replica_urls: list[str], replica: ReplicaServer, db_owner: Owner
) -> None:
    await create_notes_table(db_owner)
    replica.wait_caught_up()
    settings = routed_settings(postgres_url, replica_urls)
    with recorded_spans() as exporter:
        app = with_routes(create_app(settings))
        async with routed_database(settings) as database:
            app.state.database = database
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.put("/notes/1")).status_code == 204
                replica.wait_caught_up()
                await asyncio.sleep(0.1)
                answer = await client.get("/notes/1")
    assert answer.json() == {"from_replica": True}
    spans = exporter.get_finished_spans()

    put = server_span(spans, "PUT /notes/{note_id}")
    (work,) = children(spans, put)
    assert work.name == "unit of work"
    (insert,) = [s for s in below(spans, put) if s.name.startswith("INSERT")]
    assert insert in children(spans, work)
    assert attributes(insert)["db.client.connection.pool.name"] == "primary"
    assert attributes(insert)["server.address"] == make_url(postgres_url).query["host"]

    get = server_span(spans, "GET /notes/{note_id}")
    assert get.context.trace_id != put.context.trace_id
    # A first connection's own queries (the server's version) may come before it.
    (read,) = [
        s for s in below(spans, get) if "pg_is_in_recovery" in str(attributes(s)["db.query.text"])
    ]
    replica_url = make_url(replica_urls[0])
    assert attributes(read)["db.client.connection.pool.name"] == "replica"
    assert attributes(read)["server.address"] == replica_url.query["host"]
    assert attributes(read)["server.address"] != attributes(insert)["server.address"]
    assert database.replicas is not None
    assert attributes(read)["db.replica.name"] == database.replicas.replicas[0].server
    assert attributes(read)["db.namespace"] == replica_url.database
    # The replica checks run every 20 ms here, and are no spans of their own.
    assert all(
        span.context.trace_id in {put.context.trace_id, get.context.trace_id} for span in spans
    )


async def test_a_failed_request_records_its_error_code_and_its_log_lines_name_the_trace(
    postgres_url: str, service_log: io.StringIO
) -> None:
    with recorded_spans() as exporter:
        app = with_routes(create_app(Settings(database_url=SecretStr(postgres_url))))
        async with unchecked_client(app) as client:
            assert error_of(await client.get("/fails"), 500)["code"] == "internal_error"
            assert error_of(await client.get("/no/such/path"), 404)["code"] == "not_found"
    spans = exporter.get_finished_spans()
    failed = server_span(spans, "GET /fails")
    assert attributes(failed)["error.type"] == "internal_error"
    assert failed.status.status_code.name == "ERROR"
    assert failed.context is not None
    lines = [json.loads(line) for line in service_log.getvalue().splitlines()]
    (about,) = [line for line in lines if line["message"] == "about to fail"]
    assert about["trace_id"] == format(failed.context.trace_id, "032x")
    assert about["span_id"] == format(failed.context.span_id, "016x")
    assert about["request_id"] != "-"
    (unknown,) = [s for s in spans if s.kind.name == "SERVER" and s is not failed]
    assert attributes(unknown)["error.type"] == "not_found"
    assert unknown.status.status_code.name != "ERROR"


async def test_with_no_exporter_configured_nothing_is_recorded(own_api: FastAPI) -> None:
    # The harness's environment names no OTEL exporter.
    transport = httpx.ASGITransport(app=with_routes(own_api))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/tracing")).json() == {"recording": False}


@pytest.mark.isolated_db
async def test_metrics_show_a_held_connection_a_starved_pool_and_each_answer(
    postgres_url: str,
) -> None:
    app = with_routes(create_app(one_connection_settings(postgres_url)))
    labels = {"pool": "primary", "server": "primary"}
    holding.clear()
    release.clear()
    async with unchecked_client(app) as client:
        before = sample("db_pool_checked_out", (await client.get("/metrics")).text, **labels)
        timeouts = sample("db_pool_checkout_timeouts_total", **labels)
        busy = sample("http_server_error_answers_total", status="503", code="service_busy")
        held = asyncio.create_task(client.get("/holds"))
        await holding.wait()
        during = (await client.get("/metrics")).text
        assert sample("db_pool_checked_out", during, **labels) == before + 1
        assert_service_busy(await client.get("/holds"))
        release.set()
        assert (await held).status_code == 200
        after = (await client.get("/metrics")).text
    assert sample("db_pool_checked_out", after, **labels) == before
    assert sample("db_pool_checkout_timeouts_total", after, **labels) == timeouts + 1
    assert sample("http_server_error_answers_total", after, status="503", code="service_busy") == (
        busy + 1
    )
    assert (
        sample("http_server_requests_total", after, method="GET", route="/holds", status="200") >= 1
    )
    assert sample("http_server_request_duration_seconds_count", after, route="/holds") >= 2
    assert sample("db_migration_revision", after) >= 1


async def test_metrics_stay_out_of_the_api_document_and_off_the_api_port_when_given_one(
    postgres_url: str,
) -> None:
    on_api = create_app(Settings(database_url=SecretStr(postgres_url)))
    assert "/metrics" not in on_api.openapi()["paths"]
    elsewhere = create_app(Settings(database_url=SecretStr(postgres_url), metrics_port=9464))
    async with unchecked_client(elsewhere) as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_a_paused_replica_shows_its_lag_and_the_reads_moved_to_the_primary(
    postgres_url: str, replica_urls: list[str], replica: ReplicaServer, db_owner: Owner
) -> None:
    await create_notes_table(db_owner)
    replica.wait_caught_up()
    settings = routed_settings(postgres_url, replica_urls, replica_max_lag_ms=100)
    async with routed_database(settings) as database:
        assert database.replicas is not None
        server = database.replicas.replicas[0].server
        fallbacks = sample("db_read_fallbacks_total", reason="no_usable_replica")
        on_primary = sample("db_reads_total", server="primary")
        replica.pause_replay()
        async with database.sessions() as session:
            await session.execute(text("INSERT INTO notes (id, body) VALUES (1, 'x')"))
            await session.commit()
        await until_state(database, ReplicaState.LAGGING)
        async with database.read_sessions() as session:
            await session.execute(text("SELECT 1"))
        assert sample("db_replica_lag_milliseconds", replica=server) > 100
        assert sample("db_replica_state", replica=server, state="lagging") == 1
        assert sample("db_replica_state", replica=server, state="ok") == 0
        assert sample("db_read_fallbacks_total", reason="no_usable_replica") == fallbacks + 1
        assert sample("db_reads_total", server="primary") == on_primary + 1
        replica.resume_replay()
