"""Fixtures shared by the template's tests."""

import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.commands import UV, run
from tests.rendering import effective_answers, render_into

Render = Callable[..., Path]


@pytest.fixture
def render(tmp_path: Path) -> Render:
    def _render(**answers: Any) -> Path:
        return render_into(tmp_path, **answers)

    return _render


@pytest.fixture
def workspace() -> Iterator[Path]:
    """A folder the PostgreSQL server account can enter even when we are root."""
    path = Path(tempfile.mkdtemp(prefix="template-render-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def runnable_by_any_account(path: Path) -> bool:
    resolved = path.resolve()
    return all(part.stat().st_mode & stat.S_IXOTH for part in (resolved, *resolved.parents))


def interpreter_for_any_account(version: str) -> str:
    """The first python`version` on PATH that any account may run, as the image's own: the
    Kubernetes rehearsal runs the project as the pod's user, who cannot reach into root's
    home (pyenv's interpreters), nor start the workers' interpreters there."""
    candidates = [Path(folder) / f"python{version}" for folder in os.get_exec_path()]
    usable = [path for path in candidates if path.is_file() and runnable_by_any_account(path)]
    assert usable, f"no python{version} on PATH that every account may run"
    return str(usable[0])


@pytest.fixture(scope="session")
def installed_project() -> Iterator[Path]:
    """One render with compose and the Kubernetes manifests, installed as the image installs
    it (uv sync --locked --no-dev), for the slow tests that run its commands as written.

    Outside /tmp, which the Kubernetes rehearsal covers with the pod's emptyDir; readable
    by the accounts the rehearsals run as.
    """
    folder = Path(tempfile.mkdtemp(prefix="template-installed-", dir="/var/tmp"))
    folder.chmod(0o755)
    answers = {"use_docker": True, "kubernetes": True}
    project = render_into(folder, **answers)
    python = interpreter_for_any_account(effective_answers(**answers)["python_version"])
    assert UV is not None
    run(project, UV, "sync", "--quiet", "--locked", "--no-dev", "--python", python)
    yield project
    shutil.rmtree(folder, ignore_errors=True)
