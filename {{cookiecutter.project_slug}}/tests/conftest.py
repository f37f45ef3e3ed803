"""Loads the database fixtures (tests/harness/fixtures.py) where tests run.

Tests marked `harness` check the test harness itself and the benchmark scripts,
not the service: they run with `--harness` (the template's own CI does) and are
deselected otherwise.
"""

import os

import pytest

HARNESS_MARKER = "harness"


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
    if config.getoption("harness"):
        return
    harness = [item for item in items if item.get_closest_marker(HARNESS_MARKER)]
    if harness:
        config.hook.pytest_deselected(items=harness)
        items[:] = [item for item in items if not item.get_closest_marker(HARNESS_MARKER)]
