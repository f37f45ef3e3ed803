"""Benchmark the data layer's idioms against raw asyncpg and the naive SQLAlchemy ones.

    uv run python benchmarks/data_layer.py              # on a throwaway cluster
    uv run python benchmarks/data_layer.py --scale 0.1  # a tenth of the work, quicker

Every figure comes from one run on one server (a throwaway cluster made from
the test harness's migrated cache), so compare the ratios, not the absolute
times, across machines. Each timing is the best of --repeat runs.
"""

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from pydantic import SecretStr
from sqlalchemy import bindparam, event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from {{ cookiecutter.package_name }}.db.base import Key
from {{ cookiecutter.package_name }}.db.database import Database
{%- if cookiecutter.id_type == "uuid" %}
from {{ cookiecutter.package_name }}.db.ids import uuid7
{%- endif %}
from {{ cookiecutter.package_name }}.db.migrations import PROJECT_ROOT, upgrade_database
from {{ cookiecutter.package_name }}.db.session import make_session_factory, transaction
from {{ cookiecutter.package_name }}.features.blog.models import Post, User
from {{ cookiecutter.package_name }}.features.blog.repositories import UserRepository
from {{ cookiecutter.package_name }}.localpg.binaries import find_bindir
from {{ cookiecutter.package_name }}.localpg.cache import MIGRATED_DATABASE, Migrations
from {{ cookiecutter.package_name }}.localpg.runs import shared_cluster
from {{ cookiecutter.package_name }}.settings import Settings

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


@dataclass
class Row:
    scenario: str
    variant: str
    seconds: float
    baseline: str
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, scenario: str, variant: str, seconds: float, **extra: object) -> None:
        baseline = next((r.variant for r in self.rows if r.scenario == scenario), variant)
        self.rows.append(
            Row(scenario, variant, seconds, baseline, {k: str(v) for k, v in extra.items()})
        )

    def ratio(self, scenario: str, variant: str) -> float:
        rows = {row.variant: row for row in self.rows if row.scenario == scenario}
        row = rows[variant]
        return row.seconds / rows[row.baseline].seconds

    def print(self) -> None:
        print(f"{'scenario':<34} {'variant':<42} {'time':>10} {'ratio':>7}  details")
        for row in self.rows:
            ratio = self.ratio(row.scenario, row.variant)
            details = ", ".join(f"{key} {value}" for key, value in row.extra.items())
            print(
                f"{row.scenario:<34} {row.variant:<42} {format_seconds(row.seconds):>10} "
                f"{ratio:>6.2f}x  {details}"
            )


def format_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


async def best_of(
    repeat: int,
    run: Callable[[], Awaitable[None]],
    reset: Callable[[], Awaitable[None]] | None = None,
) -> float:
    timings = []
    for _ in range(repeat):
        if reset is not None:
            await reset()
        started = time.perf_counter()
        await run()
        timings.append(time.perf_counter() - started)
    return min(timings)


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


class Bench:
    def __init__(self, url: str, sizes: Sizes) -> None:
        self.sizes = sizes
        self.report = Report()
        self.dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.settings = Settings(database_url=SecretStr(url))
        self.template = Database.from_settings(self.settings)
        # The seed's configuration, as most services run it.
        self.naive_engine = create_async_engine(
            url, pool_size=5, max_overflow=10, pool_pre_ping=True
        )

    async def open(self) -> None:
        # One raw connection, opened before any timing, for the asyncpg variants.
        self.raw = await asyncpg.connect(self.dsn)

    async def close(self) -> None:
        await self.raw.close()
        await self.template.dispose()
        await self.naive_engine.dispose()

    async def truncate(self) -> None:
        await self.raw.execute("TRUNCATE users, posts RESTART IDENTITY CASCADE")

    async def bulk_insert(self) -> None:
        rows = user_rows(self.sizes.bulk_rows)
{%- if cookiecutter.id_type == "uuid" %}
        # Keys are made in Python (db/ids.py), so raw inserts supply them too.
        columns = ["id", "email", "name"]
        records = [(uuid7(), row["email"], row["name"]) for row in rows]
{%- else %}
        columns = ["email", "name"]
        records = [(row["email"], row["name"]) for row in rows]
{%- endif %}
        placeholders = ", ".join(f"${number}" for number in range(1, len(columns) + 1))
        insert_sql = f"INSERT INTO users ({', '.join(columns)}) VALUES ({placeholders})"
        scenario = f"insert {len(rows):,} users"
        sessions = self.template.sessions

        async def asyncpg_copy() -> None:
            async with self.raw.transaction():
                await self.raw.copy_records_to_table("users", records=records, columns=columns)

        async def asyncpg_executemany() -> None:
            async with self.raw.transaction():
                await self.raw.executemany(insert_sql, records)

        async def repository() -> None:
            async with transaction(sessions) as session:
                await UserRepository(session).add_many(rows)

        async def orm_bulk() -> None:
            async with transaction(sessions) as session:
                await session.execute(insert(User), rows)

        async def naive_add_all() -> None:
            async with make_session_factory(self.naive_engine)() as session:
                session.add_all(User(**row) for row in rows)
                await session.commit()

        repeat = self.sizes.repeat
        for variant, run in [
            ("asyncpg copy_records_to_table", asyncpg_copy),
            ("asyncpg executemany", asyncpg_executemany),
            ("repository add_many (COPY)", repository),
            ("ORM execute(insert(User), rows)", orm_bulk),
            ("naive ORM add_all + commit", naive_add_all),
        ]:
            self.report.add(scenario, variant, await best_of(repeat, run, self.truncate))

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

    async def gets(self, keys: list[Key]) -> None:
        wanted = [keys[i % len(keys)] for i in range(self.sizes.gets)]
        scenario = f"{len(wanted):,} gets by key, one connection"
        sessions = self.template.sessions
        prebuilt = select(User.__table__).where(User.id == bindparam("key"))

        async def asyncpg_prepared() -> None:
            statement = await self.raw.prepare(GET_SQL)
            for key in wanted:
                await statement.fetchrow(key)

        async def core_prebuilt() -> None:
            async with self.template.engine.connect() as connection:
                for key in wanted:
                    (await connection.execute(prebuilt, {"key": key})).one()

        async def repository() -> None:
            async with sessions() as session:
                users = UserRepository(session)
                for key in wanted:
                    await users.get(key)
                    # A fresh lookup each time, as in a service, not an identity-map hit.
                    session.expunge_all()

        repeat = self.sizes.repeat
        for variant, run in [
            ("asyncpg prepared fetchrow", asyncpg_prepared),
            ("Core prebuilt statement", core_prebuilt),
            ("repository get (ORM)", repository),
        ]:
            self.report.add(
                scenario, variant, await best_of(repeat, run) / len(wanted), unit="per get"
            )

    async def per_request(self, keys: list[Key]) -> None:
        wanted = [keys[i % len(keys)] for i in range(self.sizes.gets)]
        scenario = f"{len(wanted):,} requests: session + get"
        template_sessions = self.template.read_sessions
        naive_sessions = make_session_factory(self.naive_engine)
        pool = await asyncpg.create_pool(self.dsn, min_size=5, max_size=15)

        async def asyncpg_pool() -> None:
            for key in wanted:
                async with pool.acquire() as connection:
                    await connection.fetchrow(GET_SQL, key)

        async def template() -> None:
            for key in wanted:
                async with template_sessions() as session:
                    await UserRepository(session).get(key)

        async def naive() -> None:
            for key in wanted:
                async with naive_sessions() as session:
                    await session.get(User, key)

        repeat = self.sizes.repeat
        for variant, run in [
            ("asyncpg pool.acquire + fetchrow", asyncpg_pool),
            ("template: read-only session + get", template),
            ("naive: pre-ping, overflow pool + get", naive),
        ]:
            self.report.add(
                scenario, variant, await best_of(repeat, run) / len(wanted), unit="per request"
            )
        await pool.close()

    async def listing(self, keys: list[Key]) -> None:
        limit = self.sizes.listed_users
        scenario = f"list {limit:,} users with posts"
        sessions = self.template.read_sessions
        plain_sessions = make_session_factory(self.naive_engine)

        async def asyncpg_two_queries() -> None:
            users = await self.raw.fetch("SELECT * FROM users ORDER BY id LIMIT $1", limit)
            await self.raw.fetch(
                "SELECT * FROM posts WHERE author_id = ANY($1) ORDER BY id",
                [u["id"] for u in users],
            )

        async def repository() -> None:
            async with sessions() as session:
                await UserRepository(session).list_with_posts(limit=limit)

        async def naive_n_plus_one() -> None:
            async with plain_sessions() as session:
                users = (await session.scalars(select(User).order_by(User.id).limit(limit))).all()
                for user in users:
                    (await session.scalars(select(Post).where(Post.author_id == user.id))).all()

        repeat = self.sizes.repeat
        for variant, run, engine in [
            ("asyncpg, two queries", asyncpg_two_queries, None),
            ("repository list_with_posts (selectinload)", repository, self.template.read_engine),
            ("naive: a query per user (N+1)", naive_n_plus_one, self.naive_engine),
        ]:
            if engine is None:
                seconds, per_run = await best_of(repeat, run), 2
            else:
                with counted(engine, "before_cursor_execute") as queries:
                    seconds = await best_of(repeat, run)
                per_run = queries[0] // repeat
            self.report.add(scenario, variant, seconds, queries=per_run)

    async def concurrency(self, keys: list[Key]) -> None:
        for tasks in self.sizes.concurrency:
            await self.concurrency_level(keys, tasks)

    async def concurrency_level(self, keys: list[Key], tasks: int) -> None:
        scenario = f"{tasks} concurrent tasks, get by key"
        total = self.sizes.ops_per_level
        new_connections = [0]
        pool = await asyncpg.create_pool(
            self.dsn, min_size=5, max_size=15, init=lambda _: _bump(new_connections)
        )
        template_sessions = self.template.read_sessions
        naive_sessions = make_session_factory(self.naive_engine)

        async def asyncpg_op(key: Key) -> None:
            async with pool.acquire() as connection:
                await connection.fetchrow(GET_SQL, key)

        async def template_op(key: Key) -> None:
            async with template_sessions() as session:
                await UserRepository(session).get(key)

        async def naive_op(key: Key) -> None:
            async with naive_sessions() as session:
                await session.get(User, key)

        baseline = 0.0
        for variant, op, engine in [
            ("asyncpg pool (5..15)", asyncpg_op, None),
            (
                f"template defaults (pool {self.settings.pool_size}, no overflow)",
                template_op,
                self.template.read_engine,
            ),
            ("naive: pool 5 + overflow 10, pre-ping", naive_op, self.naive_engine),
        ]:
            await run_tasks(op, keys, tasks, tasks * 4)  # warm-up: fill the pool
            new_connections[0] = 0
            runs = []
            for _ in range(self.sizes.repeat):
                if engine is None:
                    runs.append(await run_tasks(op, keys, tasks, total))
                    continue
                with counted(engine, "connect") as opened_count:
                    runs.append(await run_tasks(op, keys, tasks, total))
                new_connections[0] += opened_count[0]
            latencies, seconds = min(runs, key=lambda run: run[1])
            baseline = baseline or seconds
            quantiles = statistics.quantiles(latencies, n=100)
            self.report.add(
                scenario,
                variant,
                seconds,
                ops_per_s=f"{total / seconds:,.0f}",
                of_asyncpg=f"{baseline / seconds:.0%}",
                p50=format_seconds(quantiles[49]),
                p99=format_seconds(quantiles[98]),
                # Over every run: no caller may wait longer than the pool timeout.
                slowest=format_seconds(max(max(run[0]) for run in runs)),
                new_connections_per_run=new_connections[0] // self.sizes.repeat,
            )
        await pool.close()


def _bump(counter: list[int]) -> Awaitable[None]:
    counter[0] += 1
    return asyncio.sleep(0)


async def run_tasks(
    op: Callable[[Key], Awaitable[None]], keys: list[Key], tasks: int, total: int
) -> tuple[list[float], float]:
    latencies: list[float] = []

    async def worker(offset: int) -> None:
        for index in range(offset, total, tasks):
            started = time.perf_counter()
            await op(keys[index % len(keys)])
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(offset) for offset in range(tasks)))
    return latencies, time.perf_counter() - started


SCENARIOS = ("insert", "gets", "requests", "list", "concurrency")


async def run(url: str, sizes: Sizes, scenarios: Sequence[str] = SCENARIOS) -> Report:
    bench = Bench(url, sizes)
    await bench.open()
    try:
        if "insert" in scenarios:
            await bench.bulk_insert()
        keys = await bench.seed()
        readers = {
            "gets": bench.gets,
            "requests": bench.per_request,
            "list": bench.listing,
            "concurrency": bench.concurrency,
        }
        for name, scenario in readers.items():
            if name in scenarios:
                await scenario(keys)
    finally:
        await bench.close()
    return bench.report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every workload size")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing; the best counts")
    parser.add_argument(
        "--only", nargs="+", choices=SCENARIOS, default=SCENARIOS, help="run these scenarios"
    )
    arguments = parser.parse_args()
    sizes = Sizes(repeat=arguments.repeat).scaled(arguments.scale)

    with benchmark_database() as url:
        report = asyncio.run(run(url, sizes, arguments.only))
    report.print()


@contextmanager
def benchmark_database() -> Iterator[str]:
    """A migrated database on a throwaway cluster of its own (the test harness's cache)."""
    migrations = Migrations(folder=PROJECT_ROOT / "migrations", apply=upgrade_database)
    name = f"benchmark-{uuid.uuid4().hex[:8]}"
    with shared_cluster(find_bindir(), name, migrations) as cluster:
        yield cluster.url(MIGRATED_DATABASE).render_as_string(hide_password=False)


if __name__ == "__main__":
    main()
