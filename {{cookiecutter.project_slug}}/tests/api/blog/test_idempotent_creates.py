"""A user or a post created again with the same Idempotency-Key is the first one."""

import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.package_name }}.features.blog.models import Post, User
from {{ cookiecutter.package_name }}.features.idempotency.api import REPLAYED_HEADER
from tests.api.conftest import error_of
from tests.factories import Make
from tests.features.blog.factories import UserFactory
from tests.keys import as_json


async def test_a_user_sent_twice_with_one_key_is_created_once(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    body, key = {"email": "grace@example.com", "name": "Grace"}, {"Idempotency-Key": "u-1"}
    first = await client.post("/users", json=body, headers=key)
    again = await client.post("/users", json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert (again.content, again.headers[REPLAYED_HEADER]) == (first.content, "true")
    # Without the key, the same body is another request: refused by the unique email.
    assert error_of(await client.post("/users", json=body), 409)["code"] == "already_exists"
    count = select(func.count()).select_from(User).where(User.email == body["email"])
    assert await db_session.scalar(count) == 1


async def test_a_post_sent_twice_with_one_key_is_created_once(
    client: httpx.AsyncClient, db_session: AsyncSession, make: Make
) -> None:
    author = as_json((await make(UserFactory)).id)
    body = {"author_id": author, "title": "Notes", "content": "on the engine"}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await client.post("/posts", json=body, headers=key)
    again = await client.post("/posts", json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    # The replay repeats the headers the route set, the ETag a PATCH then needs.
    assert again.headers["ETag"] == first.headers["ETag"] == f'"{first.json()["version"]}"'
    assert await db_session.scalar(select(func.count()).select_from(Post)) == 1
