"""The scenario that runs gets from many tasks at once: where the pool settings show.

For each level of concurrency it times raw asyncpg's pool, the template's
defaults and the naive pool, with latency quantiles and the connections opened.
"""

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import asyncpg

from {{ cookiecutter.package_name }}.db.base import Key
from {{ cookiecutter.package_name }}.db.session import make_session_factory
from {{ cookiecutter.package_name }}.features.blog.models import User
from {{ cookiecutter.package_name }}.features.blog.repositories import UserRepository
from benchmarks.data_layer.context import GET_SQL, Bench, counted
from benchmarks.reporting import progress


async def concurrency(bench: Bench, keys: list[Key]) -> None:
    for tasks in bench.sizes.concurrency:
        scenario = f"{tasks} concurrent tasks, get by key"
        with progress(scenario):
            await concurrency_level(bench, keys, scenario, tasks)


async def concurrency_level(bench: Bench, keys: list[Key], scenario: str, tasks: int) -> None:
    total = bench.sizes.ops_per_level
    new_connections = [0]
    pool = await asyncpg.create_pool(
        bench.dsn, min_size=5, max_size=15, init=lambda _: _bump(new_connections)
    )
    template_sessions = bench.template.read_sessions
    naive_sessions = make_session_factory(bench.naive_engine)

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
            f"template defaults (pool {bench.settings.pool_size}, no overflow)",
            template_op,
            bench.template.read_engine,
        ),
        ("naive: pool 5 + overflow 10, pre-ping", naive_op, bench.naive_engine),
    ]:
        await run_tasks(op, keys, tasks, tasks * 4)  # warm-up: fill the pool
        new_connections[0] = 0
        runs = []
        for _ in range(bench.sizes.repeat):
            if engine is None:
                runs.append(await run_tasks(op, keys, tasks, total))
                continue
            with counted(engine, "connect") as opened_count:
                runs.append(await run_tasks(op, keys, tasks, total))
            new_connections[0] += opened_count[0]
        latencies, seconds = min(runs, key=lambda run: run[1])
        baseline = baseline or seconds
        quantiles = statistics.quantiles(latencies, n=100)
        bench.add(
            scenario,
            variant,
            seconds,
            ops_per_s=total / seconds,
            of_asyncpg=baseline / seconds,
            p50_seconds=quantiles[49],
            p99_seconds=quantiles[98],
            # Over every run: no caller may wait longer than the pool timeout.
            slowest_seconds=max(max(run[0]) for run in runs),
            new_connections_per_run=new_connections[0] // bench.sizes.repeat,
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
