"""The ledger's factories keep its checks, a thousand rows at a time: balances never
negative, amounts positive, between two accounts."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.package_name }}.features.ledger.models import Account, Transfer
from tests.factories import Make
from tests.features.ledger.factories import AccountFactory, TransferFactory

ROWS = 1_000


async def test_a_thousand_accounts_and_ledger_lines_keep_every_check(
    make: Make, db_session: AsyncSession
) -> None:
    source, target, *_ = await make.batch(AccountFactory, ROWS)
    await make.batch(TransferFactory, ROWS, source_id=source.id, target_id=target.id)
    accounts = select(func.count(), func.min(Account.balance)).select_from(Account)
    count, lowest = (await db_session.execute(accounts)).one()
    assert (count, lowest >= 0) == (ROWS, True)
    lines = select(func.count(), func.min(Transfer.amount)).select_from(Transfer)
    count, smallest = (await db_session.execute(lines)).one()
    assert (count, smallest > 0) == (ROWS, True)
