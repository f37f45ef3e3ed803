"""The template's own code (tests, hooks, scripts, answer checks) passes ruff."""

import sys
from pathlib import Path

import pytest

from tests.commands import run
from tests.rendering import TEMPLATE

RUFF = Path(sys.executable).with_name("ruff")
# Named, not discovered: ruff would read the project folder's Jinja pyproject.toml.
TEMPLATE_CODE = ["answer_checks.py", "hooks", "scripts/lock", "tests"]


@pytest.mark.parametrize("check", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_template_code_passes_ruff(check: list[str]) -> None:
    run(TEMPLATE, str(RUFF), *check, "--no-cache", *TEMPLATE_CODE)
