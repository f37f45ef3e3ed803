"""Rules every model and migration must follow, checked over the whole schema."""

import re

from sqlalchemy import Table, UniqueConstraint, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import RelationshipProperty

from {{ cookiecutter.package_name }}.db.base import Base
from {{ cookiecutter.package_name }}.db.soft_delete import SoftDeleteMixin
from {{ cookiecutter.package_name }}.features import load_models

load_models()

EXPLICIT_LOADERS = {"raise", "raise_on_sql", "selectin", "joined", "noload"}
CONVENTIONAL_NAME = re.compile(r"(pk|uq|ck|fk|ix)_")


def test_relationships_never_lazy_load_implicitly() -> None:
    implicit = [
        f"{mapper.class_.__name__}.{relationship.key} (lazy={relationship.lazy!r})"
        for mapper in Base.registry.mappers
        for relationship in mapper.relationships
        if isinstance(relationship, RelationshipProperty)
        and relationship.lazy not in EXPLICIT_LOADERS
    ]
    assert implicit == [], "use lazy='raise' and load with selectinload(): " + ", ".join(implicit)


def test_soft_deletable_tables_are_unique_only_among_rows_not_deleted() -> None:
    # A plain unique constraint counts deleted rows: a deleted row's value stays taken.
    tables = [
        table
        for mapper in Base.registry.mappers
        if issubclass(mapper.class_, SoftDeleteMixin)
        and isinstance(table := mapper.local_table, Table)
    ]
    whole_table = [
        f"{table.name}: {constraint.name or [column.name for column in constraint.columns]}"
        for table in tables
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ] + [
        f"{table.name}: {index.name}"
        for table in tables
        for index in table.indexes
        if index.unique and index.dialect_options["postgresql"]["where"] is None
    ]
    assert whole_table == [], (
        "make these partial unique indexes, "
        'Index(None, "column", unique=True, postgresql_where=text("deleted_at IS NULL")): '
        + ", ".join(whole_table)
    )


async def test_every_constraint_and_index_follows_the_naming_convention(
    db_session: AsyncSession,
) -> None:
    # PostgreSQL's own names (users_pkey, posts_author_id_fkey) mean a migration
    # created a constraint without the convention, and later ones cannot name it.
    names = await db_session.scalars(
        text(
            """
            SELECT conname FROM pg_constraint
            WHERE connamespace = 'public'::regnamespace
              AND conrelid <> 'alembic_version'::regclass
              -- PostgreSQL 18 records NOT NULL as constraints too, named by the server.
              AND contype <> 'n'
            UNION
            SELECT indexname FROM pg_indexes
            WHERE schemaname = 'public' AND tablename <> 'alembic_version'
            """
        )
    )
    unconventional = sorted(name for name in names if not CONVENTIONAL_NAME.match(name))
    assert unconventional == []
