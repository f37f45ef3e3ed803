"""Move money between accounts: both balances and the ledger change together or not at all."""

from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.package_name }}.db.base import Key
from {{ cookiecutter.package_name }}.features.ledger.models import Transfer
from {{ cookiecutter.package_name }}.features.ledger.repositories import AccountRepository, TransferRepository
from {{ cookiecutter.package_name }}.repositories.errors import NotFound


class InsufficientFunds(Exception):
    """The source account cannot cover the amount; nothing was changed."""

    def __init__(self, account_id: Key) -> None:
        super().__init__(f"Account {account_id} has insufficient funds for this transfer")
        self.account_id = account_id


async def transfer(session: AsyncSession, source_id: Key, target_id: Key, amount: int) -> Transfer:
    """Move `amount` from one account to another inside the caller's transaction.

    Run it with `run_in_transaction`, which retries it if PostgreSQL cancels it
    to break a conflict with another transaction.
    """
    if amount <= 0:
        raise ValueError(f"amount must be positive, got {amount}")
    if source_id == target_id:
        raise ValueError("source and target must be different accounts")
    accounts = await AccountRepository(session).lock((source_id, target_id))
    for key in (source_id, target_id):
        if key not in accounts:
            raise NotFound("Account", key)
    source, target = accounts[source_id], accounts[target_id]
    if source.balance < amount:
        raise InsufficientFunds(source_id)
    source.balance -= amount
    target.balance += amount
    return await TransferRepository(session).create(
        source_id=source_id, target_id=target_id, amount=amount
    )
