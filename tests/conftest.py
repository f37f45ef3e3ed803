"""Fixtures shared by the template's tests."""

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.rendering import render_into

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
