"""Soft delete for users and posts (db/soft_delete.py): a `deleted_at` column each, and
users' email unique (ignoring case) only among the users not deleted.

The new unique index is built CONCURRENTLY, beside the old one, before the old one goes,
so that the table takes writes throughout and the email stays unique meanwhile.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOWER_EMAIL: list[sa.ColumnElement[str]] = [sa.literal_column("lower(email)")]


def upgrade() -> None:
    for table in ("users", "posts"):
        op.add_column(table, sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_users_lower_email_live",
            "users",
            LOWER_EMAIL,
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL"),
            postgresql_concurrently=True,
        )
        op.drop_index("ix_users_lower_email", table_name="users", postgresql_concurrently=True)
    op.execute("ALTER INDEX ix_users_lower_email_live RENAME TO ix_users_lower_email")


def downgrade() -> None:
    # Fails while two users' emails match ignoring case, one of them deleted: resolve that
    # first.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_users_lower_email_all",
            "users",
            LOWER_EMAIL,
            unique=True,
            postgresql_concurrently=True,
        )
        op.drop_index("ix_users_lower_email", table_name="users", postgresql_concurrently=True)
    op.execute("ALTER INDEX ix_users_lower_email_all RENAME TO ix_users_lower_email")
    for table in ("posts", "users"):
        op.drop_column(table, "deleted_at")
