import asyncio

import httpx
import pytest

from tests.api.conftest import assert_database_unavailable, assert_service_busy, error_of
from tests.harness.servers import Owner


async def test_live_needs_no_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_queries_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_is_503_when_the_database_is_down(
    unreachable_client: httpx.AsyncClient,
) -> None:
    assert_database_unavailable(await unreachable_client.get("/health/ready"))
    assert (await unreachable_client.get("/health/live")).status_code == 200


async def test_ready_is_503_when_no_connection_is_free(
    exhausted_client: httpx.AsyncClient,
) -> None:
    # Bounded by the pool timeout: the request must answer, not hang.
    response = await asyncio.wait_for(exhausted_client.get("/health/ready"), timeout=10)
    # Not database_unavailable: a client should tell a saturated service apart.
    assert_service_busy(response)


@pytest.mark.isolated_db
async def test_ready_is_503_while_the_schema_is_older_than_the_code(
    client: httpx.AsyncClient, db_owner: Owner
) -> None:
    await db_owner.execute("DELETE FROM alembic_version")
    response = await client.get("/health/ready")
    error = error_of(response, 503)
    assert error["code"] == "schema_out_of_date"
    assert error["message"].startswith("the database is at no revision, this code needs ")
    assert error["message"].endswith(": run `migrate`")
    assert response.headers["Retry-After"]


@pytest.mark.isolated_db
async def test_ready_serves_a_schema_a_newer_release_migrated(
    client: httpx.AsyncClient, db_owner: Owner
) -> None:
    await db_owner.execute("UPDATE alembic_version SET version_num = 'from_a_newer_release'")
    assert (await client.get("/health/ready")).json() == {"status": "ok"}
