"""Two editors of one post cannot overwrite each other: changes name the version they
were based on (If-Match), and a stale one changes nothing."""

import asyncio
from collections import Counter

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.features.blog.repositories import PostRepository
from {{ cookiecutter.package_name }}.repositories.errors import StaleVersion
from {{ cookiecutter.package_name }}.settings import Settings
from tests.api.conftest import client_for, error_of
from tests.factories import Make
from tests.features.blog.factories import PostFactory


async def read(client: httpx.AsyncClient, post_id: object) -> httpx.Response:
    response = await client.get(f"/posts/{post_id}")
    assert response.status_code == 200, response.text
    return response


async def test_every_answer_carries_the_posts_etag_and_a_change_moves_it(
    client: httpx.AsyncClient, make: Make
) -> None:
    post = await make(PostFactory)
    first = await read(client, post.id)
    assert first.headers["ETag"] == f'"{post.version}"'
    changed = await client.patch(
        f"/posts/{post.id}", json={"title": "Looms"}, headers={"If-Match": first.headers["ETag"]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] != first.headers["ETag"]
    assert (await read(client, post.id)).headers["ETag"] == changed.headers["ETag"]


async def test_a_change_based_on_a_stale_read_is_412_and_names_the_current_etag(
    client: httpx.AsyncClient, make: Make
) -> None:
    post = await make(PostFactory)
    stale = (await read(client, post.id)).headers["ETag"]
    current = await client.patch(
        f"/posts/{post.id}", json={"title": "Looms"}, headers={"If-Match": stale}
    )
    refused = await client.patch(
        f"/posts/{post.id}", json={"title": "Mills"}, headers={"If-Match": stale}
    )
    error = error_of(refused, 412)
    assert error["code"] == "precondition_failed"
    assert current.headers["ETag"] in error["message"]
    assert refused.headers["ETag"] == current.headers["ETag"]
    assert (await read(client, post.id)).json()["title"] == "Looms"
    gone = await client.delete(f"/posts/{post.id}", headers={"If-Match": stale})
    assert error_of(gone, 412)["code"] == "precondition_failed"


async def test_a_change_without_if_match_is_428(client: httpx.AsyncClient, make: Make) -> None:
    post = await make(PostFactory, title="Engines")
    refused = await client.patch(f"/posts/{post.id}", json={"title": "Looms"})
    assert error_of(refused, 428)["code"] == "precondition_required"
    assert (await read(client, post.id)).json()["title"] == "Engines"
    # Deleting names its version if it wants to: without If-Match it is made.
    assert (await client.delete(f"/posts/{post.id}")).status_code == 204


@pytest.mark.isolated_db
async def test_two_concurrent_changes_from_one_version_make_one_and_refuse_the_other(
    postgres_url: str, db_session: AsyncSession, make: Make
) -> None:
    post = await make(PostFactory)
    # The app below has an engine of its own: it sees committed rows only.
    await db_session.commit()
    settings = Settings(database_url=SecretStr(postgres_url))
    async with client_for(create_app(settings)) as client:
        etag = (await read(client, post.id)).headers["ETag"]
        answers = await asyncio.gather(
            *(
                client.patch(f"/posts/{post.id}", json={"title": title}, headers={"If-Match": etag})
                for title in ("Looms", "Mills")
            )
        )
        final = (await read(client, post.id)).json()
    assert Counter(answer.status_code for answer in answers) == {200: 1, 412: 1}
    (winner,) = (answer for answer in answers if answer.status_code == 200)
    assert final["title"] == winner.json()["title"]
    assert final["version"] == post.version + 1


async def test_the_repository_refuses_a_write_based_on_a_stale_row(
    db_session: AsyncSession, make: Make
) -> None:
    mine = await make(PostFactory)
    # Another transaction's change, as far as this session knows: the row moved on.
    await db_session.execute(
        text("UPDATE posts SET version = version + 1 WHERE id = :id"), {"id": mine.id}
    )
    with pytest.raises(StaleVersion, match="this Post was changed by another request"):
        await PostRepository(db_session).update(mine, title="Mills")
