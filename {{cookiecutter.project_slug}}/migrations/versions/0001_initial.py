"""{% if cookiecutter.include_example_models %}Create users and posts.{% else %}Initial revision: the starting point for the project's own tables.{% endif %}

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence
{% if cookiecutter.include_example_models %}
import sqlalchemy as sa
from alembic import op
{% endif %}
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


{% if cookiecutter.include_example_models -%}
def upgrade() -> None:
    op.create_table(
        "users",
        {% if cookiecutter.id_type == "uuid" %}sa.Column("id", sa.Uuid(), nullable=False),{% else %}sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),{% endif %}
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index(op.f("ix_users_email"), "users", ["email"], unique=True)
    op.create_index(
        op.f("ix_users_is_active_created_at"), "users", ["is_active", "created_at"], unique=False
    )
    op.create_table(
        "posts",
        {% if cookiecutter.id_type == "uuid" %}sa.Column("id", sa.Uuid(), nullable=False),{% else %}sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),{% endif %}
        sa.Column("author_id", sa.{% if cookiecutter.id_type == "uuid" %}Uuid{% else %}BigInteger{% endif %}(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("views", sa.Integer(), server_default="0", nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("views >= 0", name=op.f("ck_posts_views_not_negative")),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_posts_author_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
    )
    op.create_index(
        op.f("ix_posts_author_id_published_at"),
        "posts",
        ["author_id", "published_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_posts_author_id_published_at"), table_name="posts")
    op.drop_table("posts")
    op.drop_index(op.f("ix_users_is_active_created_at"), table_name="users")
    op.drop_index(op.f("ix_users_email"), table_name="users")
    op.drop_table("users")
{%- else -%}
def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
{%- endif %}
