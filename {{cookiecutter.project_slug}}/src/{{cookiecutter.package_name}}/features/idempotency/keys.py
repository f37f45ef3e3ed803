"""Claim a key before the work, record the answer after it, in the work's transaction."""

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import BaseModel
from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import func

from {{ cookiecutter.package_name }}.features.idempotency.models import IdempotencyKey

# Expired keys are deleted a batch at a time, at most this often per process.
PRUNE_EVERY_SECONDS = 60.0
PRUNE_BATCH = 100
# Headers of the transport, which the replay sets anew.
FRAMING = {"content-length", "content-type"}


class Replayed(Exception):
    """The key's request was done before: give its answer again."""

    def __init__(self, status_code: int, body: str, headers: Mapping[str, str]) -> None:
        super().__init__(f"replayed answer {status_code}")
        self.status_code = status_code
        self.body = body
        self.headers = headers


class KeyReused(Exception):
    """The key was used before with another request body."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was used with another request body; "
            "use a new key for a new request"
        )


class KeyUnfinished(Exception):
    """The key's request committed without recording its answer."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the request with Idempotency-Key {key!r} has no answer recorded")


def request_hash(body: BaseModel) -> str:
    """The body as its fields say, whatever its spacing or key order."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class PruneClock:
    """When this process last deleted expired keys."""

    last: float = field(default_factory=lambda: float("-inf"))

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < PRUNE_EVERY_SECONDS:
            return False
        self.last = now
        return True


PRUNE_CLOCK = PruneClock()


async def prune(session: AsyncSession, ttl: timedelta) -> int:
    """Delete up to a batch of expired keys; rows another transaction holds are skipped,
    so this never waits."""
    expired = (
        select(IdempotencyKey.scope, IdempotencyKey.key)
        .where(IdempotencyKey.created_at < func.now() - ttl)
        .limit(PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        delete(IdempotencyKey).where(
            tuple_(IdempotencyKey.scope, IdempotencyKey.key).in_(expired.scalar_subquery())
        )
    )
    return int(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class Idempotency:
    """The Idempotency-Key of one request (None: none was sent) and its operation."""

    scope: str
    key: str | None
    ttl: timedelta

    async def claim(self, session: AsyncSession, body: BaseModel) -> None:
        """Take the key for this request, in the session's transaction; raise Replayed
        when it was done before, KeyReused when the key named another body."""
        if self.key is None:
            return
        if PRUNE_CLOCK.due():
            await prune(session, self.ttl)
        digest = request_hash(body)
        fresh = insert(IdempotencyKey).values(
            scope=self.scope, key=self.key, request_hash=digest, status_code=None, body=None
        )
        # An expired key is taken over; a live one, once its transaction is over, is not.
        claimed = await session.scalar(
            fresh.on_conflict_do_update(
                index_elements=[IdempotencyKey.scope, IdempotencyKey.key],
                set_={
                    "request_hash": fresh.excluded.request_hash,
                    "status_code": None,
                    "body": None,
                    "created_at": func.now(),
                },
                where=IdempotencyKey.created_at < func.now() - self.ttl,
            ).returning(IdempotencyKey.key)
        )
        if claimed is not None:
            return
        stored = (
            await session.execute(
                select(
                    IdempotencyKey.request_hash,
                    IdempotencyKey.status_code,
                    IdempotencyKey.body,
                    IdempotencyKey.headers,
                ).where(IdempotencyKey.scope == self.scope, IdempotencyKey.key == self.key)
            )
        ).one()
        if stored.request_hash != digest:
            raise KeyReused(self.key)
        if stored.status_code is None or stored.body is None:
            raise KeyUnfinished(self.key)
        raise Replayed(stored.status_code, stored.body, stored.headers or {})

    async def record(
        self,
        session: AsyncSession,
        answer: BaseModel,
        status_code: int,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Store the answer with the key, in the transaction that did the work: its body,
        status and the `headers` the route set (its `Response`'s, such as ETag)."""
        if self.key is None:
            return
        kept = {name: value for name, value in (headers or {}).items() if name not in FRAMING}
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.scope == self.scope, IdempotencyKey.key == self.key)
            .values(status_code=status_code, body=answer.model_dump_json(), headers=kept)
        )
