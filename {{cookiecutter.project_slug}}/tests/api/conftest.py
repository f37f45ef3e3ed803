from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.settings import Settings

SECRET = "s3cret-Pa55"
# Short, so that the tests of a full pool wait as little as they can.
POOL_TIMEOUT = 0.25


@asynccontextmanager
async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client for `app` run with its lifespan: its own engine from its settings, real commits."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
async def unreachable_client() -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app whose database refuses connections (nothing listens on port 1)."""
    settings = Settings(
        database_url=SecretStr(f"postgresql://app:{SECRET}@127.0.0.1:1/app"),
        pool_timeout=POOL_TIMEOUT,
    )
    async with client_for(create_app(settings)) as client:
        yield client


@pytest.fixture
async def exhausted_client(postgres_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app whose one-connection pools, writes and reads, are taken throughout."""
    settings = Settings(
        database_url=SecretStr(postgres_url),
        pool_size=1,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT,
    )
    app = create_app(settings)
    async with (
        client_for(app) as client,
        app.state.engine.connect(),
        app.state.read_engine.connect(),
    ):
        yield client
