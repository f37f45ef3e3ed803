"""Slow tier: migration test tools of the Alembic world run on a rendered project as they come.

pytest-alembic, the most used of them, hands migrations/env.py an Engine for its
default tests and, for test_downgrade_leaves_no_trace, its WrappingConnection around
a Connection in a transaction: env.py must migrate on both, under its lock and
timeouts. The project is set up for it as docs/pytest-alembic.md tells a user to.

test_downgrade_leaves_no_trace runs every revision inside a transaction of its own,
which a revision that builds an index CONCURRENTLY cannot run in (the examples' 0004
and 0006): it runs on a project without the examples.
"""

import re
from pathlib import Path

import pytest

from tests.commands import UV, run
from tests.rendering import render_into
from tests.test_generated_project import install

pytestmark = pytest.mark.slow

DEFAULT_TESTS = {
    "test_single_head_revision",
    "test_upgrade",
    "test_model_definitions_match_ddl",
    "test_up_down_consistency",
}
EXPERIMENTAL_TESTS = {"test_downgrade_leaves_no_trace"}
# The built-in tests, imported where pytest collects them: pytest-alembic's own
# collection (--test-alembic) fails on pytest 9. They migrate from nothing, so on a
# new empty database rather than the harness's migrated one.
PYTEST_ALEMBIC_MODULE = '''\
"""pytest-alembic's built-in migration tests, on a new empty database of the harness's server."""

import uuid
from collections.abc import Iterator

import pytest
from pytest_alembic.tests import (  # noqa: F401 (pytest collects them from here)
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
{experimental}from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from tests.harness.servers import SessionDatabase


@pytest.fixture
def alembic_engine(database: SessionDatabase) -> Iterator[Engine]:
    name = f"pytest_alembic_{uuid.uuid4().hex[:8]}"
    engine = create_engine(
        database.server.create(name).set(drivername="postgresql+psycopg"), poolclass=NullPool
    )
    yield engine
    engine.dispose()
    database.server.drop(name)
'''


EXPERIMENTAL_IMPORT = (
    "from pytest_alembic.tests.experimental import test_downgrade_leaves_no_trace  # noqa: F401\n"
)


def run_pytest_alembic(project: Path, *, experimental: bool) -> set[str]:
    """Install `project` and pytest-alembic, run its built-in tests (or its experimental
    one) from a module of the project's; the names of those that passed."""
    bin_dir = install(project)
    assert UV is not None, "uv is not installed; run scripts/bootstrap"
    python = str(bin_dir / "python")
    # The minor the collection workaround below was checked with.
    run(project, UV, "pip", "install", "--quiet", "--python", python, "pytest-alembic==0.13.*")
    module = project / "tests" / "test_pytest_alembic.py"
    module.write_text(
        PYTEST_ALEMBIC_MODULE.replace("{experimental}", EXPERIMENTAL_IMPORT if experimental else "")
    )
    # As clean as the project's own tests, for a user to keep.
    run(project, str(bin_dir / "ruff"), "check", str(module))

    # Its collector binds to tests/conftest.py and fails there on pytest 9, with or
    # without --test-alembic; only an empty value turns it off ("false" reads as true).
    tests = run(
        project,
        str(bin_dir / "pytest"),
        "-p",
        "no:cacheprovider",
        "-o",
        "pytest_alembic_enabled=",
        "-v",
        str(module.relative_to(project)),
        *([] if not experimental else ["-k", "downgrade_leaves_no_trace"]),
    )
    summary = tests.stdout.strip().splitlines()[-1]
    passed = set(re.findall(r"::(test_\w+) PASSED", tests.stdout))
    assert re.fullmatch(rf"=+ {len(passed)} passed.* in .*", summary), tests.stdout
    return passed


def test_pytest_alembic_built_in_tests_pass(workspace: Path) -> None:
    project = render_into(workspace)
    assert run_pytest_alembic(project, experimental=False) == DEFAULT_TESTS


def test_pytest_alembic_downgrade_leaves_no_trace_passes(workspace: Path) -> None:
    project = render_into(workspace, include_example_models=False)
    assert run_pytest_alembic(project, experimental=True) == EXPERIMENTAL_TESTS
