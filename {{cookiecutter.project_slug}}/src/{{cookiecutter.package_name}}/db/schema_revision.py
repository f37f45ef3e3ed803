"""Whether the database's schema is one this code can serve.

It can when the database is at the migrations' head, or at a revision this code does
not know: a newer release migrated it, as during a rollout, and revisions only ever
add what older code may ignore. It cannot when the database is behind: a new release
must not take traffic before its migrations ran (the readiness probe says so).
"""

from functools import cache

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

MIGRATED = text("SELECT to_regclass('alembic_version') IS NOT NULL")
REVISIONS = text("SELECT version_num FROM alembic_version")


@cache
def code_revisions() -> tuple[frozenset[str], frozenset[str]]:
    """The migrations' heads, and every revision they hold."""
    # Imported on use: Alembic is slow to import, and only the first probe needs it.
    from alembic.script import ScriptDirectory

    from {{ cookiecutter.package_name }}.db.migrations import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config())
    known = frozenset(script.revision for script in scripts.walk_revisions())
    return frozenset(scripts.get_heads()), known


def behind(database_revisions: frozenset[str]) -> str | None:
    """Why the code cannot serve a database at `database_revisions`; None when it can."""
    heads, known = code_revisions()
    if database_revisions == heads or not database_revisions <= known:
        return None
    found = ", ".join(sorted(database_revisions)) or "no revision"
    return f"the database is at {found}, this code needs {', '.join(sorted(heads))}: run `migrate`"


async def schema_behind(session: AsyncSession) -> str | None:
    """Why the session's database is not ready for this code; None when it is."""
    revisions: frozenset[str] = frozenset()
    if await session.scalar(MIGRATED):
        revisions = frozenset((await session.scalars(REVISIONS)).all())
    return behind(revisions)
