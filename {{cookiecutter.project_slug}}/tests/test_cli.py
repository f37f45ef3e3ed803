"""The command line on the embedded default: its server stops with the command, is never
shared with another command, survives a stale pid file; and `revision`."""

import ast
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import URL, BigInteger, Column, Identity, Table, create_engine, inspect, make_url
from sqlalchemy.pool import NullPool

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.db import migrations
from {{ cookiecutter.package_name }}.db.migration_limits import MigrationLockTimeout
from {{ cookiecutter.package_name }}.db.migrations import upgrade_database
from {{ cookiecutter.package_name }}.features import load_models
from {{ cookiecutter.package_name }}.localpg.account import as_account, hand_over, server_account
from {{ cookiecutter.package_name }}.localpg.cluster import APP_ROLE, SUPERUSER, Cluster
from {{ cookiecutter.package_name }}.localpg.embedded import (
    IN_USE_LOCK,
    STANDS_IN_FOR,
    embedded_cluster,
    embedded_root,
    in_use,
    remove_abandoned_stand_ins,
)
from {{ cookiecutter.package_name }}.localpg.errors import ClusterError
from {{ cookiecutter.package_name }}.localpg.processes import is_running, postmaster_pid
from {{ cookiecutter.package_name }}.localpg.scratch import STALE_CACHE_SECONDS
from {{ cookiecutter.package_name }}.settings import get_settings
from tests.harness.servers import SessionDatabase, connect

DATABASE = "{{ cookiecutter.package_name }}"
# The bodies a developer writes in a blank revision, using the imports it came with.
HAND_WRITTEN = {
    "upgrade": 'op.create_table("by_hand", sa.Column("id", sa.BigInteger, primary_key=True))',
    "downgrade": 'op.drop_table("by_hand")',
}


def run_cli(*argv: str) -> int:
    get_settings.cache_clear()
    try:
        return cli.main(list(argv))
    finally:
        get_settings.cache_clear()


def datadir_of(project: Path) -> Path:
    return embedded_root(project / cli.EMBEDDED_DIR) / "data"


@pytest.fixture(scope="module")
def migrated_project(
    tmp_path_factory: pytest.TempPathFactory, server_bindir: Path
) -> Iterator[Path]:
    """A project folder whose embedded cluster `migrate` created; stopped between tests.

    On tmpfs when there is one: the embedded cluster is durable, and its fsyncs on a
    busy disk take seconds.
    """
    shm = Path("/dev/shm")
    on_tmpfs = shm.is_dir() and os.access(shm, os.W_OK)
    base = shm if on_tmpfs else tmp_path_factory.getbasetemp()
    project = Path(tempfile.mkdtemp(prefix="project-", dir=base))
    # As root the server runs as another account, which must reach the cluster.
    project.chmod(0o755)
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.chdir(project)
            monkeypatch.delenv("DATABASE_URL", raising=False)
            assert run_cli("migrate") == 0
        yield project
    finally:
        shutil.rmtree(embedded_root(project / cli.EMBEDDED_DIR), ignore_errors=True)
        shutil.rmtree(project, ignore_errors=True)


@pytest.fixture
def new_project(tmp_path: Path) -> Iterator[Path]:
    """An empty project folder; its embedded cluster is removed afterwards, also when it
    is a stand-in outside the project (as root: pytest's folders are closed to the server)."""
    yield tmp_path
    shutil.rmtree(embedded_root(tmp_path / cli.EMBEDDED_DIR), ignore_errors=True)


@pytest.fixture
def in_project(migrated_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the migrated project, with DATABASE_URL unset."""
    monkeypatch.chdir(migrated_project)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return migrated_project


@pytest.fixture
def versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's Alembic setup that new revisions go to: the real
    migrations folder stays as it is (the test harness's cache key hashes it)."""
    copy = tmp_path / "alembic-copy"
    copy.mkdir()
    # pyproject.toml too: the revision hooks run ruff with the project's settings.
    for name in ("alembic.ini", "pyproject.toml"):
        shutil.copy(migrations.PROJECT_ROOT / name, copy / name)
    shutil.copytree(
        migrations.PROJECT_ROOT / "migrations",
        copy / "migrations",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    monkeypatch.setattr(migrations, "PROJECT_ROOT", copy)
    return copy / "migrations" / "versions"


def test_migrate_creates_the_embedded_default_and_it_keeps_its_data(in_project: Path) -> None:
    # `migrate` created the cluster and stopped it (migrated_project); started again:
    assert (datadir_of(in_project) / "PG_VERSION").is_file()
    with embedded_cluster(cli.EMBEDDED_DIR, DATABASE) as url, connect(url) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone()


def test_the_embedded_default_serves_as_a_role_that_may_not_change_the_schema(
    in_project: Path,
) -> None:
    with cli.configured_database(get_settings()) as settings:
        service, owner = settings.url("psycopg"), settings.migration_url_for("psycopg")
        assert (service.username, owner.username) == (APP_ROLE, SUPERUSER)
        with connect(service) as connection:
            assert connection.execute("SELECT version_num FROM alembic_version").fetchone()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute("CREATE TABLE intruder (id int)")


COMMANDS_ON_THE_CLUSTER = [
    ["migrate"],
    ["revision", "--autogenerate", "-m", "refused"],
{%- if cookiecutter.use_fastapi %}
    ["serve", "--port", "0"],
{%- endif %}
]


@pytest.mark.parametrize("command", COMMANDS_ON_THE_CLUSTER, ids=lambda command: command[0])
def test_a_running_cluster_is_not_adopted(
    in_project: Path,
    versions: Path,
    command: list[str],
{%- if cookiecutter.use_fastapi %}
    monkeypatch: pytest.MonkeyPatch,
{%- endif %}
    caplog: pytest.LogCaptureFixture,
) -> None:
    datadir = datadir_of(in_project)
    revisions = set(versions.glob("*.py"))
{%- if cookiecutter.use_fastapi %}

    def serve(*arguments: object) -> None:
        raise AssertionError("serve ran on a server it did not start")

    monkeypatch.setattr(cli, "serve", serve)
{%- endif %}
    # The server of another command, still running.
    with embedded_cluster(cli.EMBEDDED_DIR, DATABASE) as url:
        pid = postmaster_pid(datadir)
        with caplog.at_level(logging.ERROR):
            assert run_cli(*command) == 1
        (message,) = [
            record.getMessage() for record in caplog.records if record.levelno == logging.ERROR
        ]
        assert "\n" not in message
        assert str(datadir) in message
        assert f"pid {pid}" in message
        assert f"kill {pid}" in message
        # Untouched: the same server, still answering; no revision written.
        assert postmaster_pid(datadir) == pid
        assert set(versions.glob("*.py")) == revisions
        with connect(url) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)


@pytest.fixture(params=["dead process", "unrelated process", "other server's process"])
def stale_pid(request: pytest.FixtureRequest) -> Iterator[tuple[int, bool]]:
    """The pid in a pid file a killed server left, now gone or someone else's; and
    whether that process is alive."""
    if request.param == "dead process":
        exited = subprocess.Popen(["true"])
        exited.wait()
        yield exited.pid, False
    elif request.param == "unrelated process":
        # Running as the server account: PostgreSQL alone would take it for a server.
        sleeper = subprocess.Popen(["sleep", "60"], **as_account(server_account()))
        try:
            yield sleeper.pid, True
        finally:
            sleeper.kill()
            sleeper.wait()
    else:
        # A backend of the test run's own server: a postgres process, on another data directory.
        url = make_url(request.getfixturevalue("postgres_url"))
        with connect(url) as other:
            backend = other.execute("SELECT pg_backend_pid()").fetchone()
            assert backend is not None
            if not is_running(int(backend[0])):
                pytest.skip("the test run's server is on another machine")
            yield int(backend[0]), True


def test_a_stale_pid_file_does_not_prevent_start(
    in_project: Path, stale_pid: tuple[int, bool]
) -> None:
    pid, alive = stale_pid
    pid_file = datadir_of(in_project) / "postmaster.pid"
    pid_file.write_text(f"{pid}\n{pid_file.parent}\n")
    hand_over(pid_file, server_account())
    assert run_cli("migrate") == 0
    assert not pid_file.exists()
    # Whoever has the pid now is left alone.
    assert is_running(pid) == alive


def test_a_stop_signal_stops_the_cluster_and_the_command(
    in_project: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    datadir = datadir_of(in_project)
    server_pids = []

    def interrupted_migrate(settings: object) -> None:
        server_pids.append(postmaster_pid(datadir))
        signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(cli, "migrate", interrupted_migrate)
    handler = signal.getsignal(signal.SIGTERM)
    with caplog.at_level(logging.ERROR):
        assert run_cli("migrate") == 1
    assert "stopped by SIGTERM" in caplog.text
    (server_pid,) = server_pids
    assert server_pid is not None
    assert not is_running(server_pid)
    assert postmaster_pid(datadir) is None
    assert signal.getsignal(signal.SIGTERM) == handler
{%- if cookiecutter.use_fastapi %}


def test_serve_takes_a_positive_number_of_workers(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.parse_arguments(["serve", "--workers", "3"]).workers == 3
    assert cli.parse_arguments(["serve"]).workers == 1
    with pytest.raises(SystemExit):
        cli.parse_arguments(["serve", "--workers", "0"])
    assert "0 is not a positive number" in capsys.readouterr().err
{%- endif %}


def new_upgrade(versions: Path, before: set[Path]) -> list[str]:
    """The statements of the upgrade() in the one revision written since `before`."""
    (written,) = set(versions.glob("*.py")) - before
    module = ast.parse(written.read_text())
    (upgrade,) = [
        node for node in module.body if isinstance(node, ast.FunctionDef) and node.name == "upgrade"
    ]
    return [ast.unparse(statement) for statement in upgrade.body]


def test_revision_autogenerates_on_the_embedded_default(
    in_project: Path, versions: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = set(versions.glob("*.py"))
    with caplog.at_level(logging.INFO):
        assert run_cli("revision", "--autogenerate", "-m", "nothing changed") == 0
    # Autogenerate compares with an up-to-date database: it migrated first.
    assert "the database is at the latest revision" in caplog.text
    assert "the models match the database: no revision written" in caplog.text
    assert set(versions.glob("*.py")) == before
    assert postmaster_pid(datadir_of(in_project)) is None


def test_revision_autogenerates_against_database_url(
    tmp_path: Path,
    versions: Path,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    before = set(versions.glob("*.py"))
    with caplog.at_level(logging.INFO):
        assert run_cli("revision", "--autogenerate", "-m", "nothing changed") == 0
    assert "the models match the database: no revision written" in caplog.text
    assert set(versions.glob("*.py")) == before
    assert not (tmp_path / cli.EMBEDDED_DIR).exists()


def test_revision_autogenerates_a_model_change(
    tmp_path: Path, versions: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    metadata = load_models()
    probe = Table(
        "revision_probe", metadata, Column("id", BigInteger, Identity(), primary_key=True)
    )
    before = set(versions.glob("*.py"))
    try:
        assert run_cli("revision", "--autogenerate", "-m", "add probe") == 0
    finally:
        metadata.remove(probe)
    (statement,) = new_upgrade(versions, before)
    assert statement.startswith("op.create_table('revision_probe'")


def test_a_blank_revision_needs_no_database(
    tmp_path: Path, versions: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    # No server binaries: starting a cluster would fail.
    monkeypatch.setenv("PG_BINDIR", str(tmp_path))
    before = set(versions.glob("*.py"))
    assert run_cli("revision", "-m", "by hand") == 0
    assert new_upgrade(versions, before) == ["pass"]
    assert not (tmp_path / cli.EMBEDDED_DIR).exists()


def test_a_blank_revision_keeps_its_imports_for_the_bodies_written_by_hand(
    tmp_path: Path, versions: Path, database: SessionDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    before = set(versions.glob("*.py"))
    assert run_cli("revision", "-m", "by hand") == 0
    (written,) = set(versions.glob("*.py")) - before
    # What a developer then writes, with no import of their own.
    source = written.read_text()
    for name, body in HAND_WRITTEN.items():
        source = source.replace(
            f"def {name}() -> None:\n    pass", f"def {name}() -> None:\n    {body}"
        )
    written.write_text(source)
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-fix", str(written)],
        cwd=versions.parents[1],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    name, url = database.clones.take()
    try:
        upgrade_database(url.set(drivername="postgresql+psycopg"))
        engine = create_engine(url.set(drivername="postgresql+psycopg"), poolclass=NullPool)
        try:
            with engine.connect() as connection:
                assert inspect(connection).has_table("by_hand")
        finally:
            engine.dispose()
    finally:
        database.clones.release(name)


def previous_revision(revision: str) -> str:
    script = ScriptDirectory.from_config(migrations.alembic_config()).get_revision(revision)
    assert script is not None
    return str(script.down_revision or "base")


def test_current_and_downgrade_on_the_embedded_default(
    in_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (head,) = migrations.head_revisions()
    previous = previous_revision(head)
    try:
        assert run_cli("current") == 0
        assert capsys.readouterr().out == f"{head} (head)\n"
        # Neither command migrates the embedded database first, as the others do.
        assert run_cli("downgrade", "-1") == 0
        assert capsys.readouterr().out == f"{previous}\n"
        assert run_cli("current") == 0
        assert capsys.readouterr().out == f"{previous}\n"
    finally:
        assert run_cli("migrate") == 0
    assert run_cli("current") == 0
    assert capsys.readouterr().out == f"{head} (head)\n"


def test_downgrade_and_current_on_database_url(
    database: SessionDatabase,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    name, url = database.clones.take()
    try:
        monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
        assert run_cli("downgrade", "base") == 0
        assert capsys.readouterr().out == "base\n"
        with connect(url.set(drivername="postgresql+psycopg")) as connection:
            assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == []
        assert run_cli("downgrade", "-1") == 1
        assert "cannot downgrade to -1: " in caplog.text
        assert run_cli("current") == 0
        assert capsys.readouterr().out == "base\n"
        # Autogenerate needs a database at the latest revision, and says so.
        assert run_cli("revision", "--autogenerate", "-m", "too early") == 1
        assert "the database is at base, not at the latest revision" in caplog.text
        assert "run `{{ cookiecutter.package_name }} migrate` first" in caplog.text
    finally:
        database.clones.release(name)


def test_migrate_behind_a_held_lock_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, postgres_url: str
) -> None:
    def held(url: URL, **options: object) -> None:
        raise MigrationLockTimeout("revision 0003 waited more than 5 s for a lock")

    monkeypatch.setattr(cli, "upgrade_database", held)
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    with caplog.at_level(logging.ERROR):
        assert run_cli("migrate") == 1
    assert [record.getMessage() for record in caplog.records] == [
        "revision 0003 waited more than 5 s for a lock"
    ]


def test_data_of_another_major_is_refused_with_what_to_do(
    new_project: Path, monkeypatch: pytest.MonkeyPatch, server_bindir: Path
) -> None:
    monkeypatch.setenv("PG_BINDIR", str(server_bindir))
    data = embedded_root(new_project / cli.EMBEDDED_DIR) / "data"
    data.mkdir(parents=True)
    # A major no server here has: the one that "created" this data directory.
    (data / "PG_VERSION").write_text("9\n")
    with (
        pytest.raises(ClusterError) as refused,
        embedded_cluster(new_project / cli.EMBEDDED_DIR, DATABASE),
    ):
        pytest.fail("the cluster started")
    message = str(refused.value)
    assert f"{data} was created by PostgreSQL 9" in message
    assert "Install PostgreSQL 9 or point PG_BINDIR at one" in message
    assert f"move {data.parent} aside" in message
    assert not (data / "postmaster.pid").exists()


@pytest.fixture
def temp_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temp dir of the test's own, where stand-ins go and the only one swept.

    On tmpfs when there is one (durable clusters fsync); open to the server account.
    """
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix="temp-", dir=base))
    folder.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def unused_for_a_week(folder: Path) -> None:
    week_ago = folder.stat().st_mtime - STALE_CACHE_SECONDS - 60
    os.utime(folder, (week_ago, week_ago))


@pytest.mark.skipif(
    os.geteuid() != 0,
    reason="only as root does the server run as another account, which a project may shut out",
)
def test_a_stand_in_goes_a_week_after_its_project(
    temp_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_bindir: Path
) -> None:
    monkeypatch.setenv("PG_BINDIR", str(server_bindir))
    # Under pytest's folders, which the server account cannot enter.
    project = tmp_path / "project"
    project.mkdir()
    with embedded_cluster(project / cli.EMBEDDED_DIR, DATABASE):
        pass
    stand_in = embedded_root(project / cli.EMBEDDED_DIR)
    assert stand_in.parent == temp_dir
    assert (stand_in / STANDS_IN_FOR).read_text() == f"{project / cli.EMBEDDED_DIR}\n"
    # Not named as the stand-in of the project it names: not ours, whatever it holds.
    stranger = temp_dir / "postgres-someone-0123456789ab"
    (stranger / "data").mkdir(parents=True)
    (stranger / STANDS_IN_FOR).write_text(f"{tmp_path / 'elsewhere' / cli.EMBEDDED_DIR}\n")
    (stranger / IN_USE_LOCK).touch()
    unused_for_a_week(stranger)

    unused_for_a_week(stand_in)
    assert remove_abandoned_stand_ins() == []  # its project is still here

    shutil.rmtree(project)
    # The server of a command killed with kill -9: it runs on, and nothing holds the folder.
    orphan = Cluster(stand_in / "data", bindir=server_bindir, durable=True)
    orphan.start()
    try:
        unused_for_a_week(stand_in)
        assert remove_abandoned_stand_ins() == []
    finally:
        orphan.stop()
    unused_for_a_week(stand_in)
    with in_use(stand_in):
        assert remove_abandoned_stand_ins() == []  # a command is about to start it
    assert remove_abandoned_stand_ins() == []  # that command used it a moment ago
    assert (stand_in / "data" / "PG_VERSION").is_file()

    unused_for_a_week(stand_in)
    assert remove_abandoned_stand_ins() == [stand_in]
    assert not stand_in.exists()
    assert stranger.is_dir()


def test_a_command_waiting_on_a_removal_makes_the_folder_again(tmp_path: Path) -> None:
    stand_in = tmp_path / "postgres-project-0123456789ab"
    stand_in.mkdir()
    (stand_in / IN_USE_LOCK).touch()
    held: list[bool] = []

    def command() -> None:
        with in_use(stand_in):
            held.append((stand_in / IN_USE_LOCK).is_file())

    with (stand_in / IN_USE_LOCK).open() as removal:
        fcntl.flock(removal, fcntl.LOCK_EX)
        waiting = threading.Thread(target=command)
        waiting.start()
        time.sleep(0.2)
        assert held == []
        shutil.rmtree(stand_in)
    waiting.join(timeout=10)
    assert held == [True]
