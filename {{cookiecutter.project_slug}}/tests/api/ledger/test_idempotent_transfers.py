"""A transfer retried with its Idempotency-Key moves money once and answers the same."""

import asyncio
import uuid
from collections import Counter

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.features.idempotency import keys
from {{ cookiecutter.package_name }}.features.idempotency.api import REPLAYED_HEADER
from {{ cookiecutter.package_name }}.features.idempotency.keys import Idempotency
from {{ cookiecutter.package_name }}.features.idempotency.models import IdempotencyKey
from {{ cookiecutter.package_name }}.features.ledger.models import Transfer
from {{ cookiecutter.package_name }}.settings import Settings
from tests.api.conftest import client_for, error_of
from tests.api.ledger.test_accounts import balance, open_account, open_accounts
from tests.factories import Make
from tests.keys import JsonKey

CONCURRENT_SENDS = 50


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def send(
    client: httpx.AsyncClient, source: JsonKey, target: JsonKey, amount: int, key: str
) -> httpx.Response:
    body = {"source_id": source, "target_id": target, "amount": amount}
    return await client.post("/transfers", json=body, headers=keyed(key))


async def test_a_retry_gets_the_first_answer_and_moves_money_once(
    client: httpx.AsyncClient, make: Make
) -> None:
    source, target = await open_accounts(make, 100, 0)
    key = str(uuid.uuid4())
    first = await send(client, source, target, 30, key)
    again = await send(client, source, target, 30, key)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.json() == first.json()
    assert REPLAYED_HEADER not in first.headers
    assert again.headers[REPLAYED_HEADER] == "true"
    assert (await balance(client, source), await balance(client, target)) == (70, 30)


async def test_the_same_key_with_another_body_is_422_and_moves_nothing(
    client: httpx.AsyncClient, make: Make
) -> None:
    source, target = await open_accounts(make, 100, 0)
    key = str(uuid.uuid4())
    assert (await send(client, source, target, 30, key)).status_code == 201
    refused = error_of(await send(client, source, target, 31, key), 422)
    assert refused["code"] == "idempotency_key_reused"
    assert key in refused["message"]
    assert (await balance(client, source), await balance(client, target)) == (70, 30)


async def test_without_a_key_each_request_is_its_own(client: httpx.AsyncClient, make: Make) -> None:
    source, target = await open_accounts(make, 100, 0)
    body = {"source_id": source, "target_id": target, "amount": 10}
    for _ in range(2):
        assert (await client.post("/transfers", json=body)).status_code == 201
    assert await balance(client, target) == 20


async def test_a_key_is_per_operation_and_a_malformed_one_is_422(
    client: httpx.AsyncClient, make: Make
) -> None:
    key = str(uuid.uuid4())
    account = await client.post("/accounts", json={"name": "a", "balance": 5}, headers=keyed(key))
    assert account.status_code == 201
    source, (target,) = account.json()["id"], await open_accounts(make, 0)
    # Accounts take no key: the same key still names a first transfer.
    assert (await send(client, source, target, 5, key)).status_code == 201
    for malformed in ("", "with space", "x" * 256):
        response = await send(client, source, target, 5, malformed)
        assert error_of(response, 422)["details"][0]["loc"] == ["header", "Idempotency-Key"]


async def test_a_refused_transfer_stores_nothing_and_its_retry_runs_again(
    client: httpx.AsyncClient, make: Make
) -> None:
    source, target, top_up = await open_accounts(make, 10, 0, 50)
    key = str(uuid.uuid4())
    assert error_of(await send(client, source, target, 20, key), 409)["code"] == (
        "insufficient_funds"
    )
    assert (await send(client, top_up, source, 10, str(uuid.uuid4()))).status_code == 201
    assert (await send(client, source, target, 20, key)).status_code == 201
    assert await balance(client, target) == 20


@pytest.mark.isolated_db
async def test_concurrent_sends_of_one_transfer_move_money_once(
    postgres_url: str, db_session: AsyncSession
) -> None:
    settings = Settings(database_url=SecretStr(postgres_url), pool_size=20, pool_timeout=30)
    async with client_for(create_app(settings)) as client:
        source, target = await open_account(client, 1000), await open_account(client, 0)
        key = str(uuid.uuid4())
        answers = await asyncio.gather(
            *(send(client, source, target, 7, key) for _ in range(CONCURRENT_SENDS))
        )
        assert await balance(client, target) == 7
    assert Counter(answer.status_code for answer in answers) == {201: CONCURRENT_SENDS}
    assert len({answer.text for answer in answers}) == 1
    replayed = sum(REPLAYED_HEADER in answer.headers for answer in answers)
    assert replayed == CONCURRENT_SENDS - 1
    assert await db_session.scalar(select(func.count()).select_from(Transfer)) == 1


@pytest.mark.isolated_db
async def test_a_crash_before_the_answer_is_stored_leaves_no_transfer(
    postgres_url: str, db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=SecretStr(postgres_url))
    crash = True
    record = Idempotency.record

    async def crashing_record(self: Idempotency, session: AsyncSession, *args: object) -> None:
        # The server goes away with the transfer made and its answer not yet stored.
        if crash:
            await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        await record(self, session, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Idempotency, "record", crashing_record)
    async with client_for(create_app(settings)) as client:
        source, target = await open_account(client, 100), await open_account(client, 0)
        key = str(uuid.uuid4())
        assert (await send(client, source, target, 40, key)).status_code >= 500
        assert await db_session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
        crash = False
        assert (await send(client, source, target, 40, key)).status_code == 201
        assert (await balance(client, source), await balance(client, target)) == (60, 40)


@pytest.mark.isolated_db
async def test_an_expired_key_is_taken_afresh_and_pruned(
    postgres_url: str, db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=SecretStr(postgres_url), idempotency_ttl=1)
    async with client_for(create_app(settings)) as client:
        source, target = await open_account(client, 100), await open_account(client, 0)
        key, stale = str(uuid.uuid4()), str(uuid.uuid4())
        assert (await send(client, source, target, 10, key)).status_code == 201
        assert (await send(client, source, target, 10, stale)).status_code == 201
        await db_session.execute(
            text("UPDATE idempotency_keys SET created_at = now() - interval '1 hour'")
        )
        await db_session.commit()
        # An expired key names a new request: money moves again.
        again = await send(client, source, target, 10, key)
        assert (again.status_code, REPLAYED_HEADER in again.headers) == (201, False)
        monkeypatch.setattr(keys, "PRUNE_CLOCK", keys.PruneClock())
        assert (await send(client, source, target, 10, str(uuid.uuid4()))).status_code == 201
        assert await balance(client, target) == 40
    remaining = await db_session.scalars(select(IdempotencyKey.key))
    assert stale not in set(remaining)
