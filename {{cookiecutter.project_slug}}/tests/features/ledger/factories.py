"""Accounts and ledger lines for tests, in whole minor units that keep the checks."""

from polyfactory import Require, Use

from {{ cookiecutter.package_name }}.features.ledger.models import Account, Transfer
from tests.factories import TableFactory

# Balances and amounts in cents: up to 100,000.00, far from the bigint's bounds.
MOST_CENTS = 10_000_000
fake = TableFactory.__faker__
pick = TableFactory.__random__


class AccountFactory(TableFactory[Account]):
    name = Use(fake.company)
    balance = Use(pick.randint, 0, MOST_CENTS)


class TransferFactory(TableFactory[Transfer]):
    """A ledger line as stored, for history a test needs: money moves only through
    features/ledger/transfers.py's transfer(), which this does not call."""

    __set_foreign_keys__ = True
    source_id = Require()
    target_id = Require()
    amount = Use(pick.randint, 1, MOST_CENTS)
