"""The answers given to requests that named an Idempotency-Key, per operation."""

from datetime import datetime

from sqlalchemy import SmallInteger, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.package_name }}.db.base import Base


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    # The operation, e.g. "POST /transfers": one key may name a request to each.
    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # SHA-256 of the request's body: the same key with another body is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    # Empty until the request's work is done, in the same transaction. The body as sent,
    # byte for byte (jsonb would reorder its keys).
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    body: Mapped[str | None] = mapped_column(Text)
    # The headers the route set on its answer (ETag, Location), for the replay to repeat.
    headers: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)

    def __repr__(self) -> str:
        return f"IdempotencyKey(scope={self.scope!r}, key={self.key!r})"
