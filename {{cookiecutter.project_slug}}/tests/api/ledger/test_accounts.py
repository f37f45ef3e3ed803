"""Accounts and transfers over HTTP: refused transfers change nothing."""

import httpx
import pytest

from tests.api.conftest import error_of
from tests.factories import Make
from tests.features.ledger.factories import AccountFactory
from tests.harness.queries import QueryGuard
from tests.keys import MISSING_KEY, JsonKey, as_json, new_key

# Two well-formed keys: the body is refused for its other fields.
ONE, TWO = as_json(new_key(1)), as_json(new_key(2))


async def open_account(client: httpx.AsyncClient, balance: int) -> JsonKey:
    response = await client.post("/accounts", json={"name": "savings", "balance": balance})
    assert response.status_code == 201, response.text
    key: JsonKey = response.json()["id"]
    return key


async def open_accounts(make: Make, *balances: int) -> list[JsonKey]:
    """Accounts with these balances, made in the test's transaction: their keys in JSON."""
    return [as_json((await make(AccountFactory, balance=balance)).id) for balance in balances]


async def balance(client: httpx.AsyncClient, account_id: JsonKey) -> int:
    response = await client.get(f"/accounts/{account_id}")
    assert response.status_code == 200, response.text
    return int(response.json()["balance"])


async def test_a_transfer_moves_money(client: httpx.AsyncClient, make: Make) -> None:
    source, target = await open_accounts(make, 100, 0)
    response = await client.post(
        "/transfers", json={"source_id": source, "target_id": target, "amount": 40}
    )
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == 40
    assert (await balance(client, source), await balance(client, target)) == (60, 40)


async def test_insufficient_funds_is_409_and_changes_nothing(
    client: httpx.AsyncClient, make: Make
) -> None:
    source, target = await open_accounts(make, 10, 0)
    response = await client.post(
        "/transfers", json={"source_id": source, "target_id": target, "amount": 11}
    )
    assert error_of(response, 409)["code"] == "insufficient_funds"
    assert (await balance(client, source), await balance(client, target)) == (10, 0)


async def test_an_unknown_account_is_404(client: httpx.AsyncClient, make: Make) -> None:
    (source,) = await open_accounts(make, 10)
    response = await client.post(
        "/transfers", json={"source_id": source, "target_id": as_json(MISSING_KEY), "amount": 1}
    )
    assert error_of(response, 404)["message"] == f"Account {MISSING_KEY} not found"
    assert await balance(client, source) == 10


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"source_id": ONE, "target_id": ONE, "amount": 1}, id="same-account"),
        pytest.param({"source_id": ONE, "target_id": TWO, "amount": 0}, id="zero-amount"),
        pytest.param({"source_id": ONE, "target_id": TWO, "amount": -1}, id="negative-amount"),
        pytest.param({"source_id": ONE, "target_id": TWO, "amount": "1e3"}, id="not-an-integer"),
        pytest.param({"source_id": ONE, "target_id": TWO, "amount": "12"}, id="numeric-string"),
        pytest.param({"source_id": ONE, "target_id": TWO, "amount": True}, id="boolean"),
        pytest.param({"source_id": ONE, "target_id": TWO, "amount": 1.5}, id="fraction"),
        pytest.param({"source_id": ONE, "target_id": TWO, "amount": 2**63}, id="past-bigint"),
    ],
)
async def test_nonsense_is_422(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    response = await client.post("/transfers", json=body)
    assert error_of(response, 422)["code"] == "invalid_input"


@pytest.mark.parametrize(
    "balance",
    [
        pytest.param(-1, id="negative"),
        pytest.param(False, id="boolean"),
        pytest.param("12", id="numeric-string"),
        pytest.param(12.0, id="float"),
        pytest.param(0.5, id="fraction"),
        pytest.param(2**63, id="past-bigint"),
    ],
)
async def test_an_opening_balance_that_is_not_whole_cents_is_422(
    client: httpx.AsyncClient, assert_max_queries: QueryGuard, balance: object
) -> None:
    with assert_max_queries(0):
        response = await client.post("/accounts", json={"name": "0", "balance": balance})
    assert error_of(response, 422)["details"][0]["loc"] == ["body", "balance"]


async def test_the_largest_balance_a_bigint_holds_is_accepted(client: httpx.AsyncClient) -> None:
    account = await open_account(client, 2**63 - 1)
    assert await balance(client, account) == 2**63 - 1
