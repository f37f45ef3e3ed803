"""The user endpoints, through the repository, against the real database."""

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.types import Message, Receive, Scope, Send

from {{ cookiecutter.package_name }}.api.dependencies import SessionDep
from {{ cookiecutter.package_name }}.api.responses import ANY_OPERATION
from {{ cookiecutter.package_name }}.features.blog.models import User
from {{ cookiecutter.package_name }}.features.blog.repositories import UserRepository
from tests.api.conftest import (
    UNREPRESENTABLE_KEYS,
    assert_database_unavailable,
    assert_service_busy,
    checked_client,
    error_of,
)
from tests.api.contract import ContractCheck
from tests.factories import Make
from tests.features.blog.factories import UserFactory
from tests.harness.queries import QueryGuard
from tests.keys import MISSING_KEY


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
    response = await client.get(f"/users/{MISSING_KEY}")
    assert error_of(response, 404)["code"] == "not_found"


async def test_duplicate_email_is_409_and_changes_nothing(
    client: httpx.AsyncClient, db_session: AsyncSession, make: Make
) -> None:
    await make(UserFactory, email="ada@example.com")
    response = await client.post("/users", json={"email": "ada@example.com", "name": "Twin"})
    assert error_of(response, 409) == {
        "code": "already_exists",
        "message": "a User with this email already exists",
        "fields": ["email"],
    }
    assert await db_session.scalar(select(func.count()).select_from(User)) == 1


async def test_emails_differing_only_in_case_are_one_user(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    created = await create(client, "Ada@Example.com")
    assert created["email"] == "Ada@Example.com"
    response = await client.post("/users", json={"email": "ada@example.COM", "name": "Twin"})
    assert error_of(response, 409)["fields"] == ["email"]
    assert await db_session.scalar(select(func.count()).select_from(User)) == 1


async def test_unknown_fields_are_422_naming_them_and_change_nothing(
    client: httpx.AsyncClient, make: Make
) -> None:
    user = await make(UserFactory)
    before = (await client.get(f"/users/{user.id}")).json()
    patched = await client.patch(f"/users/{user.id}", json={"email": "eve@example.com"})
    (detail,) = error_of(patched, 422)["details"]
    assert (tuple(detail["loc"]), detail["type"]) == (("body", "email"), "extra_forbidden")
    assert (await client.get(f"/users/{user.id}")).json() == before
    posted = await client.post(
        "/users", json={"email": "eve@example.com", "name": "Eve", "is_admin": True}
    )
    assert [detail["loc"] for detail in error_of(posted, 422)["details"]] == [["body", "is_admin"]]


async def test_invalid_input_is_422_in_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.post("/users", json={"email": "not-an-email", "name": ""})
    error = error_of(response, 422)
    assert error["code"] == "invalid_input"
    assert {tuple(detail["loc"]) for detail in error["details"]} == {
        ("body", "email"),
        ("body", "name"),
    }


STORED_VERBATIM = [
    pytest.param("Robert'); DROP TABLE users;--", id="sql-metacharacters"),
    pytest.param("quote \" apostrophe ' backslash \\ percent %", id="quotes"),
    pytest.param("名前 🚀 ünïcödé \u202e", id="unicode"),
    pytest.param("x" * 100, id="longest-allowed"),
]
REJECTED = [
    pytest.param("x" * 101, id="too-long"),
    pytest.param("nul\x00byte", id="nul-byte"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("name", STORED_VERBATIM)
async def test_hostile_input_is_stored_verbatim(client: httpx.AsyncClient, name: str) -> None:
    created = await create(client, "ada@example.com", name=name)
    response = await client.get(f"/users/{created['id']}")
    assert response.json()["name"] == name


@pytest.mark.parametrize("name", REJECTED)
async def test_hostile_input_is_rejected_and_changes_nothing(
    client: httpx.AsyncClient, db_session: AsyncSession, name: str
) -> None:
    response = await client.post("/users", json={"email": "ada@example.com", "name": name})
    assert error_of(response, 422)["code"] == "invalid_input"
    assert await db_session.scalar(select(func.count()).select_from(User)) == 0


async def test_unreachable_database_is_503_with_retry_after(
    unreachable_client: httpx.AsyncClient,
) -> None:
    assert_database_unavailable(await unreachable_client.get("/users"))


async def test_exhausted_pool_is_503_not_a_hang(exhausted_client: httpx.AsyncClient) -> None:
    assert_service_busy(await asyncio.wait_for(exhausted_client.get("/users"), timeout=10))


@pytest.mark.isolated_db
async def test_commit_happens_before_the_response_starts(
    api: FastAPI, db_engine: AsyncEngine
) -> None:
    events: list[str] = []
    event.listen(db_engine.sync_engine, "commit", lambda connection: events.append("commit"))
    checked_api = ContractCheck(api)

    async def recording(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                events.append("response")
            await send(message)

        await checked_api(scope, receive, send_and_record)

    transport = httpx.ASGITransport(app=recording)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/users", json={"email": "ada@example.com", "name": "Ada"})
    assert response.status_code == 201
    assert events == ["commit", "response"]
    async with db_engine.connect() as other:
        assert await other.scalar(select(func.count()).select_from(User)) == 1


@pytest.mark.isolated_db
async def test_a_request_that_writes_then_fails_changes_nothing(
    own_api: FastAPI, db_engine: AsyncEngine
) -> None:
    @own_api.post("/write-then-fail", responses=ANY_OPERATION)
    async def write_then_fail(session: SessionDep) -> None:
        await UserRepository(session).create(email="ada@example.com", name="Ada")
        raise RuntimeError("failed after writing")

    async with checked_client(own_api) as client:
        response = await client.post("/write-then-fail")
    assert error_of(response, 500)["code"] == "internal_error"
    async with db_engine.connect() as other:
        assert await other.scalar(select(func.count()).select_from(User)) == 0


async def test_update_and_delete(client: httpx.AsyncClient, make: Make) -> None:
    user = await make(UserFactory)
    response = await client.patch(f"/users/{user.id}", json={"name": "Ada Lovelace"})
    assert response.status_code == 200
    assert response.json()["name"] == "Ada Lovelace"

    assert (await client.delete(f"/users/{user.id}")).status_code == 204
    assert (await client.get(f"/users/{user.id}")).status_code == 404


async def test_list_pages_with_a_cursor(
    client: httpx.AsyncClient, make: Make, assert_max_queries: QueryGuard
) -> None:
    emails = [user.email for user in await make.batch(UserFactory, 5)]
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


@pytest.mark.parametrize("key", UNREPRESENTABLE_KEYS)
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_a_key_no_row_can_have_is_422_before_any_query(
    client: httpx.AsyncClient, assert_max_queries: QueryGuard, method: str, key: str
) -> None:
    with assert_max_queries(0):
        response = await client.request(method, f"/users/{key}", json={"name": "Ada"})
    assert error_of(response, 422)["details"][0]["loc"] == ["path", "user_id"]


async def test_a_missing_key_is_404_for_every_method(client: httpx.AsyncClient) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(method, f"/users/{MISSING_KEY}", json={"name": "Ada"})
        assert response.status_code == 404, method
        assert response.json()["error"]["code"] == "not_found"


async def test_a_body_that_is_not_utf8_is_400_in_the_error_shape(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/users", content=b"\xff", headers={"content-type": "application/json"}
    )
    assert error_of(response, 400)["code"] == "malformed_request"


async def test_a_body_that_is_not_json_is_422_json_invalid(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/users", content=b'{"email": ', headers={"content-type": "application/json"}
    )
    error = error_of(response, 422)
    assert error["code"] == "invalid_input"
    assert [detail["type"] for detail in error["details"]] == ["json_invalid"]


@pytest.mark.parametrize("method", ["OPTIONS", "DELETE", "PUT"])
async def test_allow_lists_every_method_of_the_collection(
    client: httpx.AsyncClient, method: str
) -> None:
    response = await client.request(method, "/users")
    assert response.headers["allow"] == "GET, POST, OPTIONS"
    if method == "OPTIONS":
        assert response.status_code == 204
    else:
        assert error_of(response, 405)["code"] == "method_not_allowed"


async def test_allow_lists_every_method_of_one_user(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/users/{MISSING_KEY}")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PATCH, DELETE, OPTIONS"


async def test_deleting_a_user_over_http_frees_the_email(client: httpx.AsyncClient) -> None:
    body = {"email": "grace@example.com", "name": "Grace"}
    created = (await client.post("/users", json=body)).json()
    assert (await client.delete(f"/users/{created['id']}")).status_code == 204
    assert (await client.get(f"/users/{created['id']}")).status_code == 404
    again = await client.post("/users", json=body)
    assert again.status_code == 201, again.text
    assert again.json()["id"] != created["id"]
