"""What routing reads to replicas costs per read, against a read on the primary directly.

One machine gives replicas no extra capacity, so this measures cost, not
throughput: the CPU this process spends per read (the routing runs here; the
servers' work is the same query either way), and the wall time. The replica is
a hot standby of the benchmark's cluster; with its replay paused after a write,
the routing sends this process's reads to the primary (read-your-writes).
"""

import time
from collections.abc import Awaitable, Callable

import psycopg
from pydantic import SecretStr

from {{ cookiecutter.package_name }}.db.base import Key
from {{ cookiecutter.package_name }}.db.database import Database
from {{ cookiecutter.package_name }}.db.replicas.servers import ReplicaState
from {{ cookiecutter.package_name }}.db.session import AsyncSessionFactory, transaction
from {{ cookiecutter.package_name }}.features.blog.repositories import UserRepository
from {{ cookiecutter.package_name }}.localpg.cluster import SUPERUSER, Cluster
from {{ cookiecutter.package_name }}.localpg.standby import standby_of
from {{ cookiecutter.package_name }}.settings import Settings
from benchmarks.data_layer.context import Bench, user_rows


async def best_of(repeat: int, run: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """The fastest run's wall seconds and the least CPU seconds of this process, of `repeat`."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        await run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def set_replay(standby: Cluster, *, paused: bool) -> None:
    function = "pg_wal_replay_pause" if paused else "pg_wal_replay_resume"
    with psycopg.connect(
        host=str(standby.socket_dir), user=SUPERUSER, dbname="postgres", autocommit=True
    ) as connection:
        connection.execute(f"SELECT {function}()")


async def routed_reads(bench: Bench, keys: list[Key], primary: Cluster) -> None:
    wanted = [keys[i % len(keys)] for i in range(bench.sizes.gets)]
    scenario = f"{len(wanted):,} reads: session + get, routed"
    database_name = bench.settings.url().database or ""
    with standby_of(primary) as standby:
        settings = Settings(
            database_url=bench.settings.database_url,
            database_replica_urls=SecretStr(
                standby.url(database_name).render_as_string(hide_password=False)
            ),
        )
        routed = Database.from_settings(settings)
        try:
            await routed.start()
            states = (
                [replica.state for replica in routed.replicas.replicas] if routed.replicas else []
            )
            if states != [ReplicaState.OK]:
                raise RuntimeError(f"the standby does not serve reads: {states}")

            def reads(sessions: AsyncSessionFactory) -> Callable[[], Awaitable[None]]:
                async def run() -> None:
                    for key in wanted:
                        async with sessions() as session:
                            await UserRepository(session).get(key)

                return run

            variants = {
                "primary: read-only session + get": bench.template.read_sessions,
                "routed to the replica": routed.read_sessions,
            }
            measured = {
                variant: await best_of(bench.sizes.repeat, reads(sessions))
                for variant, sessions in variants.items()
            }
            set_replay(standby, paused=True)
            # This process's own write, which the paused replica lacks.
            async with transaction(routed.sessions) as session:
                await UserRepository(session).add_many(user_rows(1, "routed"))
            measured["routed, replay paused: primary"] = await best_of(
                bench.sizes.repeat, reads(routed.read_sessions)
            )
            set_replay(standby, paused=False)
        finally:
            await routed.dispose()
    primary_cpu = next(iter(measured.values()))[1]
    for variant, (wall, cpu) in measured.items():
        bench.add(
            scenario,
            variant,
            wall / len(wanted),
            unit="per read",
            cpu_us=round(cpu / len(wanted) * 1e6, 1),
            cpu_of_primary=round(cpu / primary_cpu, 3),
        )
