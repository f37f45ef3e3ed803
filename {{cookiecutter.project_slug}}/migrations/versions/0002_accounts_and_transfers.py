"""Create accounts and the transfers ledger.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        {% if cookiecutter.id_type == "uuid" %}sa.Column("id", sa.Uuid(), nullable=False),{% else %}sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),{% endif %}
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_accounts_balance_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_table(
        "transfers",
        {% if cookiecutter.id_type == "uuid" %}sa.Column("id", sa.Uuid(), nullable=False),{% else %}sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),{% endif %}
        sa.Column("source_id", sa.{% if cookiecutter.id_type == "uuid" %}Uuid{% else %}BigInteger{% endif %}(), nullable=False),
        sa.Column("target_id", sa.{% if cookiecutter.id_type == "uuid" %}Uuid{% else %}BigInteger{% endif %}(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_transfers_amount_positive")),
        sa.CheckConstraint("source_id <> target_id", name=op.f("ck_transfers_distinct_accounts")),
        sa.ForeignKeyConstraint(
            ["source_id"], ["accounts.id"], name=op.f("fk_transfers_source_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["target_id"], ["accounts.id"], name=op.f("fk_transfers_target_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
    )
    op.create_index(op.f("ix_transfers_source_id"), "transfers", ["source_id"], unique=False)
    op.create_index(op.f("ix_transfers_target_id"), "transfers", ["target_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_transfers_target_id"), table_name="transfers")
    op.drop_index(op.f("ix_transfers_source_id"), table_name="transfers")
    op.drop_table("transfers")
    op.drop_table("accounts")
