"""Reject project names that would produce a broken or confusing project.

Cookiecutter deletes the half-rendered folder when this hook exits non-zero, so
a rejected answer leaves nothing behind. Standard library only: cruft re-runs it.
"""

import json
import keyword
import re
import sys

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


def main(answers: dict[str, str]) -> int:
    problem = slug_problem(answers["project_slug"]) or package_problem(answers["package_name"])
    if problem:
        print(f"ERROR: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # tojson inside a raw string keeps any answer, quotes included, valid Python.
    sys.exit(
        main(
            {
                "project_slug": json.loads(r""" {{ cookiecutter.project_slug | tojson }} """),
                "package_name": json.loads(r""" {{ cookiecutter.package_name | tojson }} """),
            }
        )
    )
