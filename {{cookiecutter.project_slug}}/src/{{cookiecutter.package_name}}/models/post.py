from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Identity, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from {{ cookiecutter.package_name }}.db.base import Base, TimestampMixin

if TYPE_CHECKING:
    from {{ cookiecutter.package_name }}.models.user import User


class Post(TimestampMixin, Base):
    __tablename__ = "posts"
    __table_args__ = (
        # Serves "an author's posts, newest first" and the foreign key lookups.
        Index(None, "author_id", "published_at"),
        CheckConstraint("views >= 0", name="views_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    views: Mapped[int] = mapped_column(default=0, server_default="0")
    published_at: Mapped[datetime | None]

    author: Mapped["User"] = relationship(back_populates="posts", lazy="raise")

    def __repr__(self) -> str:
        return f"Post(id={self.id!r}, author_id={self.author_id!r})"
