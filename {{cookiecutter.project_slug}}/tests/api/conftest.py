from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.api.dependencies import get_session_factory
from {{ cookiecutter.package_name }}.db.engine import create_async_engine_from_settings
from {{ cookiecutter.package_name }}.db.session import make_session_factory
from {{ cookiecutter.package_name }}.settings import Settings

SECRET = "s3cret-Pa55"


@pytest.fixture
async def unreachable_client() -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app whose database refuses connections (nothing listens on port 1)."""
    settings = Settings(
        database_url=SecretStr(f"postgresql://app:{SECRET}@127.0.0.1:1/app"), pool_timeout=1
    )
    engine = create_async_engine_from_settings(settings)
    app = create_app(settings)
    app.dependency_overrides[get_session_factory] = lambda: make_session_factory(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    await engine.dispose()
