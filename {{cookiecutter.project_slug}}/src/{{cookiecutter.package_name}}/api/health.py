"""Liveness and readiness. Readiness is the primary's: a lagging or lost replica
costs reads their spread, not the service its traffic, so it is reported, not failed.
A schema older than the code's is not ready either: during a rollout, new instances
take traffic only once the release's migrations ran (db/schema_revision.py)."""

import asyncio

from fastapi import APIRouter
from pydantic import BaseModel, Field

from {{ cookiecutter.package_name }}.api.dependencies import DatabaseDep
from {{ cookiecutter.package_name }}.api.errors import DatabaseUnavailable, SchemaBehind
from {{ cookiecutter.package_name }}.api.responses import ANY_OPERATION, error_responses
from {{ cookiecutter.package_name }}.db.replicas.servers import ReplicaState
from {{ cookiecutter.package_name }}.db.schema_revision import schema_behind

router = APIRouter(prefix="/health", tags=["health"], responses=ANY_OPERATION)
READY_TIMEOUT_SECONDS = 2.0


class ReplicaHealth(BaseModel):
    name: str = Field(description="The replica's URL, password masked")
    state: ReplicaState = Field(description="Only `ok` replicas serve reads")
    lag_ms: int | None = Field(description="Behind the primary at the last check")
    in_use: int = Field(description="Connections of this process's pool in use")


class Readiness(BaseModel):
    status: str
    replicas: list[ReplicaHealth] | None = Field(
        default=None, description="Present when DATABASE_REPLICA_URLS names replicas"
    )


@router.get("/live")
async def live() -> dict[str, str]:
    """The process is up; says nothing about the database."""
    return {"status": "ok"}


@router.get("/ready", responses=error_responses(503), response_model_exclude_unset=True)
async def ready(database: DatabaseDep) -> Readiness:
    """The primary answers within a bounded time, and its schema is this code's or newer;
    503 otherwise.

    With replicas, the answer lists each one's state as of its last check.
    """
    # Its own session rather than a dependency, to bound the connect as well as the query.
    try:
        async with (
            asyncio.timeout(READY_TIMEOUT_SECONDS),
            database.primary_read_sessions() as session,
        ):
            problem = await schema_behind(session)
    except TimeoutError as error:
        raise DatabaseUnavailable("no answer in time") from error
    if problem is not None:
        raise SchemaBehind(problem)
    if database.replicas is None:
        return Readiness(status="ok")
    return Readiness(
        status="ok",
        replicas=[
            ReplicaHealth(
                name=replica.name,
                state=replica.state,
                lag_ms=replica.lag_ms,
                in_use=replica.in_use,
            )
            for replica in database.replicas.replicas
        ],
    )
