"""Slow tier: each rendered CI pipeline runs as written, and passes.

The fast tier only parses the CI files; a pipeline that lints clean can still
fail on the runner (a missing package, a test that needs a private cluster, a
database left behind on the service). Here each job runs step by step against
a real PostgreSQL service (see tests/pipelines.py for what is emulated).
Pipelines are covered with the default answers and with the smallest project
(no FastAPI, no examples); the other slow-tier combinations change the
project, not the pipeline.
"""

import os
from pathlib import Path
from typing import Any

import pytest

from tests.commands import UV, run
from tests.options import RUNNABLE_PYTHON, combination_id
from tests.pipelines import (
    HIDDEN_SERVER_PROBE,
    SERVER_ADDRESS,
    SERVER_PORT,
    Job,
    Machine,
    Service,
    postgres_service,
    prepare_machine,
    read_job,
    run_in_job,
    run_job,
)
from tests.rendering import render_into

pytestmark = pytest.mark.slow

SMALLEST_PROJECT = {"use_fastapi": False, "include_example_models": False}
PIPELINE_RENDERS = [
    pytest.param(
        {"ci": ci, **answers, "python_version": RUNNABLE_PYTHON},
        id=combination_id({"ci": ci, **answers}),
    )
    for ci in ("github", "gitlab")
    for answers in ({}, SMALLEST_PROJECT)
]


def check_out(project: Path) -> None:
    """A runner's checkout is a git working tree; tools such as ruff read its ignore files."""
    identity = ["-c", "user.name=Template Tests", "-c", "user.email=tests@example.com"]
    run(project, "git", "init", "--quiet")
    run(project, "git", "add", "--all")
    run(project, "git", *identity, "commit", "--quiet", "--message", "checkout")


def assert_machine_is_the_image(job: Job, machine: Machine, project: Path) -> None:
    """GitLab: the service answers to its names, and no server binaries are left to find."""
    for name in job.service.hostnames:
        lookup = run_in_job(job, machine, project, "lookup", f"getent hosts {name}")
        assert lookup.output.split()[:1] == [SERVER_ADDRESS], lookup.output
    probe = run_in_job(job, machine, project, "server binaries hidden", HIDDEN_SERVER_PROBE)
    assert probe.returncode == 0, f"PostgreSQL server binaries are visible:\n{probe.output}"


@pytest.mark.parametrize("answers", PIPELINE_RENDERS)
def test_rendered_pipeline_passes(workspace: Path, answers: dict[str, Any]) -> None:
    if answers["ci"] == "gitlab" and os.geteuid() != 0:
        pytest.skip("the GitLab job's private mount namespace needs root")
    project = render_into(workspace, **answers)
    check_out(project)
    job = read_job(project)
    assert job.ci == answers["ci"]
    assert UV is not None
    with postgres_service(job.service, workspace / "service") as service:
        fresh_databases, fresh_roles = service.databases(), service.roles()
        machine = prepare_machine(job, workspace / "runner")
        if job.ci == "gitlab":
            assert_machine_is_the_image(job, machine, project)
        result = run_job(job, machine, project, Path(UV), workspace / "runner")
        print(f"{job.ci} pipeline, step times:\n{result.timings()}")
        if result.failed is not None:
            pytest.fail(result.failure_report(), pytrace=False)
        # The suite drops the test_* databases and roles it made; nothing else may appear either.
        left_behind = sorted(set(service.databases()) - set(fresh_databases))
        left_behind += sorted(set(service.roles()) - set(fresh_roles))
    assert left_behind == []


def test_pipeline_service_demands_the_password(workspace: Path) -> None:
    service = Service(password="pipeline-secret", port=SERVER_PORT, hostnames=())
    with postgres_service(service, workspace / "service") as running:
        assert running.query("SELECT 1").stdout.strip() == "1"
        refused = running.query("SELECT 1", password="wrong")
        assert refused.returncode != 0
        assert "password authentication failed" in refused.stderr
