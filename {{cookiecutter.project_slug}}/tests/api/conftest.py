import io
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.logs import log_handler
from {{ cookiecutter.package_name }}.settings import Settings
from tests.api.contract import ContractCheck
from tests.faults import POOL_TIMEOUT, SECRET, UNREACHABLE_URL, one_connection_settings

{% if cookiecutter.id_type == "uuid" -%}
# Keys no column can hold: not UUIDs.
UNREPRESENTABLE_KEYS = ["not-a-uuid", "0000000-0000-7000-8000-000000000001", "1"]
{%- else -%}
# Keys no bigint column can hold.
UNREPRESENTABLE_KEYS = [
    "9223372036854775808",
    "-9223372036854775809",
    "-20665342534627169607665382850560",
]
{%- endif %}


@asynccontextmanager
async def checked_client(
    app: FastAPI, *, requests: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """A client for `app` whose requests and answers are checked against its OpenAPI document."""
    transport = httpx.ASGITransport(app=ContractCheck(app, requests=requests))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
async def client(api: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The harness's client (tests/harness/fixtures.py), its answers checked (contract.py)."""
    async with checked_client(api) as client:
        yield client


@asynccontextmanager
async def client_for(app: FastAPI, *, requests: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """A client for `app` run with its lifespan: its own engine from its settings, real commits."""
    async with app.router.lifespan_context(app), checked_client(app, requests=requests) as client:
        yield client


@pytest.fixture
async def unreachable_client() -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app whose database refuses connections (nothing listens on port 1)."""
    settings = Settings(database_url=SecretStr(UNREACHABLE_URL), pool_timeout=POOL_TIMEOUT)
    async with client_for(create_app(settings)) as client:
        yield client


@pytest.fixture
async def exhausted_client(postgres_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app whose one-connection pools, writes and reads, are taken throughout."""
    app = create_app(one_connection_settings(postgres_url))
    async with (
        client_for(app) as client,
        app.state.database.engine.connect(),
        app.state.database.read_engine.connect(),
    ):
        yield client


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error object of an answer that must have `status` (its body shows if it has not)."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def assert_database_unavailable(response: httpx.Response) -> None:
    """The answer while the database cannot be reached: retry later, and no password."""
    assert error_of(response, 503)["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "1"
    assert SECRET not in response.text


def assert_service_busy(response: httpx.Response) -> None:
    """The answer while no connection is free: the database is fine, the service saturated."""
    assert error_of(response, 503)["code"] == "service_busy"
    assert response.headers["retry-after"] == "1"


@pytest.fixture
def service_log() -> Iterator[io.StringIO]:
    """What the service's JSON log handler writes while the test runs."""
    stream = io.StringIO()
    handler = log_handler("json", stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
