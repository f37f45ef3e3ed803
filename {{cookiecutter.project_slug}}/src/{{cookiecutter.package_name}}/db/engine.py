"""Build the async (asyncpg) and sync (psycopg) engines from one Settings object."""

from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from {{ cookiecutter.package_name }}.settings import Settings


def _pool_options(settings: Settings) -> dict[str, Any]:
    return {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.pool_timeout,
        "pool_recycle": settings.pool_recycle,
        "pool_pre_ping": settings.pool_pre_ping,
        "echo": settings.echo,
    }


def _timeout_options(settings: Settings, driver: str) -> dict[str, Any]:
    timeout = settings.statement_timeout_ms
    if timeout is None:
        return {}
    if driver == "asyncpg":
        return {"connect_args": {"server_settings": {"statement_timeout": str(timeout)}}}
    return {"connect_args": {"options": f"-c statement_timeout={timeout}"}}


def create_async_engine_from_settings(settings: Settings, **overrides: Any) -> AsyncEngine:
    options = _pool_options(settings) | _timeout_options(settings, "asyncpg") | overrides
    return create_async_engine(settings.url("asyncpg"), **options)


def create_sync_engine_from_settings(settings: Settings, **overrides: Any) -> Engine:
    """For scripts, migrations and tools that are not async."""
    options = _pool_options(settings) | _timeout_options(settings, "psycopg") | overrides
    return create_engine(settings.url("psycopg"), **options)
