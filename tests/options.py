"""The option combinations the template is tested with, as data."""

import pytest

COMBINATIONS = [
    pytest.param({}, id="default"),
    pytest.param({"use_fastapi": False}, id="no-fastapi"),
    pytest.param({"include_example_models": False}, id="no-examples"),
    pytest.param({"use_fastapi": False, "include_example_models": False}, id="minimal"),
    pytest.param({"python_version": "3.13", "postgres_version": "15"}, id="py313-pg15"),
    pytest.param(
        {"project_name": "Billing API", "description": 'Bills "customers" & sends \\ invoices'},
        id="custom-name-and-quotes",
    ),
]

# The combinations whose generated project is installed and run in full, and
# the installer used: the README promises both uv and plain pip work.
FULL_RUN_COMBINATIONS = [
    pytest.param({}, "uv", id="default-uv"),
    pytest.param({"use_fastapi": False, "include_example_models": False}, "pip", id="minimal-pip"),
]
