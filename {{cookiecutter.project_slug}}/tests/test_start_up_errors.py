"""A command that cannot start says why in one log line per problem, and exits non-zero:
each bad setting by its environment variable, and a database it cannot use by what
failed (the host, the port, the user, the database, or no answer), against real servers."""

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
{%- if cookiecutter.use_fastapi %}
from pydantic import SecretStr
{%- endif %}
from sqlalchemy import URL, make_url

from {{ cookiecutter.package_name }} import cli
{%- if cookiecutter.use_fastapi %}
from {{ cookiecutter.package_name }}.api import app as app_module
from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.db.reachability import CannotConnect
{%- endif %}
from {{ cookiecutter.package_name }}.localpg.cluster import Cluster
from {{ cookiecutter.package_name }}.localpg.processes import postmaster_pid
from {{ cookiecutter.package_name }}.logs import ServiceLogHandler, TextFormatter
{%- if cookiecutter.use_fastapi %}
from {{ cookiecutter.package_name }}.settings import Settings
{%- endif %}
from tests.commands import run_cli
from tests.faults import SECRET, free_port
from tests.harness.servers import connect

COMMANDS = [
    ["migrate"],
    ["revision", "--autogenerate", "-m", "refused"],
{%- if cookiecutter.use_fastapi %}
    ["serve", "--port", "0"],
{%- endif %}
]
TWO_BAD_SETTINGS = {"DB_POOL_SIZE": "0", "DB_STATEMENT_TIMEOUT_MS": "soon"}
TWO_LINES = [
    "DB_POOL_SIZE is not valid: input should be greater than or equal to 1",
    "DB_STATEMENT_TIMEOUT_MS is not valid: input should be a valid integer, "
    "unable to parse string as an integer",
]
# A role of the test's own cluster that must give its password.
ROLE = "app_with_password"
RIGHT_PASSWORD = "right-password"
# Seconds to wait for a frozen server here: psycopg's least (migrate), and for serve.
PSYCOPG_WAIT = 2
SERVE_WAIT = 0.5


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from a folder with no .env, with none of the settings set."""
    monkeypatch.chdir(tmp_path)
    for variable in ("DATABASE_URL", "DATABASE_REPLICA_URLS", "LOG_FORMAT"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
def test_two_bad_settings_are_two_lines_naming_their_variables(
    elsewhere: Path,
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for variable, value in TWO_BAD_SETTINGS.items():
        monkeypatch.setenv(variable, value)
    with caplog.at_level(logging.INFO):
        assert run_cli(*command) == 1
    assert errors_logged(caplog) == TWO_LINES
    # Nothing started: no private PostgreSQL for a command that could not have used it.
    assert not (elsewhere / cli.EMBEDDED_DIR).exists()


def test_bad_settings_are_logged_in_the_log_format_asked_for(elsewhere: Path) -> None:
    # Asked for in .env, read all the same.
    (elsewhere / ".env").write_text("LOG_FORMAT=json\n")
    environment = {**os.environ, **TWO_BAD_SETTINGS}
    result = subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", "migrate"],
        cwd=elsewhere,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(entry["level"], entry["message"]) for entry in entries] == [
        ("ERROR", line) for line in TWO_LINES
    ]


def test_a_bad_log_format_is_reported_as_text(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with caplog.at_level(logging.ERROR):
        assert run_cli("migrate") == 1
    assert errors_logged(caplog) == ["LOG_FORMAT is not valid: input should be 'text' or 'json'"]
    [installed] = [h for h in logging.getLogger().handlers if isinstance(h, ServiceLogHandler)]
    assert isinstance(installed.formatter, TextFormatter)


@pytest.fixture
def password_cluster(restartable_cluster: Cluster) -> Cluster:
    """A cluster of the test's own on which ROLE logs in with a password (SCRAM)."""
    with connect(restartable_cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{RIGHT_PASSWORD}'")
    # pg_hba.conf is read as the server starts; its first matching line decides.
    restartable_cluster.stop()
    hba = restartable_cluster.datadir / "pg_hba.conf"
    hba.write_text(f"local all {ROLE} scram-sha-256\n{hba.read_text()}")
    restartable_cluster.start()
    return restartable_cluster


@pytest.fixture
def frozen_cluster(restartable_cluster: Cluster) -> Iterator[Cluster]:
    """A cluster of the test's own whose server is stopped (SIGSTOP): connections are
    accepted by the system and never answered, as by a machine that hangs."""
    pid = postmaster_pid(restartable_cluster.datadir)
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield restartable_cluster
    finally:
        os.kill(pid, signal.SIGCONT)


def with_password(url: URL | str) -> URL:
    """`url`, given SECRET for a password: what no message may show."""
    return make_url(url).set(drivername="postgresql", password=SECRET)


def address(url: URL) -> str:
    """Where the test server listens, as a message names it: its unix socket, or host:port
    (TEST_DATABASE_URL)."""
    socket_dir = url.query.get("host")
    if isinstance(socket_dir, str):
        return f"{socket_dir}/.s.PGSQL.{url.port or 5432}"
    return f"{url.host}:{url.port or 5432}"


def as_written(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@dataclass(frozen=True)
class Unusable:
    """A database a command cannot use, set as DATABASE_URL with a password."""

    # The one line a command logs: the URL as written, password masked, and what failed.
    message: str
    # The server answered and said no: a wrong user, password or database.
    refused_by_server: bool
    # What no line may show.
    password: str


UNUSABLE = ["wrong password", "missing database", "closed port", "unknown host", "no answer"]
DATABASE_COMMANDS = [("migrate",), ("current",), ("downgrade", "-1")]
# Each reason with migrate; current and downgrade fail through the same path, so they
# skip "no answer", which waits out libpq's shortest connect timeout (2 s) each time.
COMMAND_CASES = [
    pytest.param(reason, command, id=f"{reason}-{command[0]}")
    for command in DATABASE_COMMANDS
    for reason in UNUSABLE
    if command == DATABASE_COMMANDS[0] or reason != "no answer"
]


@pytest.fixture(params=UNUSABLE)
def unusable_database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Unusable:
    if request.param == "wrong password":
        cluster = request.getfixturevalue("password_cluster")
        url = with_password(cluster.url("postgres")).set(username=ROLE)
        reason = f'authentication failed for user "{ROLE}" (wrong password or no such user)'
    elif request.param == "missing database":
        # The right password, as a server asking for one checks it before the database.
        cluster = request.getfixturevalue("password_cluster")
        url = with_password(cluster.url("postgres"))
        url = url.set(username=ROLE, password=RIGHT_PASSWORD, database="no_such_db")
        reason = f'database "no_such_db" does not exist on {address(url)}'
    elif request.param == "closed port":
        port = free_port()
        url = make_url(f"postgresql://app:{SECRET}@127.0.0.1:{port}/app")
        reason = f"connection refused on 127.0.0.1:{port}: no server listens there"
    elif request.param == "unknown host":
        # .invalid is reserved: no resolver finds a name under it (RFC 2606).
        url = make_url(f"postgres://app:{SECRET}@nobody.invalid:6432/app")
        reason = 'host "nobody.invalid" not found'
    else:
        cluster = request.getfixturevalue("frozen_cluster")
        url = with_password(cluster.url("postgres"))
        # libpq's variable, which psycopg reads (migrate); serve waits as long as the app.
        monkeypatch.setenv("PGCONNECT_TIMEOUT", str(PSYCOPG_WAIT))
{%- if cookiecutter.use_fastapi %}
        monkeypatch.setattr(app_module, "STARTUP_CHECK_SECONDS", SERVE_WAIT)
{%- endif %}
        reason = f"no answer from {url.query['host']}/.s.PGSQL.5432 within {PSYCOPG_WAIT} s"
    monkeypatch.setenv("DATABASE_URL", as_written(url))
    assert url.password is not None
    shown = as_written(url).replace(url.password, "***")
    return Unusable(
        message=f"cannot connect to the database at {shown} (DATABASE_URL): {reason}",
        refused_by_server=request.param in {"wrong password", "missing database"},
        password=url.password,
    )


@pytest.mark.parametrize(
    ("unusable_database", "command"), COMMAND_CASES, indirect=["unusable_database"]
)
def test_a_database_command_says_in_one_line_what_failed(
    elsewhere: Path,
    unusable_database: Unusable,
    command: tuple[str, ...],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        assert run_cli(*command) == 1
    [message] = errors_logged(caplog)
    # The resolver's own words follow a host it cannot find, and differ between systems.
    assert message.startswith(unusable_database.message)
    assert unusable_database.password not in caplog.text
{%- if cookiecutter.use_fastapi %}


def test_serve_stops_on_a_refusal_and_starts_while_the_server_is_out_of_reach(
    elsewhere: Path,
    unusable_database: Unusable,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    served: list[object] = []
    monkeypatch.setattr(cli, "serve", lambda *arguments: served.append(arguments))
    with caplog.at_level(logging.INFO):
        exit_code = run_cli("serve", "--port", "0")
    if unusable_database.refused_by_server:
        assert exit_code == 1
        assert errors_logged(caplog) == [unusable_database.message]
        assert served == []
    else:
        # The app then warns, and answers 503 on /health/ready until the server is back.
        assert exit_code == 0
        assert errors_logged(caplog) == []
        assert len(served) == 1
    assert unusable_database.password not in caplog.text


async def test_the_app_does_not_start_when_the_server_refuses_it(
    password_cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    url = with_password(password_cluster.url("postgres")).set(username=ROLE)
    app = create_app(Settings(database_url=SecretStr(as_written(url))))
    with caplog.at_level(logging.WARNING), pytest.raises(CannotConnect):
        async with app.router.lifespan_context(app):
            pytest.fail("the app started")
    shown = as_written(url).replace(SECRET, "***")
    assert errors_logged(caplog) == [
        f"cannot connect to the database at {shown} (DATABASE_URL): "
        f'authentication failed for user "{ROLE}" '
        "(wrong password or no such user)"
    ]
{%- endif %}
