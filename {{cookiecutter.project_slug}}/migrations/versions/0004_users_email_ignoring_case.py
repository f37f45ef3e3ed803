"""Make users' emails unique ignoring case: a unique index on lower(email).

Built CONCURRENTLY, outside the transaction, so that users stay writable meanwhile.
It fails while two rows differ only in the case of their email: merge them first.
A build that fails leaves an invalid index behind: DROP INDEX CONCURRENTLY
ix_users_lower_email before trying again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_users_lower_email",
            "users",
            [sa.literal_column("lower(email)")],
            unique=True,
            postgresql_concurrently=True,
        )
        op.drop_index("ix_users_email", table_name="users", postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_users_email", "users", ["email"], unique=True, postgresql_concurrently=True
        )
        op.drop_index("ix_users_lower_email", table_name="users", postgresql_concurrently=True)
