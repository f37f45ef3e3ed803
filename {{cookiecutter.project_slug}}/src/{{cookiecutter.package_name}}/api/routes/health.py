import asyncio

from fastapi import APIRouter, Response, status
from sqlalchemy import text

from {{ cookiecutter.package_name }}.api.dependencies import ReadSessionFactoryDep
from {{ cookiecutter.package_name }}.api.errors import UNAVAILABLE_ERRORS

router = APIRouter(prefix="/health", tags=["health"])
READY_TIMEOUT_SECONDS = 2.0


@router.get("/live")
async def live() -> dict[str, str]:
    """The process is up; says nothing about the database."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(sessions: ReadSessionFactoryDep, response: Response) -> dict[str, str]:
    """The database answers a trivial query within a bounded time."""
    # Its own session rather than a dependency: a failure here is an answer, not an error.
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), sessions() as session:
            await session.execute(text("SELECT 1"))
    except (*UNAVAILABLE_ERRORS, TimeoutError):
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"status": "unavailable"}
    return {"status": "ok"}
