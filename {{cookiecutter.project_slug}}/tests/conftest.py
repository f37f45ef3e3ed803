"""Loads the database fixtures (tests/harness/fixtures.py) where tests run."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # The pytest-xdist controller runs no tests: importing SQLAlchemy and the harness
    # there would hold back the start of every `pytest -n` run by ~1 s.
    runs_tests = hasattr(config, "workerinput") or config.getoption("dist", "no") == "no"
    if runs_tests:
        config.pluginmanager.import_plugin("tests.harness.fixtures")
