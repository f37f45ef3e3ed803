"""What routing reads to replicas costs per read, against a read on the primary directly.

One machine gives replicas no extra capacity, so this measures cost, not
throughput: the CPU this process spends per read (the routing runs here; the
servers' work is the same query either way), and the wall time. The replica is
a hot standby of the benchmark's cluster; with its replay paused after a write,
the routing sends this process's reads to the primary (read-your-writes).
"""

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
from benchmarks.data_layer.context import Bench, best_of, user_rows


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
    bench.add_cpu_figures(scenario, measured, len(wanted), "per read", "primary")
