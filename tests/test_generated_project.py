"""Slow tier: install rendered projects and run their lint, types and full test suite.

All renders share uv's package cache, so only the first install downloads.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.commands import HIDE_SYSTEM_POSTGRES, UV, in_mount_namespace, run
from tests.options import MAJORS_WITHOUT_THE_EXAMPLES, SLOW_COMBINATIONS
from tests.rendering import TEMPLATE, hook_scripts_discarded, render_into
from tests.server_wheels import PACKAGE, add_server_wheel, unpack_server

# Rendered suites run side by side, as two projects of one user would: they share
# the harness's scratch folder and must not disturb each other there.
pytestmark = pytest.mark.slow
Wrapper = Callable[[list[str]], list[str]]


def as_is(command: list[str]) -> list[str]:
    return command


def without_system_postgres(command: list[str]) -> list[str]:
    return in_mount_namespace(HIDE_SYSTEM_POSTGRES, command)


def install(project: Path, installer: str = "uv") -> Path:
    """Install the project and its dev group the way its README says; returns the venv's bin."""
    bin_dir = project / ".venv" / "bin"
    if installer == "uv":
        assert UV is not None, "uv is not installed; run scripts/bootstrap"
        # --locked: the shipped uv.lock must match; compiled once, since CI machines
        # often set PYTHONDONTWRITEBYTECODE and every interpreter would compile again.
        locked = ["--locked"] if (project / "uv.lock").is_file() else []
        run(project, UV, "sync", "--quiet", "--compile-bytecode", *locked)
    else:
        run(project, sys.executable, "-m", "venv", ".venv")
        # --group needs pip 25.1 or newer.
        run(project, str(bin_dir / "pip"), "install", "--quiet", "pip>=25.1")
        run(project, str(bin_dir / "pip"), "install", "--quiet", "-e", ".", "--group", "dev")
    return bin_dir


def assert_suite_passes(project: Path, *options: str, wrap: Wrapper = as_is) -> str:
    """Run the project's pytest; returns what it printed, header included."""
    bin_dir = project / ".venv" / "bin"
    command = wrap([str(bin_dir / "pytest"), "-p", "no:cacheprovider", *options])
    tests = run(project, *command)
    summary = tests.stdout.strip().splitlines()[-1]
    assert " passed" in summary
    assert "failed" not in summary
    assert "skipped" not in summary
    return tests.stdout


def assert_runs_on_the_wheels_server(project: Path, major: str) -> None:
    """The suite passes on the server wheel of `major`, with the system's server hidden.

    Its header names the server the harness found, and its own test checks that the
    server it ran answered SHOW server_version with that version.
    """
    version = add_server_wheel(project, major)
    output = assert_suite_passes(project, wrap=without_system_postgres)
    release = ".".join(version.split(".")[:2])
    assert f"PostgreSQL {release} from " in output, output[:2000]


def assert_green(project: Path, installer: str = "uv") -> None:
    """Install the project, then its lint, types and whole test suite must pass, on the
    server wheel of the project's PostgreSQL major."""
    bin_dir = install(project, installer)
    run(project, str(bin_dir / "ruff"), "check", ".")
    run(project, str(bin_dir / "ruff"), "format", "--check", ".")
    run(project, str(bin_dir / "mypy"))
    major = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["localpg"]
    assert_runs_on_the_wheels_server(project, str(major["postgres-major"]))


@pytest.mark.parametrize(("answers", "installer"), SLOW_COMBINATIONS)
def test_rendered_project_is_green(
    workspace: Path, answers: dict[str, Any], installer: str
) -> None:
    assert_green(render_into(workspace, **answers), installer)


@pytest.mark.parametrize("major", MAJORS_WITHOUT_THE_EXAMPLES)
def test_the_default_render_runs_on_each_major(workspace: Path, major: str) -> None:
    # The default answers on the majors that no slow row runs with the examples.
    project = render_into(workspace, postgres_version=major)
    install(project)
    assert_runs_on_the_wheels_server(project, major)


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param({}, id="default"),
        pytest.param({"use_fastapi": False, "include_example_models": False}, id="skeleton"),
    ],
)
def test_harness_self_tests_pass(workspace: Path, answers: dict[str, Any]) -> None:
    # A generated project's own pytest leaves them out: they test the template's harness.
    project = render_into(workspace, **answers)
    install(project)
    assert_suite_passes(project, "--harness", "-m", "harness")


def git(repository: Path, *arguments: str) -> str:
    identity = ["-c", "user.name=Template Tests", "-c", "user.email=tests@example.com"]
    return run(repository, "git", *identity, *arguments).stdout.strip()


def test_cruft_update_brings_a_template_change_into_a_generated_project(workspace: Path) -> None:
    # The template as committed, plus an "earlier" commit the test makes: a file
    # the template has now is missing and .env.example lacks its last line.
    template = workspace / "template"
    run(workspace, "git", "clone", "--quiet", str(TEMPLATE), str(template))
    env_example = template / "{{cookiecutter.project_slug}}" / ".env.example"
    current_env = env_example.read_text()
    env_example.write_text("".join(current_env.splitlines(keepends=True)[:-1]))
    (template / "{{cookiecutter.project_slug}}" / "benchmarks" / "per_test_cost.py").unlink()
    git(template, "commit", "--quiet", "-am", "an earlier template")
    earlier = git(template, "rev-parse", "HEAD")
    git(template, "revert", "--no-edit", "HEAD")
    latest = git(template, "rev-parse", "HEAD")

    cruft = shutil.which("cruft", path=str(Path(sys.executable).parent)) or "cruft"
    with hook_scripts_discarded() as environment:
        run(
            workspace,
            cruft,
            "create",
            str(template),
            "--checkout",
            earlier,
            "-y",
            "--output-dir",
            str(workspace / "out"),
            base_environment=environment,
        )
    project = workspace / "out" / "inventory-service"
    git(project, "init", "--quiet")
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", "generated")
    with (project / "README.md").open("a") as readme:
        readme.write("\nOur own notes.\n")
    git(project, "commit", "--quiet", "-am", "a change of our own")

    with hook_scripts_discarded() as environment:
        run(project, cruft, "update", "-y", "--checkout", latest, base_environment=environment)

    assert list(project.rglob("*.rej")) == []
    assert not [
        line
        for line in git(project, "status", "--porcelain").splitlines()
        if line[:2] in {"UU", "AA", "DU", "UD"}
    ]
    assert (project / ".env.example").read_text().endswith(current_env.splitlines()[-1] + "\n")
    assert (project / "benchmarks" / "per_test_cost.py").is_file()
    assert (project / "README.md").read_text().endswith("Our own notes.\n")
    assert json.loads((project / ".cruft.json").read_text())["commit"] == latest
    assert_green(project)


def test_pre_commit_runs_the_checks_and_refuses_a_second_head(workspace: Path) -> None:
    project = render_into(workspace)
    git(project, "init", "--quiet")
    git(project, "add", "-A")
    assert UV is not None, "uv is not installed; run scripts/bootstrap"
    pre_commit = [UV, "tool", "run", "pre-commit", "run", "--all-files"]
    # The hooks run `uv run`, so uv must be on PATH, as after installing it.
    path = f"{Path(UV).parent}{os.pathsep}{os.environ['PATH']}"
    environment = {**os.environ, "PATH": path}
    passed = run(project, *pre_commit, base_environment=environment).stdout
    assert "migrations have one head" in passed
    versions = project / "migrations" / "versions"
    # The shipped revisions are numbered: the last is the head.
    latest = max(versions.glob("[0-9]*.py"))
    head = latest.name.split("_")[0]
    (versions / f"{head}b_fork.py").write_text(
        latest.read_text().replace(f'revision: str = "{head}"', f'revision: str = "{head}b"')
    )
    git(project, "add", "-A")
    refused = run(project, *pre_commit, base_environment=environment, check=False)
    assert refused.returncode != 0
    assert f"migrations/ has 2 heads ['{head}', '{head}b']" in refused.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def create_user(base: str, email: str) -> None:
    request = urllib.request.Request(
        f"{base}/users",
        data=json.dumps({"email": email, "name": "Ada"}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201


@pytest.mark.parametrize("workers", [1, 2])
def test_default_service_runs_on_its_embedded_database(workspace: Path, workers: int) -> None:
    project = render_into(workspace)
    bin_dir = install(project)
    port, metrics_port = free_port(), free_port()
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    if workers > 1:
        # Metrics on a port of their own, for every worker: METRICS_PORT.
        environment["METRICS_PORT"] = str(metrics_port)
    command = ["serve", "--port", str(port), "--workers", str(workers)]
    service = subprocess.Popen(
        [str(bin_dir / "inventory_service"), *command],
        cwd=project,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started = ""
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/health/live")
        create_user(base, "ada@example.com")
        with urllib.request.urlopen(f"{base}/users") as response:
            assert b"ada@example.com" in response.read()
        with urllib.request.urlopen(f"{base}/health/ready") as response:
            assert response.status == 200
        started = read_until_workers_started(service, count=workers)
        if workers > 1:
            pids = [int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", started)]
            # With one worker stopped, another answers every request alone: each serves.
            for stopped in pids:
                os.kill(stopped, signal.SIGSTOP)
                try:
                    for attempt in range(3):
                        create_user(base, f"user-{stopped}-{attempt}@example.com")
                finally:
                    os.kill(stopped, signal.SIGCONT)
        assert_requests_counted(base, metrics_port if workers > 1 else None, workers)
        server_pid = int((project / ".postgres" / "data" / "postmaster.pid").read_text().split()[0])
    finally:
        # What docker stop, systemd and Kubernetes send.
        service.send_signal(signal.SIGTERM)
        output = started + service.communicate(timeout=60)[0]
    assert service.returncode == 0, output
    assert "DATABASE_URL is not set" in output
    # The service connects as a role of its own; the superuser migrates.
    assert "private PostgreSQL at postgresql://inventory_service_app@/" in output
    assert "(migrated by postgres)" in output
    data = project / ".postgres" / "data"
    assert (data / "PG_VERSION").is_file()
    assert not (data / "postmaster.pid").exists(), "the embedded server was left running"
    assert not Path(f"/proc/{server_pid}").exists(), "the embedded server was left running"


def assert_requests_counted(base: str, metrics_port: int | None, workers: int) -> None:
    """The users created, as a scrape counts them: on the API's port, or on METRICS_PORT
    for all workers together, which each served some."""
    if metrics_port is None:
        scraped = f"{base}/metrics"
    else:
        scraped = f"http://127.0.0.1:{metrics_port}/metrics"
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"{base}/metrics")
    with urllib.request.urlopen(scraped) as response:
        text = response.read().decode()
    # The text format: one sample a line, `name{labels} value`.
    counted = re.findall(
        r'^http_server_requests_total\{method="POST",route="/users",status="201"\} (\S+)$',
        text,
        re.MULTILINE,
    )
    created = sum(float(value) for value in counted)
    # One user, then three by each worker while the others were stopped.
    assert created == 1 + (3 * workers if workers > 1 else 0)


def read_until_workers_started(service: "subprocess.Popen[str]", count: int) -> str:
    """The service's output up to the start of its `count`-th worker process."""
    assert service.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while sum("Started server process" in line for line in lines) < count:
        assert time.monotonic() < deadline, "".join(lines)
        line = service.stdout.readline()
        assert line, f"serve exited before its workers started:\n{''.join(lines)}"
        lines.append(line)
    return "".join(lines)


def test_the_default_render_runs_on_a_server_named_only_by_pg_bindir(workspace: Path) -> None:
    """As with Postgres.app, an EDB install or a build of one's own: no system server, no
    wheel in the environment, PG_BINDIR alone; and the suite leaves its temp dir empty."""
    project = render_into(workspace)
    install(project)
    # Where uv sync installs the server wheel (Python 3.12+), it would be found without PG_BINDIR.
    for wheel in (project / ".venv" / "lib").glob(f"python3.*/site-packages/{PACKAGE}"):
        shutil.rmtree(wheel)
    # The project's major: the default render's row has its wheel downloaded already.
    major = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["localpg"]
    bindir = unpack_server(str(major["postgres-major"]), workspace / "server")
    # The suite's own temp dir: what is in it afterwards, the suite left behind. As root,
    # the server account must reach the clusters and sockets placed there.
    temp = workspace / "tmp"
    temp.mkdir()
    temp.chmod(0o755)

    def only_pg_bindir(command: list[str]) -> list[str]:
        return without_system_postgres(["env", f"PG_BINDIR={bindir}", f"TMPDIR={temp}", *command])

    output = assert_suite_passes(project, wrap=only_pg_bindir)
    assert f"from {bindir}" in output, output[:2000]
    left = [path.name for path in temp.iterdir() if not path.name.startswith("pytest-of-")]
    assert left == []


PROBE_MODELS = """
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from inventory_service.db.base import Base, Key, primary_key


class Probe(Base):
    __tablename__ = "probes"

    id: Mapped[Key] = primary_key()
    label: Mapped[str] = mapped_column(String(50))
"""
# Run by the project's Python: the embedded cluster, started again, as the service's role.
USE_AS_THE_SERVICE = """
import psycopg
from inventory_service.cli import configured_database
from inventory_service.settings import get_settings

with configured_database(get_settings()) as settings:
    url = settings.url("psycopg")
    with psycopg.connect(
        host=url.query["host"], user=url.username, dbname=url.database, autocommit=True
    ) as connection:
        connection.execute("INSERT INTO probes (label) VALUES ('a')")
        connection.execute("UPDATE probes SET label = 'b'")
        print(url.username, connection.execute("SELECT label FROM probes").fetchone()[0])
        connection.execute("DELETE FROM probes")
        try:
            connection.execute("DROP TABLE probes")
        except psycopg.errors.InsufficientPrivilege as refused:
            print(refused)
"""


def test_a_table_autogenerated_on_the_embedded_default_is_granted_to_the_service(
    workspace: Path,
) -> None:
    project = render_into(workspace)
    bin_dir = install(project)
    feature = project / "src" / "inventory_service" / "features" / "probes"
    feature.mkdir()
    (feature / "__init__.py").write_text("")
    (feature / "models.py").write_text(PROBE_MODELS.lstrip())
    versions = project / "migrations" / "versions"
    before = set(versions.glob("*.py"))
    command = str(bin_dir / "inventory_service")
    run(project, command, "revision", "--autogenerate", "-m", "add probes")
    [revision] = set(versions.glob("*.py")) - before
    assert "op.create_table(" in revision.read_text()
    run(project, command, "migrate")
    used = run(project, str(bin_dir / "python"), "-c", USE_AS_THE_SERVICE).stdout.splitlines()
    assert used == ["inventory_service_app b", "must be owner of table probes"]
