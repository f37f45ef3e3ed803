from typing import TYPE_CHECKING

from sqlalchemy import Index, String, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from {{ cookiecutter.package_name }}.db.base import Base, Key, TimestampMixin, primary_key

if TYPE_CHECKING:
    from {{ cookiecutter.package_name }}.models.post import Post


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (Index(None, "is_active", "created_at"),)

    id: Mapped[Key] = primary_key()
    # unique + index make one unique index (ix_users_email), not two structures.
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())

    # lazy="raise": load posts explicitly (selectinload) instead of by accident.
    posts: Mapped[list["Post"]] = relationship(
        back_populates="author",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
        order_by="Post.id",
    )

    def __repr__(self) -> str:
        return f"User(id={self.id!r})"
