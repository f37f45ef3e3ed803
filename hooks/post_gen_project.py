"""Remove the files of disabled options, then print the next steps.

Standard library only, offline and idempotent: cruft re-runs it on updates, so
every removal tolerates a path that is already gone.
"""

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

# Each example feature is a folder in each of these places (the package's path is
# filled in), and has migrations of its own; with none chosen, all of them go.
EXAMPLE_FEATURES = ("blog", "ledger")
FEATURE_FOLDERS = ("src/{package}/features", "tests/features", "tests/api")
EXAMPLE_FILES = (
    "migrations/versions/0002_accounts_and_transfers.py",
    "migrations/versions/0003_post_status.py",
    "migrations/versions/0004_users_email_ignoring_case.py",
    "migrations/versions/0005_post_versions.py",
    "migrations/versions/0006_soft_delete.py",
    "benchmarks/data_layer",
    "tests/test_benchmarks.py",
)


IDEMPOTENCY_MIGRATION = "migrations/versions/0007_idempotency_keys.py"


def paths_to_remove(answers: Mapping[str, object]) -> list[str]:
    """Project-relative paths that belong to options not chosen."""
    package = answers["package_name"]
    src = f"src/{package}"
    paths: list[str] = []
    if answers["use_fastapi"] is not True:
        # The HTTP layer, and each feature's endpoints.
        paths += [f"{src}/api", "tests/api"]
        paths += [f"{src}/features/{feature}/api" for feature in EXAMPLE_FEATURES]
        # Idempotency keys answer HTTP requests: without them, their table goes too.
        paths += [f"{src}/features/idempotency", IDEMPOTENCY_MIGRATION]
    if answers["include_example_models"] is not True:
        paths += [
            f"{folder.format(package=package)}/{feature}"
            for folder in FEATURE_FOLDERS
            for feature in EXAMPLE_FEATURES
        ]
        paths += EXAMPLE_FILES
    if answers["id_type"] != "uuid":
        paths += [f"{src}/db/ids.py", "tests/test_ids.py"]
    if answers["ci"] != "github":
        paths.append(".github")
    if answers["ci"] != "gitlab":
        paths.append(".gitlab-ci.yml")
    if answers["use_docker"] is not True:
        paths.append("compose.yaml")
        # The Kubernetes manifests run the image the Dockerfile builds.
        if answers["kubernetes"] is not True:
            paths += ["Dockerfile", ".dockerignore"]
    if answers["kubernetes"] is not True:
        paths.append("deploy")
    if answers["license"] == "none":
        paths.append("LICENSE")
    return paths


def remove(root: Path, relative_paths: list[str]) -> None:
    for relative in relative_paths:
        path = root / relative
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def next_steps(slug: str, package: str, *, use_fastapi: bool) -> str:
    run = f"uv run {package} serve" if use_fastapi else f"uv run {package} migrate"
    return "\n".join(
        [
            "",
            f"Created {slug}. Next steps:",
            f"  cd {slug}",
            "  uv sync",
            f"  {run}",
            "  uv run pytest",
            "",
            "Without DATABASE_URL the service runs on a private PostgreSQL kept in .postgres/,",
            "and the tests start their own throwaway PostgreSQL: no Docker, no server to set up.",
            "Without uv (--group needs pip 25.1 or newer; pip installs the newest versions",
            "allowed, not those in uv.lock):",
            "  python -m venv .venv && .venv/bin/python -m pip install -U 'pip>=25.1'",
            "  .venv/bin/pip install -e . --group dev",
            "",
        ]
    )


def main(answers: Mapping[str, object]) -> None:
    remove(Path.cwd(), paths_to_remove(answers))
    package = str(answers["package_name"])
    use_fastapi = answers["use_fastapi"] is True
    print(next_steps(str(answers["project_slug"]), package, use_fastapi=use_fastapi))


if __name__ == "__main__":
    # tojson inside a raw string keeps any answer, quotes included, valid Python.
    main(json.loads(r""" {{ cookiecutter | tojson }} """))
