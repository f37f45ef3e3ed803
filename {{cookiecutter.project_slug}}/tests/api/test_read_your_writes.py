"""Read-your-writes over HTTP, with the app's reads on a real replica whose replay is paused
or which stops under the clients."""

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import make_url, text

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.api.dependencies import ReadSessionDep, SessionDep
from {{ cookiecutter.package_name }}.api.read_after import POSITION_COOKIE, POSITION_HEADER
from {{ cookiecutter.package_name }}.db.replicas.servers import ReplicaState
from tests.harness.replicas import ReplicaServer
from tests.harness.servers import Owner
from tests.replica_routing import (
    create_notes_table,
    eventually,
    replicas_of,
    routed_database,
    routed_settings,
    stop_while_serving,
    until_state,
)

notes = APIRouter()


@notes.put("/notes/{note_id}", status_code=204)
async def put_note(note_id: int, body: str, session: SessionDep) -> None:
    await session.execute(
        text("INSERT INTO notes (id, body) VALUES (:id, :body)"), {"id": note_id, "body": body}
    )


@notes.get("/notes/{note_id}")
async def get_note(note_id: int, session: ReadSessionDep) -> dict[str, object]:
    body, from_replica = (
        await session.execute(
            text("SELECT (SELECT body FROM notes WHERE id = :id), pg_is_in_recovery()"),
            {"id": note_id},
        )
    ).one()
    return {"body": body, "from_replica": from_replica}


@pytest.fixture
async def routed_app(
    postgres_url: str, replica_urls: list[str], replica: ReplicaServer, db_owner: Owner
) -> AsyncIterator[FastAPI]:
    await create_notes_table(db_owner)
    replica.wait_caught_up()
    settings = routed_settings(postgres_url, replica_urls)
    app = create_app(settings)
    app.include_router(notes)
    async with routed_database(settings) as database:
        app.state.database = database
        yield app


def client_of(app: FastAPI) -> httpx.AsyncClient:
    """A client with a cookie jar of its own, as a browser keeps one."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_a_client_reads_its_own_write_while_others_may_not_yet(
    routed_app: FastAPI, replica: ReplicaServer
) -> None:
    replica.pause_replay()
    async with client_of(routed_app) as writer, client_of(routed_app) as other:
        written = await writer.put("/notes/1", params={"body": "hello"})
        assert written.status_code == 204
        position = written.headers[POSITION_HEADER]
        assert writer.cookies[POSITION_COOKIE] == position

        # The cookie came back by itself: served by the primary, which has the write.
        assert (await writer.get("/notes/1")).json() == {"body": "hello", "from_replica": False}
        # Another client may see the replica's older data, within the lag bound.
        assert (await other.get("/notes/1")).json() == {"body": None, "from_replica": True}
        # A client without cookies sends the header back instead.
        echoed = await other.get("/notes/1", headers={POSITION_HEADER: position})
        assert echoed.json() == {"body": "hello", "from_replica": False}

        replica.resume_replay()
        replica.wait_caught_up()
        await replicas_of(routed_app.state.database).check()
        assert (await writer.get("/notes/1")).json() == {"body": "hello", "from_replica": True}


def test_the_api_document_says_how_to_read_your_writes(routed_app: FastAPI) -> None:
    assert routed_app.description is not None
    assert POSITION_HEADER in routed_app.description


async def test_only_a_request_that_commits_answers_with_a_position(routed_app: FastAPI) -> None:
    async with client_of(routed_app) as client:
        read = await client.get("/notes/1", headers={POSITION_HEADER: "not a position"})
        assert read.status_code == 200
        assert POSITION_HEADER not in read.headers
        assert "set-cookie" not in read.headers


async def test_ready_reports_each_replica_without_failing_for_one(
    routed_app: FastAPI, replica: ReplicaServer, replica_urls: list[str]
) -> None:
    async with client_of(routed_app) as client:
        ready = await client.get("/health/ready")
        assert ready.status_code == 200
        [reported] = ready.json()["replicas"]
        assert reported["state"] == "ok"
        assert isinstance(reported["lag_ms"], int)
        assert reported["name"] == make_url(replica_urls[0]).render_as_string(hide_password=True)

        replica.stop()
        await until_state(routed_app.state.database, ReplicaState.UNREACHABLE)
        ready = await client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["replicas"][0]["state"] == "unreachable"


async def test_no_client_sees_the_replica_stop_while_the_primary_is_up(
    routed_app: FastAPI, replica: ReplicaServer
) -> None:
    database = routed_app.state.database
    statuses: Counter[int] = Counter()
    from_replica: Counter[bool] = Counter()
    note_ids = itertools.count(1)

    async def write_and_read_back(client: httpx.AsyncClient) -> None:
        note = f"/notes/{next(note_ids)}"
        statuses[(await client.put(note, params={"body": "mine"})).status_code] += 1
        read = await client.get(note)
        statuses[read.status_code] += 1
        assert read.status_code != 200 or read.json()["body"] == "mine"

    async def read_without_writing(client: httpx.AsyncClient) -> None:
        # No position to wait for: the replica serves these.
        read = await client.get("/notes/0")
        statuses[read.status_code] += 1
        from_replica[read.status_code == 200 and read.json()["from_replica"]] += 1

    async def stop_under_traffic() -> None:
        if not replica.running:
            replica.start()
        await until_state(database, ReplicaState.OK)
        done = asyncio.Event()

        async def client(request: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
            async with client_of(routed_app) as http:
                while not done.is_set():
                    await request(http)

        traffic = asyncio.gather(
            *(client(write_and_read_back) for _ in range(4)),
            *(client(read_without_writing) for _ in range(4)),
        )
        try:
            served = from_replica[True]
            await eventually(lambda: from_replica[True] >= served + 20)
            await stop_while_serving(replica)
            await until_state(database, ReplicaState.UNREACHABLE)
            answered = statuses.total()
            await eventually(lambda: statuses.total() >= answered + 40)
        finally:
            done.set()
            await traffic

    # Which requests a stop catches is a race: two stops under steady traffic.
    for _ in range(2):
        await stop_under_traffic()
    assert [status for status in statuses if status >= 500] == []
