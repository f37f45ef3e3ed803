"""What every data-layer scenario works with: the sizes, the connections, the seeded rows.

The scenarios themselves are in sequential.py and concurrency.py; each adds its
variants' rows here, so that one runner reports them all.
"""

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import SecretStr
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from {{ cookiecutter.package_name }}.db.base import Key
from {{ cookiecutter.package_name }}.db.database import Database
from {{ cookiecutter.package_name }}.db.session import transaction
from {{ cookiecutter.package_name }}.features.blog.models import Post
from {{ cookiecutter.package_name }}.features.blog.repositories import UserRepository
from {{ cookiecutter.package_name }}.settings import Settings
from benchmarks.reporting import Figure, Row, best_time

GET_SQL = "SELECT id, email, name, is_active, created_at, updated_at FROM users WHERE id = $1"


@dataclass
class Sizes:
    bulk_rows: int = 100_000
    gets: int = 10_000
    listed_users: int = 1_000
    posts_per_user: int = 10
    concurrency: tuple[int, ...] = (8, 32, 64)
    ops_per_level: int = 10_000
    repeat: int = 3

    def scaled(self, factor: float) -> "Sizes":
        def scale(value: int) -> int:
            return max(1, int(value * factor))

        return Sizes(
            bulk_rows=scale(self.bulk_rows),
            gets=scale(self.gets),
            listed_users=scale(self.listed_users),
            posts_per_user=self.posts_per_user,
            concurrency=self.concurrency,
            ops_per_level=scale(self.ops_per_level),
            repeat=self.repeat,
        )


class Bench:
    def __init__(self, url: str, sizes: Sizes) -> None:
        self.sizes = sizes
        self.rows: list[Row] = []
        # Each scenario's first variant and its time: the ratios' denominator.
        self.baselines: dict[str, tuple[str, float]] = {}
        self.dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.settings = Settings(database_url=SecretStr(url))
        self.template = Database.from_settings(self.settings)
        # The seed's configuration, as most services run it.
        self.naive_engine = create_async_engine(
            url, pool_size=5, max_overflow=10, pool_pre_ping=True
        )

    def add(self, scenario: str, variant: str, seconds: float, **figures: Figure) -> None:
        baseline, baseline_seconds = self.baselines.setdefault(scenario, (variant, seconds))
        ratios = {baseline: seconds / baseline_seconds}
        self.rows.append(Row(scenario, variant, {"seconds": seconds, **figures}, ratios))

    def add_cpu_figures(
        self,
        scenario: str,
        measured: Mapping[str, tuple[float, float]],
        operations: int,
        unit: str,
        baseline: str,
    ) -> None:
        """A row per variant from its (wall, CPU) seconds: both per operation, and the CPU
        as a multiple of the first variant's, named `cpu_of_<baseline>`."""
        first_cpu = next(iter(measured.values()))[1]
        for variant, (wall, cpu) in measured.items():
            figures: dict[str, Figure] = {
                "cpu_us": round(cpu / operations * 1e6, 1),
                f"cpu_of_{baseline}": round(cpu / first_cpu, 3),
            }
            self.add(scenario, variant, wall / operations, unit=unit, **figures)

    async def time_each(
        self,
        scenario: str,
        variants: Mapping[str, Callable[[], Awaitable[None]]],
        *,
        reset: Callable[[], Awaitable[None]] | None = None,
        operations: int = 1,
        **figures: Figure,
    ) -> None:
        """Add each variant's best time of `repeat` runs, divided among a run's `operations`."""
        for variant, run in variants.items():
            seconds = await best_time(self.sizes.repeat, run, reset)
            self.add(scenario, variant, seconds / operations, **figures)

    async def open(self) -> None:
        # One raw connection, opened before any timing, for the asyncpg variants.
        self.raw = await asyncpg.connect(self.dsn)

    async def close(self) -> None:
        await self.raw.close()
        await self.template.dispose()
        await self.naive_engine.dispose()

    async def truncate(self) -> None:
        await self.raw.execute("TRUNCATE users, posts RESTART IDENTITY CASCADE")

    async def seed(self) -> list[Key]:
        """Users with posts for the read scenarios; returns the user keys."""
        await self.truncate()
        sessions = self.template.sessions
        async with transaction(sessions) as session:
            keys = await UserRepository(session).add_many(
                user_rows(max(self.sizes.listed_users, 1_000), "seed")
            )
            posts = [
                {"author_id": key, "title": f"post {n}", "content": "x" * 200}
                for key in keys
                for n in range(self.sizes.posts_per_user)
            ]
            await session.execute(insert(Post), posts)
        return keys


async def wall_and_cpu(run: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """One run's wall seconds and the CPU seconds this process spent on it."""
    wall, cpu = time.perf_counter(), time.process_time()
    await run()
    return time.perf_counter() - wall, time.process_time() - cpu


async def best_of(repeat: int, run: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """The fastest run's wall seconds and the least CPU seconds of this process, of `repeat`."""
    walls, cpus = zip(*[await wall_and_cpu(run) for _ in range(repeat)], strict=True)
    return min(walls), min(cpus)


@contextmanager
def counted(engine: AsyncEngine, event_name: str) -> Iterator[list[int]]:
    """How many times `event_name` fires on the engine (statements, new connections)."""
    count = [0]

    def bump(*args: Any) -> None:
        count[0] += 1

    target = engine.sync_engine if event_name.endswith("execute") else engine.sync_engine.pool
    event.listen(target, event_name, bump)
    try:
        yield count
    finally:
        event.remove(target, event_name, bump)


def user_rows(count: int, prefix: str = "bulk") -> list[dict[str, Any]]:
    return [{"email": f"{prefix}{i}@example.com", "name": f"User {i}"} for i in range(count)]
