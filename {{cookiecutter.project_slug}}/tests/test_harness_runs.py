"""Whole pytest runs of the harness, in subprocesses: xdist, concurrent runs, Ctrl-C, SIGKILL.

Each run executes a small generated test file with this project's fixtures and
reports where its database lives, so the outer test can check the server side.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import URL

from {{ cookiecutter.package_name }}.db.migrations import PROJECT_ROOT
from {{ cookiecutter.package_name }}.localpg.cache import build_cache
from {{ cookiecutter.package_name }}.localpg.processes import is_running, postmaster_pid
from {{ cookiecutter.package_name }}.localpg.runs import up_to_date_cache
from {{ cookiecutter.package_name }}.localpg.scratch import locked, reap, scratch_root
from tests.harness.databases import project_migrations

# Every run here starts a private cluster, also when TEST_DATABASE_URL is set.
pytestmark = [pytest.mark.harness, pytest.mark.usefixtures("server_bindir")]

REPORTING_TESTS = """
import json, os
from pathlib import Path
from sqlalchemy import text

async def report(db_session, database, name):
    # The data directory from the harness: the service's role may not read the setting.
    current = (await db_session.execute(text("SELECT current_database()"))).scalar_one()
    out = Path(os.environ["HARNESS_REPORT_DIR"]) / f"{name}-{os.getpid()}.json"
    data_directory = str(database.cluster.datadir)
    out.write_text(json.dumps({"database": current, "data_directory": data_directory}))
"""
FAILING_FIXTURE_TEST = """
import pytest

@pytest.fixture
async def broken(db_session, database):
    await report(db_session, database, "broken")
    raise RuntimeError("a fixture failed")

async def test_broken(broken):
    pass
"""
WAITING_TEST = """
import asyncio
async def test_wait(db_session, database):
    await report(db_session, database, "wait")
    await asyncio.sleep(120)
"""

SERVER_KILLING_TEST = """
import signal, time
from {{ cookiecutter.package_name }}.localpg.processes import postmaster_pid

async def test_kill_the_server(db_session, database):
    await report(db_session, database, "kill")
    backend = (await db_session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    data = json.loads(next(Path(os.environ["HARNESS_REPORT_DIR"]).glob("kill-*")).read_text())
    os.kill(postmaster_pid(Path(data["data_directory"])), signal.SIGKILL)
    # Its backend notices and exits: this test's teardown is the first to fail.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(backend, 0)
        except ProcessLookupError:
            break
        time.sleep(0.01)
"""


def write_tests(folder: Path, count: int = 0, extra: str = "") -> Path:
    body = (
        REPORTING_TESTS
        + extra
        + "".join(
            f"\nasync def test_{index}(db_session, database):\n"
            f"    await report(db_session, database, 't{index}')\n"
            for index in range(count)
        )
    )
    path = folder / "test_generated.py"
    path.write_text(body)
    return path


def start_run(
    test_file: Path, reports: Path, *options: str, environment: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    environment = {**os.environ, **(environment or {}), "HARNESS_REPORT_DIR": str(reports)}
    environment.pop("TEST_DATABASE_URL", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            f"--rootdir={PROJECT_ROOT}",
            "-c",
            str(PROJECT_ROOT / "pyproject.toml"),
            *options,
            str(test_file),
        ],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def output_of(run: subprocess.Popen[str], timeout: float = 300) -> str:
    try:
        output, _ = run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.kill()
        pytest.fail(f"the run did not end within {timeout} s:\n{run.communicate()[0]}")
    return output


def finish(run: subprocess.Popen[str]) -> str:
    output = output_of(run)
    assert run.returncode == 0, output
    return output


def reports(folder: Path) -> list[dict[str, str]]:
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


def wait_for_report(run: subprocess.Popen[str], folder: Path) -> dict[str, str]:
    deadline = time.monotonic() + 60
    while not (found := reports(folder)):
        if run.poll() is not None:
            pytest.fail(f"the run ended before its test:\n{run.communicate()[0]}")
        assert time.monotonic() < deadline, "the run never reached its test"
        time.sleep(0.05)
    return found[0]


@pytest.fixture
def reports_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "reports"
    folder.mkdir()
    return folder


def test_xdist_workers_share_one_cluster_with_a_database_each(
    tmp_path: Path, reports_dir: Path
) -> None:
    finish(start_run(write_tests(tmp_path, count=8), reports_dir, "-n", "2"))
    seen = reports(reports_dir)
    assert len(seen) == 8
    assert len({report["data_directory"] for report in seen}) == 1
    assert len({report["database"] for report in seen}) == 2
    assert not Path(seen[0]["data_directory"]).exists(), "the last worker out left the cluster"


def test_concurrent_runs_do_not_collide(tmp_path: Path, reports_dir: Path) -> None:
    test_file = write_tests(tmp_path, count=3)
    # What a pytest started from an xdist worker's test inherits: it must not join that run.
    inherited = {"PYTEST_XDIST_TESTRUNUID": "0123456789abcdef", "PYTEST_XDIST_WORKER": "gw0"}
    runs = [start_run(test_file, reports_dir, environment=inherited) for _ in range(2)]
    for run in runs:
        finish(run)
    directories = {report["data_directory"] for report in reports(reports_dir)}
    assert len(directories) == 2


def test_ctrl_c_leaves_no_server_and_no_data(tmp_path: Path, reports_dir: Path) -> None:
    run = start_run(write_tests(tmp_path, extra=WAITING_TEST), reports_dir)
    data = Path(wait_for_report(run, reports_dir)["data_directory"])
    pid = postmaster_pid(data)
    assert pid is not None
    run.send_signal(signal.SIGINT)
    output = output_of(run, timeout=120)
    assert "KeyboardInterrupt" in output
    assert not data.exists()
    assert not is_running(pid)


def test_a_failing_fixture_leaves_no_server_and_no_data(tmp_path: Path, reports_dir: Path) -> None:
    run = start_run(write_tests(tmp_path, extra=FAILING_FIXTURE_TEST), reports_dir)
    output = output_of(run)
    assert run.returncode == 1, output
    assert "a fixture failed" in output
    assert not Path(reports(reports_dir)[0]["data_directory"]).exists()


def test_a_dead_server_ends_the_run_once(tmp_path: Path, reports_dir: Path) -> None:
    run = start_run(write_tests(tmp_path, count=20, extra=SERVER_KILLING_TEST), reports_dir)
    output = output_of(run)
    assert run.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "Interrupted: the test PostgreSQL server stopped during the run" in output
    assert "postgres.log" in output
    # The teardown that met the dead server is the one error; no other test ran.
    summary = output.strip().splitlines()[-1]
    outcomes = {word: int(count) for count, word in re.findall(r"(\d+) (\w+)", summary)}
    assert outcomes == {"passed": 1, "error": 1}, summary


def test_the_next_session_reaps_a_killed_run(tmp_path: Path, reports_dir: Path) -> None:
    run = start_run(write_tests(tmp_path, extra=WAITING_TEST), reports_dir)
    data = Path(wait_for_report(run, reports_dir)["data_directory"])
    pid = postmaster_pid(data)
    assert pid is not None
    root = scratch_root()
    # Holding the lock keeps other sessions' reapers off this run until we look.
    with locked(root):
        run.send_signal(signal.SIGKILL)
        output_of(run, timeout=60)
        # SIGKILL runs no clean-up: the server is orphaned until someone reaps it.
        assert is_running(pid)
        assert data.is_dir()
        reaped = reap(root)
    assert data.parent in reaped
    assert not data.exists()
    assert not is_running(pid)


def test_failed_cache_build_leaves_no_server_and_no_folder(server_bindir: Path) -> None:
    def broken_migration(url: URL) -> None:
        raise RuntimeError("migration failed")

    migrations = replace(project_migrations(), apply=broken_migration)
    root = scratch_root()
    target = root / "cache-never-published"
    # Under the lock, as sessions build: no other session's build folder comes or goes.
    with locked(root):
        builds_before = set(root.glob("build-*"))
        with pytest.raises(RuntimeError, match="migration failed"):
            build_cache(server_bindir, root, target, migrations)
        assert not target.exists()
        assert set(root.glob("build-*")) == builds_before


def test_half_built_cache_is_never_used(tmp_path: Path) -> None:
    root = scratch_root()
    abandoned = root / "build-abandoned-by-a-crash"
    with locked(root):
        (abandoned / "data").mkdir(parents=True)
        reaped = reap(root)
    assert abandoned in reaped
    assert not abandoned.exists()


LIGHT_TESTS = """
import sys

async def test_needs_no_database():
    assert "sqlalchemy" not in sys.modules, "a test without a database imported SQLAlchemy"
    assert "psycopg" not in sys.modules and "asyncpg" not in sys.modules
"""
WARNING_TESTS = """
import warnings
from sqlalchemy import exc

async def test_a_sqlalchemy_warning_fails(db_session):
    warnings.warn(exc.SAWarning("a relationship overlaps another"), stacklevel=1)
"""


def test_a_test_without_a_database_imports_no_driver(tmp_path: Path, reports_dir: Path) -> None:
    # The one-test loop: nothing of the database side is imported or started for it.
    test_file = tmp_path / "test_light.py"
    test_file.write_text(LIGHT_TESTS)
    output = finish(start_run(test_file, reports_dir))
    assert "1 passed" in output


def test_sqlalchemy_warnings_still_fail_database_tests(tmp_path: Path, reports_dir: Path) -> None:
    test_file = tmp_path / "test_warning.py"
    test_file.write_text(WARNING_TESTS)
    run = start_run(test_file, reports_dir)
    output = output_of(run)
    assert run.returncode == 1, output
    assert "SAWarning: a relationship overlaps another" in output


OWN_SERVER = """
import json, os, time
from pathlib import Path
from {{ cookiecutter.package_name }}.localpg.processes import process_identity
from {{ cookiecutter.package_name }}.localpg.scratch import scratch_root

def own_run():
    # The harness records this process as an owner of the run once its server is up.
    for owner in scratch_root().glob(f"run-*/owners/{process_identity(os.getpid())}"):
        return owner.parent.parent
    return None
"""
STARTED_DURING_IMPORT = """
deadline = time.monotonic() + 60
# Collection imports this file: the run's server comes up meanwhile.
while own_run() is None:
    assert time.monotonic() < deadline, "no server started while the file was imported"
    time.sleep(0.01)
report = Path(os.environ["HARNESS_REPORT_DIR"]) / "run.json"
report.write_text(json.dumps({"data_directory": str(own_run() / "data")}))
"""
NEEDS_NO_DATABASE = """
async def test_needs_no_database():
    # Longer than a start from the cache takes.
    time.sleep(0.5)
    assert own_run() is None, "a server started for a test that needs none"
"""
USES_THE_DATABASE = """
async def test_uses_the_database(db_session):
    pass
"""


@pytest.fixture
def built_cache(server_bindir: Path) -> None:
    """The migrated cache, from which alone a server starts while tests are collected."""
    with locked(scratch_root()):
        up_to_date_cache(scratch_root(), server_bindir, project_migrations(), build=True)


@pytest.mark.usefixtures("built_cache")
def test_the_server_starts_while_a_file_that_needs_it_is_imported(
    tmp_path: Path, reports_dir: Path
) -> None:
    test_file = tmp_path / "test_early.py"
    test_file.write_text(OWN_SERVER + STARTED_DURING_IMPORT + USES_THE_DATABASE)
    assert "1 passed" in finish(start_run(test_file, reports_dir))
    assert not Path(reports(reports_dir)[0]["data_directory"]).exists()


@pytest.mark.usefixtures("built_cache")
def test_a_server_started_for_a_skipped_test_is_stopped(tmp_path: Path, reports_dir: Path) -> None:
    test_file = tmp_path / "test_skipped.py"
    skipped = "\nimport pytest\n@pytest.mark.skip\n" + USES_THE_DATABASE.lstrip()
    test_file.write_text(OWN_SERVER + STARTED_DURING_IMPORT + skipped)
    assert "1 skipped" in finish(start_run(test_file, reports_dir))
    assert not Path(reports(reports_dir)[0]["data_directory"]).exists()


@pytest.mark.usefixtures("built_cache")
@pytest.mark.parametrize("selection", ["a file without", "-k", "node id"])
def test_a_run_of_tests_that_need_no_database_starts_no_server(
    tmp_path: Path, reports_dir: Path, selection: str
) -> None:
    test_file = tmp_path / "test_light.py"
    body = OWN_SERVER + NEEDS_NO_DATABASE
    options: list[str] = []
    if selection != "a file without":
        body += USES_THE_DATABASE
    if selection == "-k":
        options = ["-k", "needs_no_database"]
    test_file.write_text(body)
    target = f"{test_file}::test_needs_no_database" if selection == "node id" else test_file
    output = finish(start_run(Path(target), reports_dir, *options))
    assert "1 passed" in output
