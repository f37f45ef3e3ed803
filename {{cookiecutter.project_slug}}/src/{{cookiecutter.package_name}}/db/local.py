"""Find PostgreSQL's server binaries and run a private cluster.

The embedded default (no DATABASE_URL) and the test harness both use this. The
server listens on a unix socket in its own directory only, so clusters never
collide with each other or with a system server. PostgreSQL refuses to run as
root; as root the server runs as an unprivileged account instead.
"""

import contextlib
import glob
import hashlib
import importlib.util
import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
INSTALL_HELP = """\
PostgreSQL server binaries (initdb and postgres) were not found.
Fix it in one of these ways:
  - Debian/Ubuntu: sudo apt-get install postgresql
  - Fedora/RHEL:   sudo dnf install postgresql-server
  - macOS:         brew install postgresql@17
  - Any platform:  pip install pgserver (a wheel that bundles the server binaries)
  - Point at an installation: export PG_BINDIR=/path/to/postgresql/bin
  - Use a server you already run: export TEST_DATABASE_URL=postgresql://user:password@host/db
    (tests) or DATABASE_URL=... (the service)"""
# Debian, Ubuntu and Homebrew install versioned server binaries off PATH.
VERSIONED_BINDIR_PATTERNS = (
    "/usr/lib/postgresql/*/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
)
# A unix socket path must fit in sun_path (108 bytes on Linux, 104 on macOS).
MAX_SOCKET_DIR_LENGTH = 90


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


class ClusterError(RuntimeError):
    """The private cluster could not be created, started or stopped."""


class ClusterInUse(ClusterError):
    """A server this process did not start is running on the data directory."""

    def __init__(self, datadir: Path, pid: int) -> None:
        super().__init__(f"PostgreSQL (pid {pid}) is already running on {datadir}")
        self.datadir = datadir
        self.pid = pid


def _has_server(bindir: Path) -> bool:
    return (bindir / "initdb").is_file() and (bindir / "postgres").is_file()


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", str(path)))


def bindir_candidates() -> Iterator[Path]:
    """Where server binaries may be, in the order they are tried (after PG_BINDIR)."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            yield Path(result.stdout.strip())
    for pattern in VERSIONED_BINDIR_PATTERNS:
        yield from sorted(map(Path, glob.glob(pattern)), key=_version_key, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        yield Path(initdb).resolve().parent
    # The pgserver wheel bundles a PostgreSQL build; only its binaries are used.
    pgserver = importlib.util.find_spec("pgserver")
    if pgserver is not None and pgserver.submodule_search_locations:
        yield Path(pgserver.submodule_search_locations[0]) / "pginstall" / "bin"


def find_bindir() -> Path:
    """PG_BINDIR, pg_config --bindir, the newest versioned install, PATH, the pgserver wheel."""
    configured = os.environ.get("PG_BINDIR")
    if configured:
        if _has_server(Path(configured)):
            return Path(configured)
        raise PostgresNotFound(
            f"PG_BINDIR={configured} has no initdb and postgres.\n{INSTALL_HELP}"
        )
    for candidate in bindir_candidates():
        if _has_server(candidate):
            return candidate
    raise PostgresNotFound(INSTALL_HELP)


@dataclass(frozen=True)
class ServerAccount:
    name: str
    uid: int
    gid: int


def server_account() -> ServerAccount | None:
    """The account the server runs as when we are root; None means the current user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return ServerAccount(name, entry.pw_uid, entry.pw_gid)
    raise ClusterError(
        "PostgreSQL refuses to run as root and this machine has neither a 'postgres' nor a "
        "'nobody' account to run it as. Create one (useradd --system postgres) or run as a "
        "normal user."
    )


def as_account(account: ServerAccount | None) -> dict[str, Any]:
    """subprocess keyword arguments that run a command as `account`."""
    if account is None:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


def hand_over(path: Path, account: ServerAccount | None) -> None:
    """Give `path` and everything below it to the server account."""
    if account is None:
        return
    os.chown(path, account.uid, account.gid)
    for directory, subdirectories, files in os.walk(path):
        for name in (*subdirectories, *files):
            os.chown(os.path.join(directory, name), account.uid, account.gid, follow_symlinks=False)


def is_reachable(path: Path, account: ServerAccount | None) -> bool:
    """Whether `account` may traverse every directory above `path`."""
    if account is None:
        return True
    for parent in path.resolve().parents:
        mode = parent.stat()
        if mode.st_uid == account.uid:
            allowed = mode.st_mode & stat.S_IXUSR
        elif mode.st_gid == account.gid:
            allowed = mode.st_mode & stat.S_IXGRP
        else:
            allowed = mode.st_mode & stat.S_IXOTH
        if not allowed:
            return False
    return True


def postmaster_pid(datadir: Path) -> int | None:
    """The pid of the server running on `datadir`, if one is (or was, and crashed)."""
    try:
        first_line = (datadir / "postmaster.pid").read_text().split("\n", 1)[0]
    except FileNotFoundError:
        return None
    return int(first_line) if first_line.strip().isdigit() else None


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_postgres(pid: int) -> bool:
    """Whether `pid` is a running server process; one that exited but is not reaped is not."""
    if not Path("/proc/self").is_dir():
        return _is_alive(pid)  # no procfs (macOS): a live pid is taken to be the server
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    name, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2]
    return name in {"postgres", "postmaster"} and state != "Z"


def _works_in(pid: int, datadir: Path) -> bool | None:
    """Whether process `pid` works in `datadir` (a server chdirs to it); None if unknown."""
    if not Path("/proc/self").is_dir():
        return None  # no procfs (macOS)
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")) == datadir.resolve()
    except FileNotFoundError:
        return False  # it has exited
    except OSError:
        return None  # not ours to inspect (as root without CAP_SYS_PTRACE)


def running_server(datadir: Path) -> int | None:
    """The pid of the server running on `datadir`, or None when its pid file is stale."""
    pid = postmaster_pid(datadir)
    if pid is None or not _is_postgres(pid):
        return None
    # A crashed server's pid may now belong to another server's process; when
    # that cannot be told, the server is taken to be running.
    return None if _works_in(pid, datadir) is False else pid


def shutdown_signal(*, discard: bool) -> signal.Signals:
    """Fast shutdown, or immediate when the data is deleted next (no shutdown checkpoint)."""
    return signal.SIGQUIT if discard else signal.SIGINT


def stop_postmaster(datadir: Path, timeout: float = 30.0, *, discard: bool = False) -> None:
    """Shut down the server running on `datadir`, whichever process started it."""
    # A crashed server leaves a stale pid file whose pid may now be someone else's.
    pid = running_server(datadir)
    if pid is None:
        return
    try:
        os.kill(pid, shutdown_signal(discard=discard))
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    # Wait for the process itself: it removes its pid file just before it exits.
    while _is_postgres(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.005)


class Cluster:
    """One PostgreSQL data directory and the server process running it."""

    def __init__(
        self,
        datadir: Path,
        *,
        socket_dir: Path | None = None,
        bindir: Path | None = None,
        durable: bool = False,
    ) -> None:
        self.datadir = datadir
        self.socket_dir = socket_dir or datadir.parent
        self.bindir = bindir or find_bindir()
        self.durable = durable
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
            }
        return [argument for key, value in options.items() for argument in ("-c", f"{key}={value}")]

    def start(self, timeout: float = 30.0) -> None:
        """Start the server; ClusterInUse if one this process did not start runs there."""
        if len(str(self.socket_dir)) > MAX_SOCKET_DIR_LENGTH:
            raise ClusterError(
                f"socket directory path too long for a unix socket: {self.socket_dir}"
            )
        environment = dict(os.environ)
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
        # polling it is ~90 ms faster per start than `pg_ctl start -w`.
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

    def url(self, database: str, driver: str = "asyncpg") -> URL:
        return URL.create(
            f"postgresql+{driver}",
            username=SUPERUSER,
            database=database,
            query={"host": str(self.socket_dir)},
        )

    def create_database(self, name: str, *, template: str | None = None) -> None:
        """Create `name` unless it exists."""
        with psycopg.connect(
            host=str(self.socket_dir), user=SUPERUSER, dbname="postgres", autocommit=True
        ) as connection:
            if connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone():
                return
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template is not None:
                statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            connection.execute(statement)


def _socket_dir_for(root: Path, account: ServerAccount | None) -> Path:
    if len(str(root)) <= MAX_SOCKET_DIR_LENGTH:
        return root
    short = Path(tempfile.mkdtemp(prefix="pg-"))
    hand_over(short, account)
    return short


def embedded_root(root: Path) -> Path:
    """`root`, or a stable stand-in under the temp dir when the server cannot reach it.

    As root, the server runs as another account, which cannot enter folders such
    as /root or pytest's temporary directories.
    """
    root = root.resolve()
    if is_reachable(root, server_account()):
        return root
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"postgres-{root.parent.name}-{digest}"


@contextmanager
def embedded_cluster(root: Path, database: str) -> Iterator[URL]:
    """A durable private cluster in `root`, running for the duration of the block."""
    requested, root = root, embedded_root(root)
    if root != requested.resolve():
        logger.warning("%s is not reachable by the server account; using %s", requested, root)
    # Checked before anything is touched; start() checks again, for a server started since.
    running = running_server(root / "data")
    if running is not None:
        raise ClusterInUse(root / "data", running)
    account = server_account()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    hand_over(root, account)
    socket_dir = _socket_dir_for(root, account)
    cluster = Cluster(root / "data", socket_dir=socket_dir, durable=True)
    if not (cluster.datadir / "PG_VERSION").exists():
        logger.info("creating a private PostgreSQL cluster in %s", cluster.datadir)
        cluster.initdb()
    try:
        cluster.start()
        # Only a server this block started is stopped: never one it refused to adopt.
        try:
            cluster.create_database(database)
            yield cluster.url(database)
        finally:
            cluster.stop()
    finally:
        if socket_dir != root:
            shutil.rmtree(socket_dir, ignore_errors=True)
