"""Render the template with cookiecutter's own API, as its command line would."""

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cookiecutter.environment import StrictEnvironment
from cookiecutter.generate import generate_context
from cookiecutter.main import cookiecutter
from cookiecutter.prompt import prompt_for_config
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket

TEMPLATE = Path(__file__).resolve().parents[1]
COOKIECUTTER = [sys.executable, "-m", "cookiecutter", str(TEMPLATE), "--no-input"]


class CompiledTemplates(BytecodeCache):
    """Compiled template files kept in memory, keyed by name and source.

    cookiecutter builds a new Jinja environment per render, so without it every
    render of the option matrix compiles every file again (most of a render's time).
    """

    def __init__(self) -> None:
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


def share_compiled_templates(cache: BytecodeCache) -> None:
    create = StrictEnvironment.__init__

    def create_with_cache(self: StrictEnvironment, **kwargs: Any) -> None:
        create(self, **kwargs)
        self.bytecode_cache = cache

    StrictEnvironment.__init__ = create_with_cache  # type: ignore[method-assign]


share_compiled_templates(CompiledTemplates())


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


def effective_answers(**answers: Any) -> dict[str, Any]:
    """The answers cookiecutter renders with: defaults, choices' first values, derived names."""
    context = generate_context(
        context_file=str(TEMPLATE / "cookiecutter.json"), extra_context=answers
    )
    return dict(prompt_for_config(context, no_input=True))
