"""Slow tier: the rendered compose.yaml's replica and roles, run as written, without Docker.

There is no Docker engine here, so each container is emulated by its effect, as
tests/pipelines.py does for CI services. `db` is this machine's PostgreSQL,
initialised as the official image does (the POSTGRES_* user, password and
database, then the SQL files mounted in /docker-entrypoint-initdb.d) and started
with the service's own command and pg_hba config. `migrate` runs the rendered
project's command with its environment, the service names replaced by addresses.
`db-replica`'s command runs as written, as the postgres account its `user:`
names, in a mount namespace where the service names resolve: `db` to
127.0.0.2, `db-replica` to 127.0.0.3, standing in for each container's own
address.

Not reproduced: the image's major (this machine's 15 runs whatever tag the file
names), and its `listen_addresses = '*'`: the primary listens on its address by
command line, and its postgresql.conf (which pg_basebackup copies) names the
replica's, so that both can use port 5432 on one machine.
"""

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.commands import in_mount_namespace
from tests.pipelines import SERVER_BINDIR, as_server_account, exclusive, hand_over
from tests.rendering import render_into

pytestmark = pytest.mark.slow

ADDRESSES = {"db": "127.0.0.2", "db-replica": "127.0.0.3"}
INIT_FOLDER = "/docker-entrypoint-initdb.d/"
LOCK = Path("/tmp/template-compose-emulation.lock")


@dataclass(frozen=True)
class URL:
    username: str
    password: str
    host: str
    port: int
    database: str

    @classmethod
    def parse(cls, url: str) -> "URL":
        parts = urlsplit(url)
        return cls(
            username=parts.username or "",
            password=parts.password or "",
            host=parts.hostname or "",
            port=parts.port or 5432,
            database=parts.path.lstrip("/"),
        )

    def text(self) -> str:
        return (
            f"postgresql://{self.username}:{self.password}@{self.host}:{self.port}/{self.database}"
        )


@dataclass(frozen=True)
class Services:
    compose: dict[str, Any]
    folder: Path

    @property
    def major(self) -> int:
        return int(self.db["image"].rpartition(":")[2])

    @property
    def db(self) -> dict[str, Any]:
        return dict(self.compose["services"]["db"])

    @property
    def replica(self) -> dict[str, Any]:
        return dict(self.compose["services"]["db-replica"])

    def url(self, service: str, variable: str) -> URL:
        """A URL from a service's environment, with the service name replaced by its address."""
        url = URL.parse(self.compose["services"][service]["environment"][variable])
        return replace(url, host=ADDRESSES[url.host])

    def init_scripts(self) -> list[str]:
        """The SQL the image runs when it creates the cluster, in the order of its file names."""
        mounted = {
            config["target"]: self.compose["configs"][config["source"]]["content"]
            for config in self.db.get("configs", [])
            if config["target"].startswith(INIT_FOLDER) and config["target"].endswith(".sql")
        }
        return [mounted[target] for target in sorted(mounted)]


def psql(url: URL, statement: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(SERVER_BINDIR / "psql"),
            f"--host={url.host}",
            f"--port={url.port}",
            f"--username={url.username}",
            f"--dbname={url.database}",
            "--no-psqlrc",
            "--tuples-only",
            "--no-align",
            f"--command={statement}",
        ],
        env={"PATH": os.environ["PATH"], "PGPASSWORD": url.password, "PGCONNECT_TIMEOUT": "5"},
        capture_output=True,
        text=True,
        check=False,
    )


def eventually(
    url: URL,
    statement: str,
    expected: str,
    container: subprocess.Popen[bytes],
    log: Path,
    seconds: float = 60,
) -> None:
    """Wait for `statement` to answer `expected`; fail at once if the container exits."""
    deadline = time.monotonic() + seconds
    while (answer := psql(url, statement)).stdout.strip() != expected:
        if container.poll() is not None:
            pytest.fail(f"{answer.stderr}\nthe container exited:\n{log.read_text()[-3000:]}")
        assert time.monotonic() < deadline, f"{answer.stderr}\n{log.read_text()[-3000:]}"
        time.sleep(0.1)


# Compose's own substitution in the file: `$$` is a literal `$`; `$NAME` and `${NAME}` are
# replaced by the variable from the shell compose runs in.
SUBSTITUTION = re.compile(r"\$\$|\$\{(\w+)\}|\$(\w+)")


def interpolated(value: str, shell: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        return "$" if name is None else shell.get(name, "")

    return SUBSTITUTION.sub(substitute, value)


def compose_command(arguments: list[str], substitutions: dict[str, str]) -> list[str]:
    """A service's command as compose runs it, from a shell without PostgreSQL variables,
    and with the paths the image has mapped onto this machine's."""
    command = []
    for argument in arguments:
        for image_path, here in substitutions.items():
            argument = argument.replace(image_path, here)
        command.append(interpolated(argument, shell={}))
    return command


@contextlib.contextmanager
def running(
    command: list[str], log: Path, environment: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd="/",
            start_new_session=True,
        )
    try:
        yield process
    finally:
        # What `docker stop` sends; PostgreSQL then shuts down in order.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def primary(services: Services) -> Iterator[URL]:
    """`db`: initialised like the official image, started with the service's command."""
    account = as_server_account()
    folder = services.folder / "db"
    folder.mkdir()
    environment = services.db["environment"]
    password_file = folder / "password"
    password_file.write_text(environment["POSTGRES_PASSWORD"] + "\n")
    hba_file = folder / "pg_hba.conf"
    hba_file.write_text(services.compose["configs"]["pg_hba"]["content"])
    replica_sockets = services.folder / "replica-sockets"
    replica_sockets.mkdir()
    for path in (folder, password_file, hba_file, replica_sockets):
        hand_over(path, account)
    datadir = folder / "data"
    subprocess.run(
        [
            str(SERVER_BINDIR / "initdb"),
            f"--pgdata={datadir}",
            f"--username={environment['POSTGRES_USER']}",
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "--no-sync",
        ],
        cwd="/",
        capture_output=True,
        check=True,
        **account,
    )
    with (datadir / "postgresql.conf").open("a") as conf:
        conf.write(
            f"listen_addresses = '{ADDRESSES['db-replica']}'\n"
            f"unix_socket_directories = '{replica_sockets}'\n"
        )
    [hba_target] = [
        config["target"] for config in services.db["configs"] if config["source"] == "pg_hba"
    ]
    command = compose_command(services.db["command"], {hba_target: str(hba_file)})
    assert command[0] == "postgres"
    server = [
        "setpriv",
        "--reuid=postgres",
        "--regid=postgres",
        "--clear-groups",
        str(SERVER_BINDIR / "postgres"),
        f"-D{datadir}",
        f"-clisten_addresses={ADDRESSES['db']}",
        f"-cunix_socket_directories={folder}",
        *command[1:],
    ]
    admin = URL(
        username=environment["POSTGRES_USER"],
        password=environment["POSTGRES_PASSWORD"],
        host=ADDRESSES["db"],
        port=5432,
        database="postgres",
    )
    log = folder / "postgres.log"
    with running(server, log, {"PATH": os.environ["PATH"]}) as container:
        eventually(admin, "SELECT 1", "1", container, log)
        created = psql(admin, f'CREATE DATABASE "{environment["POSTGRES_DB"]}"')
        assert created.returncode == 0, created.stderr
        db = replace(admin, database=environment["POSTGRES_DB"])
        for script in services.init_scripts():
            initialised = psql(db, script)
            assert initialised.returncode == 0, initialised.stderr
        yield db


def replica_up(services: Services) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """One `docker compose up` of `db-replica`: its command, in its container's stead."""
    hosts = services.folder / "hosts"
    names = "".join(f"{address} {name}\n" for name, address in ADDRESSES.items())
    hosts.write_text(Path("/etc/hosts").read_text() + names)
    volume = services.folder / "db-replica-data"
    if not volume.exists():
        # As the image leaves its data folder (up to 17) or the folder above it (18):
        # world-writable, owned by postgres.
        volume.mkdir()
        volume.chmod(0o1777)
        hand_over(volume, as_server_account())
    # The image's PGDATA: the volume itself up to 17, a folder per major below it from 18.
    pgdata = volume if services.major < 18 else volume / str(services.major) / "docker"
    as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups"]
    command = in_mount_namespace(
        f"mount --bind {hosts} /etc/hosts",
        [*as_postgres, *compose_command(services.replica["command"], {})],
    )
    environment = {
        "PATH": f"{SERVER_BINDIR}:{os.environ['PATH']}",
        "PGDATA": str(pgdata),
        **services.replica["environment"],
    }
    return running(command, services.folder / "replica.log", environment)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a mount namespace")
# The images lay out their data folders differently from 18 on.
@pytest.mark.parametrize("major", ["18", "17"])
def test_the_compose_replica_streams_from_db_and_the_app_reaches_it(
    workspace: Path, major: str
) -> None:
    project = render_into(workspace, use_docker=True, postgres_version=major)
    services = Services(yaml.safe_load((project / "compose.yaml").read_text()), workspace)
    log = workspace / "replica.log"
    with exclusive(LOCK), primary(services) as db:
        reads = services.url("app", "DATABASE_REPLICA_URLS")
        assert services.url("migrate", "DATABASE_MIGRATION_URL") == db
        with replica_up(services) as container:
            eventually(reads, "SELECT pg_is_in_recovery()", "t", container, log)
            # Granted as `migrate` would: the replica's reads run as the service's role.
            table = f"CREATE TABLE seen (note text); GRANT SELECT ON seen TO {reads.username}"
            created = psql(db, table)
            assert created.returncode == 0, created.stderr
            assert psql(db, "INSERT INTO seen VALUES ('first up')").returncode == 0
            eventually(reads, "SELECT string_agg(note, ',') FROM seen", "first up", container, log)
        # Written while the replica is down; the second `up` keeps its data and catches up.
        assert psql(db, "INSERT INTO seen VALUES ('while down')").returncode == 0
        with replica_up(services) as container:
            eventually(
                reads,
                "SELECT string_agg(note, ',' ORDER BY note) FROM seen",
                "first up,while down",
                container,
                log,
            )
            assert psql(reads, "SELECT pg_is_in_recovery()").stdout.strip() == "t"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the server as postgres")
def test_compose_migrates_as_the_owner_and_serves_as_a_role_that_may_not_change_the_schema(
    workspace: Path, installed_project: Path
) -> None:
    project = installed_project
    services = Services(yaml.safe_load((project / "compose.yaml").read_text()), workspace)
    with exclusive(LOCK), primary(services) as db:
        service = services.url("app", "DATABASE_URL")
        assert (service.username, services.url("migrate", "DATABASE_URL")) == ("app", service)
        # Before `migrate`: the image's init script made the role, no superuser.
        superuser = psql(service, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert superuser.stdout.strip() == "f", superuser.stderr
        environment = {
            "PATH": os.environ["PATH"],
            **{
                variable: services.url("migrate", variable).text()
                for variable in ("DATABASE_URL", "DATABASE_MIGRATION_URL")
            },
            "DB_APP_ROLE": services.compose["services"]["migrate"]["environment"]["DB_APP_ROLE"],
        }
        executable, *arguments = services.compose["services"]["migrate"]["command"]
        # Not commands.run, which leaves DATABASE_URL out.
        migrated = subprocess.run(
            [str(project / ".venv" / "bin" / executable), *arguments],
            cwd=project,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stderr
        assert psql(db, "SELECT count(*) FROM alembic_version").stdout.strip() == "1"
        written = psql(
            service,
            "INSERT INTO users (email, name) VALUES ('ada@example.com', 'Ada') RETURNING name",
        )
        assert written.stdout.splitlines()[:1] == ["Ada"], written.stderr
        refused = psql(service, "CREATE TABLE intruder (id int)")
        assert "permission denied for schema public" in refused.stderr
