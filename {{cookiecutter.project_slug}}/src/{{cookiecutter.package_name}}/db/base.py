"""The declarative base every model inherits from.

The naming convention gives every index and constraint a stable, predictable
name, so migrations can drop or alter them without guessing.
"""

{% if cookiecutter.id_type == "uuid" -%}
import uuid
{% endif -%}
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import {% if cookiecutter.id_type == "bigint" %}BigInteger, {% endif %}DateTime, {% if cookiecutter.id_type == "bigint" %}Identity, {% endif %}MetaData, func
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, MappedColumn, declared_attr, mapped_column
{%- if cookiecutter.id_type == "uuid" %}

from {{ cookiecutter.package_name }}.db.ids import uuid7
{%- endif %}

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


{% if cookiecutter.id_type == "uuid" -%}
# Primary keys are time-ordered UUIDs made in Python (see db/ids.py).
Key = uuid.UUID


def primary_key() -> MappedColumn[Key]:
    return mapped_column(primary_key=True, default=uuid7)
{%- else -%}
# Primary keys are 64-bit identity columns.
Key = int


def primary_key() -> MappedColumn[Key]:
    return mapped_column(BigInteger, Identity(), primary_key=True)
{%- endif %}


class Base(AsyncAttrs, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}


class CreatedAtMixin:
    """Creation time, set by the database."""

    # Fetch server-generated values with RETURNING on insert and update: reading
    # an expired attribute later would need an implicit query, which async forbids.
    __mapper_args__: ClassVar[dict[str, Any]] = {"eager_defaults": True}

    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class TimestampMixin(CreatedAtMixin):
    """Creation and update times, set by the database."""

    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class VersionedMixin:
    """Optimistic locking: the ORM's UPDATE and DELETE of a row say `WHERE version = <the
    version read>` and count it up, so a write based on a stale read changes nothing and
    fails (repositories' StaleVersion) instead of overwriting another's change.

    Put it before TimestampMixin among a model's bases: its mapper arguments include
    TimestampMixin's.
    """

    version: Mapped[int] = mapped_column(server_default="1")

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # A column of this class's table: each model has its own.
        return {"eager_defaults": True, "version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]
