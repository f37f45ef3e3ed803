"""The user endpoints, through the repository, against the real database."""

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.package_name }}.models import User
from tests.harness.queries import QueryGuard


async def create(client: httpx.AsyncClient, email: str, name: str = "Ada") -> dict[str, object]:
    response = await client.post("/users", json={"email": email, "name": name})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_create_then_read_back(client: httpx.AsyncClient, db_session: AsyncSession) -> None:
    created = await create(client, "ada@example.com")
    assert created["email"] == "ada@example.com"

    response = await client.get(f"/users/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    # The request's unit of work committed: the row is visible outside the request.
    stored = await db_session.scalar(select(User).where(User.email == "ada@example.com"))
    assert stored is not None


async def test_unknown_user_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/users/999999")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_duplicate_email_is_409_and_changes_nothing(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    await create(client, "ada@example.com")
    response = await client.post("/users", json={"email": "ada@example.com", "name": "Twin"})
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "already_exists",
        "message": "a User with this email already exists",
        "fields": ["email"],
    }
    assert await db_session.scalar(select(func.count()).select_from(User)) == 1


async def test_invalid_input_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/users", json={"email": "not-an-email", "name": ""})
    assert response.status_code == 422


async def test_update_and_delete(client: httpx.AsyncClient) -> None:
    created = await create(client, "ada@example.com")
    response = await client.patch(f"/users/{created['id']}", json={"name": "Ada Lovelace"})
    assert response.status_code == 200
    assert response.json()["name"] == "Ada Lovelace"

    assert (await client.delete(f"/users/{created['id']}")).status_code == 204
    assert (await client.get(f"/users/{created['id']}")).status_code == 404


async def test_list_pages_with_a_cursor(
    client: httpx.AsyncClient, assert_max_queries: QueryGuard
) -> None:
    emails = [f"user{i}@example.com" for i in range(5)]
    for email in emails:
        await create(client, email)
    seen: list[str] = []
    params: dict[str, int] = {"limit": 2}
    while True:
        with assert_max_queries(1):
            page = (await client.get("/users", params=params)).json()
        seen += [user["email"] for user in page["items"]]
        if page["next_after"] is None:
            break
        params["after"] = page["next_after"]
    assert seen == emails
