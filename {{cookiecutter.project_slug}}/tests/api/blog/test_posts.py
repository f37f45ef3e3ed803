"""The post endpoints: every post comes with its author, loaded in the same query."""

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.features.blog.models import Post, User
from {{ cookiecutter.package_name }}.settings import Settings
from tests.api.conftest import UNREPRESENTABLE_KEYS, client_for, error_of
from tests.factories import Make
from tests.features.blog.factories import PostFactory, UserFactory
from tests.harness.queries import QueryGuard
from tests.keys import MISSING_KEY, JsonKey, as_json

# Posts sent at once with a delete of their author, and how many times.
RACE_POSTS, RACE_ROUNDS = 8, 10


async def create_post(
    client: httpx.AsyncClient, author_id: JsonKey, title: str
) -> dict[str, object]:
    response = await client.post(
        "/posts", json={"author_id": author_id, "title": title, "content": f"about {title}"}
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_create_read_update_delete(client: httpx.AsyncClient, make: Make) -> None:
    author = as_json((await make(UserFactory, name="Ada")).id)
    created = await create_post(client, author, "Engines")
    assert created["author"] == {"id": author, "name": "Ada"}
    assert created["views"] == 0
    assert created["status"] == "draft"

    assert (await client.get(f"/posts/{created['id']}")).json() == created

    response = await client.patch(
        f"/posts/{created['id']}",
        json={"title": "Analytical Engines", "status": "published"},
        headers={"If-Match": f'"{created["version"]}"'},
    )
    assert response.status_code == 200
    assert response.json()["title"] == "Analytical Engines"
    assert response.json()["status"] == "published"
    assert response.json()["author"] == created["author"]

    assert (await client.delete(f"/posts/{created['id']}")).status_code == 204
    assert (await client.get(f"/posts/{created['id']}")).status_code == 404


async def test_an_unknown_author_is_422_and_changes_nothing(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    response = await client.post(
        "/posts",
        json={"author_id": as_json(MISSING_KEY), "title": "Orphan", "content": "nobody wrote this"},
    )
    assert error_of(response, 422) == {
        "code": "missing_reference",
        "message": "author_id does not refer to an existing row of users",
        "fields": ["author_id"],
    }
    assert await db_session.scalar(select(func.count()).select_from(Post)) == 0


async def test_a_deleted_author_is_as_unknown_as_a_missing_one(
    client: httpx.AsyncClient, db_session: AsyncSession, make: Make
) -> None:
    author = as_json((await make(UserFactory)).id)
    assert (await client.delete(f"/users/{author}")).status_code == 204
    response = await client.post(
        "/posts", json={"author_id": author, "title": "Ghost", "content": "written after"}
    )
    assert error_of(response, 422) == {
        "code": "missing_reference",
        "message": "author_id does not refer to an existing row of users",
        "fields": ["author_id"],
    }
    every_post = select(func.count()).select_from(Post).execution_options(include_deleted=True)
    assert await db_session.scalar(every_post) == 0


@pytest.mark.parametrize("page_size", [1, 7, 50])
async def test_a_page_is_one_query_whatever_its_size(
    client: httpx.AsyncClient, make: Make, assert_max_queries: QueryGuard, page_size: int
) -> None:
    authors = await make.batch(UserFactory, 5)
    for i in range(page_size):
        await make(PostFactory, author=authors[i % len(authors)])
    with assert_max_queries(1):
        response = await client.get("/posts", params={"limit": page_size})
    items = response.json()["items"]
    assert len(items) == page_size
    assert {item["author"]["id"] for item in items} == {
        as_json(author.id) for author in authors[:page_size]
    }


async def test_pages_follow_the_cursor_and_filter_by_author(
    client: httpx.AsyncClient, make: Make
) -> None:
    ada, bob = await make.batch(UserFactory, 2)
    for i in range(5):
        await make(PostFactory, author=ada, title=f"ada {i}")
        await make(PostFactory, author=bob, title=f"bob {i}")
    titles: list[str] = []
    params: dict[str, int | str] = {"limit": 2, "author_id": as_json(ada.id)}
    while True:
        page = (await client.get("/posts", params=params)).json()
        titles += [item["title"] for item in page["items"]]
        if page["next_after"] is None:
            break
        params["after"] = page["next_after"]
    assert titles == [f"ada {i}" for i in range(5)]


async def test_an_unknown_status_is_422(client: httpx.AsyncClient, make: Make) -> None:
    author = as_json((await make(UserFactory)).id)
    response = await client.post(
        "/posts", json={"author_id": author, "title": "T", "content": "C", "status": "secret"}
    )
    assert error_of(response, 422)["details"][0]["loc"] == ["body", "status"]


@pytest.mark.parametrize("field", ["title", "content", "status"])
async def test_patching_a_required_field_to_null_is_422(
    client: httpx.AsyncClient, api: FastAPI, make: Make, field: str
) -> None:
    post = await make(PostFactory)
    response = await client.patch(f"/posts/{post.id}", json={field: None})
    assert response.status_code == 422
    response = await client.patch(
        f"/posts/{post.id}", json={"published_at": None}, headers={"If-Match": f'"{post.version}"'}
    )
    assert response.status_code == 200
    assert (await client.get(f"/posts/{post.id}")).json()[field] == getattr(post, field)
    # The schema says so: the field may be left out, not set to null.
    schema = api.openapi()["components"]["schemas"]["PostUpdate"]["properties"]
    assert "null" not in str(schema[field])
    assert "null" in str(schema["published_at"])


@pytest.mark.parametrize("parameter", ["after", "author_id"])
@pytest.mark.parametrize("key", UNREPRESENTABLE_KEYS)
async def test_a_key_no_row_can_have_is_422_before_any_query(
    client: httpx.AsyncClient, assert_max_queries: QueryGuard, parameter: str, key: str
) -> None:
    with assert_max_queries(0):
        response = await client.get("/posts", params={parameter: key})
    assert error_of(response, 422)["details"][0]["loc"] == ["query", parameter]


@pytest.mark.isolated_db
async def test_posts_written_while_their_author_is_deleted_go_with_the_author(
    postgres_url: str, db_session: AsyncSession
) -> None:
    settings = Settings(database_url=SecretStr(postgres_url), pool_size=10, pool_timeout=30)
    async with client_for(create_app(settings)) as client:
        for round_ in range(RACE_ROUNDS):
            created = await client.post(
                "/users", json={"email": f"racer{round_}@example.com", "name": "Racer"}
            )
            author = created.json()["id"]
            body = {"author_id": author, "title": "Racing", "content": "the delete"}
            answers = await asyncio.gather(
                *(client.post("/posts", json=body) for _ in range(RACE_POSTS)),
                client.delete(f"/users/{author}"),
            )
            assert {answer.status_code for answer in answers} <= {201, 204, 422}
    # Every post is either refused or deleted with its author: none is left live.
    live_posts_of_deleted_authors = (
        select(func.count())
        .select_from(Post)
        .join(User, Post.author_id == User.id)
        .where(User.deleted_at.is_not(None), Post.deleted_at.is_(None))
        .execution_options(include_deleted=True)
    )
    assert await db_session.scalar(live_posts_of_deleted_authors) == 0
