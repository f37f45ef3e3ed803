"""Transfers: money moves with its ledger line or not at all, also under heavy concurrency."""

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from functools import partial

import pytest
from pydantic import SecretStr
from sqlalchemy import event, func, select
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from {{ cookiecutter.package_name }}.db.base import Key
from {{ cookiecutter.package_name }}.db.engine import create_async_engine_from_settings
from {{ cookiecutter.package_name }}.db.retry import is_retryable, run_in_transaction
from {{ cookiecutter.package_name }}.db.session import make_session_factory, transaction
from {{ cookiecutter.package_name }}.features.ledger.models import Account, Transfer
from {{ cookiecutter.package_name }}.features.ledger.transfers import InsufficientFunds, transfer
from {{ cookiecutter.package_name }}.repositories.errors import NotFound
from {{ cookiecutter.package_name }}.settings import Settings
from tests.factories import Make
from tests.features.ledger.factories import AccountFactory
from tests.harness.replicas import ReplicaServer
from tests.keys import MISSING_KEY
from tests.replica_routing import routed_database, routed_settings, the_replica


async def open_accounts(make: Make, *balances: int) -> list[Key]:
    return [(await make(AccountFactory, balance=balance)).id for balance in balances]


async def balances(session: AsyncSession) -> dict[Key, int]:
    return dict((await session.execute(select(Account.id, Account.balance))).all())


async def ledger_size(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Transfer)) or 0


async def test_moves_the_amount_and_writes_the_ledger(
    db_sessions: async_sessionmaker[AsyncSession], db_session: AsyncSession, make: Make
) -> None:
    source, target = await open_accounts(make, 100, 5)
    async with transaction(db_sessions) as session:
        line = await transfer(session, source, target, 30)
    assert (line.source_id, line.target_id, line.amount) == (source, target, 30)
    assert line.created_at is not None
    assert await balances(db_session) == {source: 70, target: 35}
    assert await ledger_size(db_session) == 1


async def test_insufficient_funds_changes_nothing(
    db_sessions: async_sessionmaker[AsyncSession], db_session: AsyncSession, make: Make
) -> None:
    source, target = await open_accounts(make, 10, 0)
    with pytest.raises(InsufficientFunds, match=f"Account {source} has insufficient funds"):
        async with transaction(db_sessions) as session:
            await transfer(session, source, target, 11)
    assert await balances(db_session) == {source: 10, target: 0}
    assert await ledger_size(db_session) == 0


async def test_unknown_account_is_not_found(
    db_sessions: async_sessionmaker[AsyncSession], db_session: AsyncSession, make: Make
) -> None:
    (source,) = await open_accounts(make, 10)
    with pytest.raises(NotFound, match=f"Account {MISSING_KEY} not found"):
        async with transaction(db_sessions) as session:
            await transfer(session, source, MISSING_KEY, 1)
    assert await balances(db_session) == {source: 10}


@pytest.mark.parametrize(
    ("amount", "same_account", "message"),
    [
        pytest.param(0, False, "amount must be positive", id="zero-amount"),
        pytest.param(-5, False, "amount must be positive", id="negative-amount"),
        pytest.param(1, True, "different accounts", id="same-account"),
    ],
)
async def test_nonsense_is_refused_before_touching_the_database(
    db_session: AsyncSession, make: Make, amount: int, same_account: bool, message: str
) -> None:
    source, target = await open_accounts(make, 10, 10)
    with pytest.raises(ValueError, match=message):
        await transfer(db_session, source, source if same_account else target, amount)
    assert await balances(db_session) == {source: 10, target: 10}


ACCOUNTS = 10
OPENING_BALANCE = 1_000
TRANSFERS = 300
TASKS = 32


@pytest.fixture
async def wide_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine with a connection per task, so the tasks really run side by side."""
    settings = Settings(database_url=SecretStr(postgres_url), pool_size=TASKS, max_overflow=0)
    engine = create_async_engine_from_settings(settings)
    yield engine
    await engine.dispose()


@pytest.mark.isolated_db
async def test_concurrent_transfers_keep_the_books_balanced(
    wide_engine: AsyncEngine, db_session: AsyncSession, make: Make
) -> None:
    keys = await open_accounts(make, *[OPENING_BALANCE] * ACCOUNTS)
    await db_session.commit()
    sessions = make_session_factory(wide_engine)
    # A fixed seed: a failure replays with the same transfers.
    plan = random.Random(20261128)
    transfers: list[tuple[Key, Key, int]] = []
    for _ in range(TRANSFERS):
        source, target = plan.sample(keys, 2)
        transfers.append((source, target, plan.randint(1, OPENING_BALANCE // 2)))
    outcomes: Counter[str] = Counter()
    deadlocks: list[str] = []

    def record_deadlock(context: ExceptionContext) -> None:
        if isinstance(context.sqlalchemy_exception, DBAPIError) and is_retryable(
            context.sqlalchemy_exception
        ):
            deadlocks.append(str(context.statement))

    # The retry would hide deadlocks; the fixed lock order must prevent them.
    event.listen(wide_engine.sync_engine, "handle_error", record_deadlock)

    async def worker(mine: list[tuple[Key, Key, int]]) -> None:
        for source, target, amount in mine:
            work = partial(transfer, source_id=source, target_id=target, amount=amount)
            try:
                await run_in_transaction(work, sessions)
                outcomes["done"] += 1
            except InsufficientFunds:
                outcomes["refused"] += 1

    # Any other error (a deadlock, a serialization failure) escapes gather and fails the test.
    await asyncio.gather(*(worker(transfers[task::TASKS]) for task in range(TASKS)))

    final = await balances(db_session)
    assert sum(final.values()) == ACCOUNTS * OPENING_BALANCE
    assert min(final.values()) >= 0
    assert outcomes["done"] + outcomes["refused"] == TRANSFERS
    assert outcomes["done"] == await ledger_size(db_session)
    assert outcomes["refused"] > 0, "no transfer was refused: the amounts do not test the rule"
    # Each balance is its opening balance plus what the ledger says came in and went out.
    ledger = select(Transfer.source_id, Transfer.target_id, Transfer.amount)
    expected = dict.fromkeys(keys, OPENING_BALANCE)
    for source, target, amount in await db_session.execute(ledger):
        expected[source] -= amount
        expected[target] += amount
    assert final == expected
    assert deadlocks == [], f"{len(deadlocks)} transactions were cancelled to break a deadlock"


async def test_transfers_with_replicas_lock_and_read_their_rows_on_the_primary(
    postgres_url: str, replica_urls: list[str], replica: ReplicaServer
) -> None:
    async with routed_database(routed_settings(postgres_url, replica_urls)) as database:
        replica_checkouts: list[object] = []
        event.listen(
            the_replica(database).engine.sync_engine,
            "checkout",
            lambda *args: replica_checkouts.append(args),
        )
        # Nothing a transfer does can reach the replica now, not even what it reads.
        replica.pause_replay()
        async with transaction(database.sessions) as session:
            source, target = await open_accounts(Make(session), 100, 0)
        await run_in_transaction(
            partial(transfer, source_id=source, target_id=target, amount=40), database.sessions
        )
        async with transaction(database.sessions) as session:
            assert await balances(session) == {source: 60, target: 40}
        assert replica_checkouts == []
