"""The scenarios that run one operation after another: bulk insert, gets, requests, a listing.

Each times the same work as raw asyncpg, as the template's idiom and, where it
differs, as the naive SQLAlchemy code; the first variant is the ratios' baseline.
"""

import asyncpg
from sqlalchemy import bindparam, insert, select

from {{ cookiecutter.package_name }}.db.base import Key
{%- if cookiecutter.id_type == "uuid" %}
from {{ cookiecutter.package_name }}.db.ids import uuid7
{%- endif %}
from {{ cookiecutter.package_name }}.db.session import make_session_factory, transaction
from {{ cookiecutter.package_name }}.features.blog.models import Post, User
from {{ cookiecutter.package_name }}.features.blog.repositories import UserRepository
from benchmarks.data_layer.context import GET_SQL, Bench, counted, user_rows
from benchmarks.reporting import best_time


async def bulk_insert(bench: Bench) -> None:
    rows = user_rows(bench.sizes.bulk_rows)
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
    sessions = bench.template.sessions

    async def asyncpg_copy() -> None:
        async with bench.raw.transaction():
            await bench.raw.copy_records_to_table("users", records=records, columns=columns)

    async def asyncpg_executemany() -> None:
        async with bench.raw.transaction():
            await bench.raw.executemany(insert_sql, records)

    async def repository() -> None:
        async with transaction(sessions) as session:
            await UserRepository(session).add_many(rows)

    async def orm_bulk() -> None:
        async with transaction(sessions) as session:
            await session.execute(insert(User), rows)

    async def naive_add_all() -> None:
        async with make_session_factory(bench.naive_engine)() as session:
            session.add_all(User(**row) for row in rows)
            await session.commit()

    variants = {
        "asyncpg copy_records_to_table": asyncpg_copy,
        "asyncpg executemany": asyncpg_executemany,
        "repository add_many (COPY)": repository,
        "ORM execute(insert(User), rows)": orm_bulk,
        "naive ORM add_all + commit": naive_add_all,
    }
    await bench.time_each(scenario, variants, reset=bench.truncate)


async def gets(bench: Bench, keys: list[Key]) -> None:
    wanted = [keys[i % len(keys)] for i in range(bench.sizes.gets)]
    scenario = f"{len(wanted):,} gets by key, one connection"
    sessions = bench.template.sessions
    prebuilt = select(User.__table__).where(User.id == bindparam("key"))

    async def asyncpg_prepared() -> None:
        statement = await bench.raw.prepare(GET_SQL)
        for key in wanted:
            await statement.fetchrow(key)

    async def core_prebuilt() -> None:
        async with bench.template.engine.connect() as connection:
            for key in wanted:
                (await connection.execute(prebuilt, {"key": key})).one()

    async def repository() -> None:
        async with sessions() as session:
            users = UserRepository(session)
            for key in wanted:
                await users.get(key)
                # A fresh lookup each time, as in a service, not an identity-map hit.
                session.expunge_all()

    variants = {
        "asyncpg prepared fetchrow": asyncpg_prepared,
        "Core prebuilt statement": core_prebuilt,
        "repository get (ORM)": repository,
    }
    await bench.time_each(scenario, variants, operations=len(wanted), unit="per get")


async def per_request(bench: Bench, keys: list[Key]) -> None:
    wanted = [keys[i % len(keys)] for i in range(bench.sizes.gets)]
    scenario = f"{len(wanted):,} requests: session + get"
    template_sessions = bench.template.read_sessions
    naive_sessions = make_session_factory(bench.naive_engine)
    pool = await asyncpg.create_pool(bench.dsn, min_size=5, max_size=15)

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

    variants = {
        "asyncpg pool.acquire + fetchrow": asyncpg_pool,
        "template: read-only session + get": template,
        "naive: pre-ping, overflow pool + get": naive,
    }
    await bench.time_each(scenario, variants, operations=len(wanted), unit="per request")
    await pool.close()


async def listing(bench: Bench, keys: list[Key]) -> None:
    limit = bench.sizes.listed_users
    scenario = f"list {limit:,} users with posts"
    sessions = bench.template.read_sessions
    plain_sessions = make_session_factory(bench.naive_engine)

    async def asyncpg_two_queries() -> None:
        users = await bench.raw.fetch("SELECT * FROM users ORDER BY id LIMIT $1", limit)
        await bench.raw.fetch(
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

    repeat = bench.sizes.repeat
    for variant, run, engine in [
        ("asyncpg, two queries", asyncpg_two_queries, None),
        ("repository list_with_posts (selectinload)", repository, bench.template.read_engine),
        ("naive: a query per user (N+1)", naive_n_plus_one, bench.naive_engine),
    ]:
        if engine is None:
            seconds, per_run = await best_time(repeat, run), 2
        else:
            with counted(engine, "before_cursor_execute") as queries:
                seconds = await best_time(repeat, run)
            per_run = queries[0] // repeat
        bench.add(scenario, variant, seconds, queries=per_run)
