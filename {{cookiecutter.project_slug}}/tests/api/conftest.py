from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.api.dependencies import get_session_factory
from {{ cookiecutter.package_name }}.db.engine import create_async_engine_from_settings
from {{ cookiecutter.package_name }}.db.session import make_session_factory
from {{ cookiecutter.package_name }}.settings import Settings

SECRET = "s3cret-Pa55"


@asynccontextmanager
async def client_for(app: FastAPI, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """A client for `app`, its requests' units of work on `engine` (committing for real)."""
    app.dependency_overrides[get_session_factory] = lambda: make_session_factory(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
async def unreachable_client() -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app whose database refuses connections (nothing listens on port 1)."""
    settings = Settings(
        database_url=SecretStr(f"postgresql://app:{SECRET}@127.0.0.1:1/app"), pool_timeout=1
    )
    engine = create_async_engine_from_settings(settings)
    async with client_for(create_app(settings), engine) as client:
        yield client
    await engine.dispose()


@pytest.fixture
async def exhausted_client(postgres_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app whose one-connection pool is taken for the whole test."""
    settings = Settings(
        database_url=SecretStr(postgres_url), pool_size=1, max_overflow=0, pool_timeout=1
    )
    engine = create_async_engine_from_settings(settings)
    async with engine.connect(), client_for(create_app(settings), engine) as client:
        yield client
    await engine.dispose()
