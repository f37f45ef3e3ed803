"""Render the template with the cookiecutter API into temporary folders."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]

Render = Callable[..., Path]


def render_into(output_dir: Path, **answers: Any) -> Path:
    """Render without prompts; returns the project folder."""
    return Path(
        cookiecutter(
            str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(output_dir)
        )
    )


@pytest.fixture
def render(tmp_path: Path) -> Render:
    def _render(**answers: Any) -> Path:
        return render_into(tmp_path, **answers)

    return _render
