"""Loads the database fixtures (tests/harness/fixtures.py) where tests run.

Tests marked `harness` check the test harness itself and the benchmark scripts,
not the service: they run with `--harness` (the template's own CI does) and are
deselected otherwise.
"""

import gc
import os
import sys

import pytest

HARNESS_MARKER = "harness"
# SQLAlchemy's warnings name real bugs (a relationship that overlaps another, a
# deprecated call), so they fail the test. Set per test, not in pyproject.toml's
# filterwarnings, which would import SQLAlchemy to resolve them in every run, also
# for a test that never touches it.
SQLALCHEMY_WARNINGS_AS_ERRORS = (
    pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning"),
    pytest.mark.filterwarnings("error::sqlalchemy.exc.SADeprecationWarning"),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--harness",
        action="store_true",
        help="also run the test harness's self-tests and the benchmark smoke tests",
    )


def pytest_configure(config: pytest.Config) -> None:
    # The pytest-xdist controller runs no tests: importing SQLAlchemy and the harness
    # there would hold back the start of every `pytest -n` run by ~1 s.
    runs_tests = hasattr(config, "workerinput") or config.getoption("dist", "no") == "no"
    if runs_tests:
        config.pluginmanager.import_plugin("tests.harness.fixtures")


def pytest_report_header(config: pytest.Config) -> str:
    """Which PostgreSQL the tests run on."""
    from tests.harness.header import describe_server

    return describe_server(os.environ.get("TEST_DATABASE_URL"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("harness"):
        harness = [item for item in items if item.get_closest_marker(HARNESS_MARKER)]
        if harness:
            config.hook.pytest_deselected(items=harness)
            items[:] = [item for item in items if not item.get_closest_marker(HARNESS_MARKER)]
    # A test whose module imported no SQLAlchemy and that asks for no database cannot
    # raise its warnings.
    collected_sqlalchemy = "sqlalchemy" in sys.modules
    for item in items:
        if collected_sqlalchemy or "database" in getattr(item, "fixturenames", ()):
            for mark in SQLALCHEMY_WARNINGS_AS_ERRORS:
                item.add_marker(mark)


def pytest_collection_finish(session: pytest.Session) -> None:
    # What collection imported lives until the end: the garbage collector's full passes
    # during the run need not walk it again.
    gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # At exit the interpreter would garbage-collect every object of SQLAlchemy, pydantic
    # and the drivers once more, ~0.15 s of each run's wait: the process frees them anyway.
    gc.freeze()
