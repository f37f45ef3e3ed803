"""Accounts and transfers over HTTP: refused transfers change nothing."""

import httpx
import pytest


async def open_account(client: httpx.AsyncClient, balance: int) -> int:
    response = await client.post("/accounts", json={"name": "savings", "balance": balance})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def balance(client: httpx.AsyncClient, account_id: int) -> int:
    response = await client.get(f"/accounts/{account_id}")
    assert response.status_code == 200, response.text
    return int(response.json()["balance"])


async def test_a_transfer_moves_money(client: httpx.AsyncClient) -> None:
    source, target = await open_account(client, 100), await open_account(client, 0)
    response = await client.post(
        "/transfers", json={"source_id": source, "target_id": target, "amount": 40}
    )
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == 40
    assert (await balance(client, source), await balance(client, target)) == (60, 40)


async def test_insufficient_funds_is_409_and_changes_nothing(client: httpx.AsyncClient) -> None:
    source, target = await open_account(client, 10), await open_account(client, 0)
    response = await client.post(
        "/transfers", json={"source_id": source, "target_id": target, "amount": 11}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_funds"
    assert (await balance(client, source), await balance(client, target)) == (10, 0)


async def test_an_unknown_account_is_404(client: httpx.AsyncClient) -> None:
    source = await open_account(client, 10)
    response = await client.post(
        "/transfers", json={"source_id": source, "target_id": 999_999, "amount": 1}
    )
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Account 999999 not found"
    assert await balance(client, source) == 10


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"source_id": 1, "target_id": 1, "amount": 1}, id="same-account"),
        pytest.param({"source_id": 1, "target_id": 2, "amount": 0}, id="zero-amount"),
        pytest.param({"source_id": 1, "target_id": 2, "amount": -1}, id="negative-amount"),
        pytest.param({"source_id": 1, "target_id": 2, "amount": "1e3"}, id="not-an-integer"),
    ],
)
async def test_nonsense_is_422(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    response = await client.post("/transfers", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


async def test_a_negative_opening_balance_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/accounts", json={"name": "overdrawn", "balance": -1})
    assert response.status_code == 422
