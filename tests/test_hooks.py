"""Answers refused before anything is written, and the post-generation hook."""

import subprocess
from pathlib import Path

import pytest

from hooks import post_gen_project
from tests.conftest import Render
from tests.rendering import COOKIECUTTER, effective_answers, hook_scripts_discarded

# (test id, answers, what the one error line must say)
BAD_NAMES = [
    ("dependency", {"package_name": "sqlalchemy"}, "would shadow the 'sqlalchemy' module"),
    ("alembic", {"package_name": "alembic"}, "would shadow the 'alembic' module"),
    ("stdlib", {"package_name": "asyncio"}, "standard library"),
    ("test", {"package_name": "test"}, "standard library"),
    ("keyword", {"package_name": "class"}, "is a Python keyword"),
    ("leading-digit", {"package_name": "2fa_service"}, "starts with a digit"),
    ("uppercase", {"package_name": "Billing"}, "not a lowercase Python identifier"),
    ("hyphen", {"package_name": "my-service"}, "not a lowercase Python identifier"),
    ("empty-package", {"package_name": ""}, "package_name is empty"),
    ("non-ascii", {"project_name": "Café Service"}, "non-ASCII"),
    ("space", {"project_slug": "my service"}, "project_slug 'my service' is not a valid"),
    ("folder", {"project_slug": "tests", "package_name": "tests"}, "clash with the project's own"),
    # cookiecutter makes the project folder from the slug before any hook runs.
    ("slash", {"project_slug": "nested/dir"}, "project_slug 'nested/dir' is not a valid"),
    ("backslash", {"project_slug": "back\\slash"}, "is not a valid name"),
    ("dot-dot", {"project_slug": "../outside"}, "project_slug '../outside' is not a valid"),
    ("leading-dash", {"project_slug": "-rf"}, "project_slug '-rf' is not a valid"),
    ("shell", {"project_slug": "$(touch pwned)"}, "is not a valid name"),
    ("package-slash", {"package_name": "a/b"}, "not a lowercase Python identifier"),
    ("package-dot-dot", {"package_name": ".."}, "not a lowercase Python identifier"),
    (
        "kubernetes-without-fastapi",
        {"use_fastapi": "no", "kubernetes": "yes"},
        "kubernetes needs use_fastapi",
    ),
]


@pytest.mark.parametrize(
    ("answers", "message"),
    [pytest.param(answers, message, id=test_id) for test_id, answers, message in BAD_NAMES],
)
def test_bad_names_are_rejected_and_leave_nothing(
    tmp_path: Path, answers: dict[str, str], message: str
) -> None:
    arguments = [f"{key}={value}" for key, value in answers.items()]
    with hook_scripts_discarded() as environment:
        result = subprocess.run(
            [*COOKIECUTTER, "--output-dir", str(tmp_path), *arguments],
            capture_output=True,
            text=True,
            check=False,
            env=environment,
        )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    error_lines = [line for line in output.splitlines() if line.startswith("ERROR: ")]
    assert len(error_lines) == 1, output
    assert message in error_lines[0]
    assert "use " in error_lines[0]
    assert list(tmp_path.iterdir()) == []


def test_an_absolute_slug_creates_nothing_anywhere(tmp_path: Path) -> None:
    output_dir, elsewhere = tmp_path / "output", tmp_path / "elsewhere"
    output_dir.mkdir()
    with hook_scripts_discarded() as environment:
        result = subprocess.run(
            [*COOKIECUTTER, "--output-dir", str(output_dir), f"project_slug={elsewhere}/project"],
            capture_output=True,
            text=True,
            check=False,
            env=environment,
        )
    assert result.returncode != 0
    assert f"ERROR: project_slug '{elsewhere}/project' is not a valid name" in result.stdout
    assert sorted(tmp_path.iterdir()) == [output_dir]
    assert list(output_dir.iterdir()) == []


def test_post_gen_hook_can_run_again(render: Render, monkeypatch: pytest.MonkeyPatch) -> None:
    project = render(use_fastapi=False, include_example_models=False)
    before = sorted(str(path.relative_to(project)) for path in project.rglob("*"))
    monkeypatch.chdir(project)
    answers = effective_answers(use_fastapi=False, include_example_models=False)
    post_gen_project.main(answers)
    assert sorted(str(path.relative_to(project)) for path in project.rglob("*")) == before


def test_next_steps_are_printed(tmp_path: Path) -> None:
    with hook_scripts_discarded() as environment:
        result = subprocess.run(
            [*COOKIECUTTER, "-o", str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
            env=environment,
        )
    assert "cd inventory-service" in result.stdout
    assert "uv run inventory_service serve" in result.stdout
    assert "uv run pytest" in result.stdout
