"""Give posts a status, a PostgreSQL enum.

An enum column needs its type created first and dropped last: autogenerate
writes neither for an added column, and a downgrade that only drops the column
leaves the type behind, so upgrading again fails with "type already exists".

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# create_type=False: the type is created and dropped explicitly below.
post_status = postgresql.ENUM(
    "draft", "published", "archived", name="post_status", create_type=False
)


def upgrade() -> None:
    post_status.create(op.get_bind())
    op.add_column("posts", sa.Column("status", post_status, server_default="draft", nullable=False))


def downgrade() -> None:
    op.drop_column("posts", "status")
    post_status.drop(op.get_bind())
