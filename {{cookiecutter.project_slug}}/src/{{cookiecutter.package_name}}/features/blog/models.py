"""Users and the posts they write.

lazy="raise" on both sides of the relationship: a query says what it loads
(selectinload, joinedload) instead of loading it by accident, one row at a time.
"""

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, String, Text, func, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from {{ cookiecutter.package_name }}.db.base import Base, Key, TimestampMixin, VersionedMixin, primary_key
from {{ cookiecutter.package_name }}.db.soft_delete import SoftDeleteMixin


class User(SoftDeleteMixin, TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (Index(None, "is_active", "created_at"),)

    id: Mapped[Key] = primary_key()
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())

    posts: Mapped[list["Post"]] = relationship(
        back_populates="author",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
        order_by="Post.id",
    )

    def __repr__(self) -> str:
        return f"User(id={self.id!r})"


# Addresses that differ only in case are one user's: unique ignoring case, stored as
# written, among the users not deleted (a deleted user's email may sign up again);
# get_by_email looks them up through it. Made here, as the expression needs the column
# (and a 409 then names it).
Index(
    "ix_users_lower_email",
    func.lower(User.email),
    unique=True,
    postgresql_where=User.deleted_at.is_(None),
)


class PostStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class Post(SoftDeleteMixin, VersionedMixin, TimestampMixin, Base):
    __tablename__ = "posts"
    __table_args__ = (
        # Serves "an author's posts, newest first" and the foreign key lookups.
        Index(None, "author_id", "published_at"),
        CheckConstraint("views >= 0", name="views_not_negative"),
    )

    id: Mapped[Key] = primary_key()
    author_id: Mapped[Key] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    views: Mapped[int] = mapped_column(default=0, server_default="0")
    published_at: Mapped[datetime | None]
    # A PostgreSQL enum type: migrations must create it before the column and
    # drop it after (see migrations/versions/0003_post_status.py).
    status: Mapped[PostStatus] = mapped_column(
        Enum(PostStatus, name="post_status", values_callable=lambda kind: [m.value for m in kind]),
        default=PostStatus.DRAFT,
        server_default=PostStatus.DRAFT.value,
    )

    author: Mapped[User] = relationship(back_populates="posts", lazy="raise")

    def __repr__(self) -> str:
        return f"Post(id={self.id!r}, author_id={self.author_id!r})"
