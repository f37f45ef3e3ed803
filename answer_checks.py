"""Refuse project names before cookiecutter writes anything.

cookiecutter creates the project folder from `project_slug` before any hook
runs, so a slug such as `/abs/path` or `../x` would create folders even if a
pre-generation hook then refused it. cookiecutter.json renders the private
variable `__answers_checked` right after the names are answered, through the
`checked_answers` filter below: a bad name stops cookiecutter (and cruft) there,
with one line saying what is wrong and what to use, and nothing is written.
`__options_checked`, after the last option it needs, refuses options that cannot
go together the same way (`checked_options`).
Standard library and what cookiecutter itself imports only.
"""

import keyword
import re
import sys
from collections.abc import Mapping

from cookiecutter.exceptions import FailedHookException
from jinja2 import Environment
from jinja2.ext import Extension

# Modules the rendered project imports or installs; a package with one of these
# names would shadow it and fail with confusing import errors.
DEPENDENCY_MODULES = frozenset(
    {
        "alembic",
        "anyio",
        "asyncpg",
        "fastapi",
        "greenlet",
        "httpx",
        "mypy",
        "psycopg",
        "pydantic",
        "pydantic_settings",
        "pytest",
        "pytest_asyncio",
        "ruff",
        "sqlalchemy",
        "starlette",
        "uvicorn",
    }
)
# Top-level folders of the rendered project, importable from its root.
PROJECT_FOLDERS = frozenset({"migrations", "src", "tests"})
SLUG_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
PACKAGE_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
ACCEPTED_SLUG = (
    "lowercase ASCII letters and digits separated by '-' or '_', starting with a letter, "
    "e.g. 'inventory-service'"
)
ACCEPTED_PACKAGE = (
    "lowercase ASCII letters, digits and '_', starting with a letter, e.g. 'inventory_service'"
)


def slug_problem(slug: str) -> str | None:
    """Say what is wrong with a project_slug, or None when it is fine."""
    if not slug:
        return f"project_slug is empty; use {ACCEPTED_SLUG}"
    if not slug.isascii():
        return f"project_slug {slug!r} contains non-ASCII characters; use {ACCEPTED_SLUG}"
    if not SLUG_PATTERN.fullmatch(slug):
        return f"project_slug {slug!r} is not a valid name; use {ACCEPTED_SLUG}"
    return None


def package_problem(package: str) -> str | None:
    """Say what is wrong with a package_name, or None when it is fine."""
    if not package:
        return f"package_name is empty; use {ACCEPTED_PACKAGE}"
    if not package.isascii():
        return f"package_name {package!r} contains non-ASCII characters; use {ACCEPTED_PACKAGE}"
    if package[0].isdigit():
        return f"package_name {package!r} starts with a digit; use {ACCEPTED_PACKAGE}"
    if not PACKAGE_PATTERN.fullmatch(package):
        return (
            f"package_name {package!r} is not a lowercase Python identifier; use {ACCEPTED_PACKAGE}"
        )
    if keyword.iskeyword(package) or keyword.issoftkeyword(package):
        return (
            f"package_name {package!r} is a Python keyword; use a name such as '{package}_service'"
        )
    if package in sys.stdlib_module_names or package in {"test", "asyncio"}:
        return (
            f"package_name {package!r} would shadow the standard library module of that name; "
            f"use a name such as '{package}_service'"
        )
    if package in DEPENDENCY_MODULES:
        return (
            f"package_name {package!r} would shadow the {package!r} module the project depends on; "
            f"use a name such as '{package}_service'"
        )
    if package in PROJECT_FOLDERS:
        return (
            f"package_name {package!r} would clash with the project's own {package!r} folder; "
            f"use a name such as 'inventory_{package}'"
        )
    return None


class RejectedAnswer(FailedHookException):
    """A FailedHookException, so that cookiecutter's command line prints it alone."""


def checked_answers(answers: Mapping[str, object]) -> str:
    """Raise RejectedAnswer for a bad project_slug or package_name; render as nothing."""
    problem = slug_problem(str(answers["project_slug"])) or package_problem(
        str(answers["package_name"])
    )
    if problem:
        raise RejectedAnswer(f"ERROR: {problem}")
    return ""


def options_problem(answers: Mapping[str, object]) -> str | None:
    if answers.get("kubernetes") is True and answers.get("use_fastapi") is not True:
        return (
            "kubernetes needs use_fastapi: the manifests run the HTTP service; "
            "use use_fastapi=yes, or kubernetes=no"
        )
    return None


def checked_options(answers: Mapping[str, object]) -> str:
    """Raise RejectedAnswer for options that cannot go together; render as nothing."""
    problem = options_problem(answers)
    if problem:
        raise RejectedAnswer(f"ERROR: {problem}")
    return ""


class AnswerChecks(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["checked_answers"] = checked_answers
        environment.filters["checked_options"] = checked_options
