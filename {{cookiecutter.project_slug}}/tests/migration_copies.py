"""A copy of the project's Alembic setup, with revisions a test adds after the real ones;
and the SQL that `alembic upgrade --sql` writes.

Tests that need a revision of their own (one that alters an existing table, or
builds an index the wrong way) write it here: the real migrations folder stays
as it is, since the test harness's cache key hashes it.
"""

import io
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from {{ cookiecutter.package_name }}.db import migrations


@dataclass(frozen=True)
class MigrationsCopy:
    root: Path

    @property
    def versions(self) -> Path:
        return self.root / "migrations" / "versions"

    def remove_project_revisions(self) -> None:
        """Keep only the revisions the test adds from now on: a test of a check on
        revisions must not see, and fail on, the project's own."""
        for revision in self.versions.glob("*.py"):
            revision.unlink()

    def add(self, revision: str, upgrade: str, downgrade: str = "pass") -> None:
        """Write `revision` on top of the current head; the bodies are Python statements
        that may use `op` and `sa`."""
        head = ScriptDirectory.from_config(migrations.alembic_config()).get_current_head()
        source = f'''\
"""A test's own revision."""

import sqlalchemy as sa
from alembic import op

revision = {revision!r}
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
{textwrap.indent(textwrap.dedent(upgrade).strip(), "    ")}


def downgrade() -> None:
{textwrap.indent(textwrap.dedent(downgrade).strip(), "    ")}
'''
        (self.versions / f"{revision}.py").write_text(source)


def copy_migrations(target: Path, monkeypatch: pytest.MonkeyPatch) -> MigrationsCopy:
    """Copy alembic.ini and migrations/ to `target`, and point alembic_config() at the copy."""
    target.mkdir()
    shutil.copy(migrations.PROJECT_ROOT / "alembic.ini", target / "alembic.ini")
    shutil.copytree(
        migrations.PROJECT_ROOT / "migrations",
        target / "migrations",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    monkeypatch.setattr(migrations, "PROJECT_ROOT", target)
    return MigrationsCopy(target)


def offline_sql(config: Config, revision: str = "head") -> str:
    """What `alembic upgrade <revision> --sql` prints for `config`: no database involved."""
    config.output_buffer = io.StringIO()
    command.upgrade(config, revision, sql=True)
    return config.output_buffer.getvalue()
