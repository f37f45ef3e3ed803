"""Render the template with the cookiecutter API into temporary folders."""

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]

Render = Callable[..., Path]


@contextmanager
def hook_scripts_discarded() -> Iterator[dict[str, str]]:
    """Point temporary files at a folder removed afterwards; yields an environment for subprocesses.

    cookiecutter writes each rendered hook to a temporary file it never deletes,
    which would leave two files in /tmp for every render of the matrix.
    """
    with tempfile.TemporaryDirectory(prefix="template-hooks-") as folder:
        previous = tempfile.tempdir
        tempfile.tempdir = folder
        try:
            yield {**os.environ, "TMPDIR": folder}
        finally:
            tempfile.tempdir = previous


def render_into(output_dir: Path, **answers: Any) -> Path:
    """Render without prompts; returns the project folder."""
    with hook_scripts_discarded():
        project = cookiecutter(
            str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(output_dir)
        )
    return Path(project)


@pytest.fixture
def render(tmp_path: Path) -> Render:
    def _render(**answers: Any) -> Path:
        return render_into(tmp_path, **answers)

    return _render
