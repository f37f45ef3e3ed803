"""Accounts, and the ledger of transfers between them: balances never go below zero."""

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.package_name }}.db.base import Base, CreatedAtMixin, Key, TimestampMixin, primary_key


class Account(TimestampMixin, Base):
    __tablename__ = "accounts"
    # The last line of defence: no code path can leave a balance below zero.
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)

    id: Mapped[Key] = primary_key()
    name: Mapped[str] = mapped_column(String(100))
    # In minor units (cents): integers add up exactly, floats do not.
    balance: Mapped[int] = mapped_column(BigInteger)

    def __repr__(self) -> str:
        return f"Account(id={self.id!r})"


class Transfer(CreatedAtMixin, Base):
    """One line of the ledger: every successful transfer, never updated."""

    __tablename__ = "transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("source_id <> target_id", name="distinct_accounts"),
    )

    id: Mapped[Key] = primary_key()
    source_id: Mapped[Key] = mapped_column(ForeignKey("accounts.id"), index=True)
    target_id: Mapped[Key] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)

    def __repr__(self) -> str:
        return f"Transfer(id={self.id!r}, amount={self.amount!r})"
