import asyncio

from fastapi import APIRouter
from sqlalchemy import text

from {{ cookiecutter.package_name }}.api.dependencies import ReadSessionFactoryDep
from {{ cookiecutter.package_name }}.api.errors import DatabaseUnavailable
from {{ cookiecutter.package_name }}.api.responses import ANY_OPERATION, error_responses

router = APIRouter(prefix="/health", tags=["health"], responses=ANY_OPERATION)
READY_TIMEOUT_SECONDS = 2.0


@router.get("/live")
async def live() -> dict[str, str]:
    """The process is up; says nothing about the database."""
    return {"status": "ok"}


@router.get("/ready", responses=error_responses(503))
async def ready(sessions: ReadSessionFactoryDep) -> dict[str, str]:
    """The database answers a trivial query within a bounded time; 503 otherwise."""
    # Its own session rather than a dependency, to bound the connect as well as the query.
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), sessions() as session:
            await session.execute(text("SELECT 1"))
    except TimeoutError as error:
        raise DatabaseUnavailable("no answer in time") from error
    return {"status": "ok"}
