"""Data access for accounts and the ledger of transfers."""

from collections.abc import Collection

from sqlalchemy import select

from {{ cookiecutter.package_name }}.db.base import Key
from {{ cookiecutter.package_name }}.features.ledger.models import Account, Transfer
from {{ cookiecutter.package_name }}.repositories.base import Repository


class AccountRepository(Repository[Account]):
    model = Account

    async def lock(self, keys: Collection[Key]) -> dict[Key, Account]:
        """Lock the accounts with these keys for this transaction (SELECT ... FOR UPDATE).

        Rows are locked in key order whatever order the keys come in, so two
        transactions locking the same accounts cannot deadlock each other.
        `populate_existing` replaces any balance loaded before the lock was held.
        """
        statement = (
            select(Account)
            .where(Account.id.in_(keys))
            .order_by(Account.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return {account.id: account for account in await self._scalars(statement)}


class TransferRepository(Repository[Transfer]):
    model = Transfer
