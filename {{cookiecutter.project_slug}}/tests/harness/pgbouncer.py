"""PgBouncer in transaction mode in front of a test database, for the DB_PGBOUNCER tests.

Its pool is two server connections, so concurrent clients share them the way
they do in production and a statement prepared by one client is visible, or
missing, for the next.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import URL

from {{ cookiecutter.package_name }}.localpg.account import as_account, hand_over, server_account
from {{ cookiecutter.package_name }}.localpg.scratch import scratch_root

LISTEN_PORT = 6432
SERVER_CONNECTIONS = 2
INSTALL_HINT = (
    "pgbouncer is not installed; install it (apt-get install pgbouncer, brew install "
    "pgbouncer) or set PGBOUNCER to its path"
)


class PgBouncerError(RuntimeError):
    pass


def find_pgbouncer() -> Path | None:
    """PGBOUNCER when set, else pgbouncer on PATH or in the sbin folders packages use."""
    configured = os.environ.get("PGBOUNCER")
    if configured:
        if not os.access(configured, os.X_OK):
            raise PgBouncerError(f"PGBOUNCER={configured} is not an executable file")
        return Path(configured)
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")
    return Path(found) if found else None


def config(backend: URL, directory: Path) -> str:
    host = backend.query.get("host") or backend.host or "localhost"
    server = f"host={host} port={backend.port or 5432}"
    if backend.password:
        server += f" user={backend.username} password={backend.password}"
    return "\n".join(
        [
            "[databases]",
            f"* = {server}",
            "[pgbouncer]",
            "listen_addr =",
            f"unix_socket_dir = {directory}",
            f"listen_port = {LISTEN_PORT}",
            "auth_type = trust",
            f"auth_file = {directory / 'users.txt'}",
            "pool_mode = transaction",
            f"default_pool_size = {SERVER_CONNECTIONS}",
            "max_client_conn = 200",
            f"logfile = {directory / 'pgbouncer.log'}",
            # Sent by some drivers on connect; PgBouncer refuses unknown ones.
            "ignore_startup_parameters = extra_float_digits",
            "",
        ]
    )


@contextlib.contextmanager
def pgbouncer(executable: Path, backend: URL, timeout: float = 10.0) -> Iterator[URL]:
    """Run PgBouncer for `backend`'s server; yields the URL of the same database through it."""
    account = server_account()
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-", dir=scratch_root()))
    (directory / "pgbouncer.ini").write_text(config(backend, directory))
    (directory / "users.txt").write_text(f'"{backend.username}" ""\n')
    # PgBouncer, like PostgreSQL, refuses to run as root.
    hand_over(directory, account)
    process = subprocess.Popen(
        [str(executable), str(directory / "pgbouncer.ini")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        **as_account(account),
    )
    try:
        socket = directory / f".s.PGSQL.{LISTEN_PORT}"
        deadline = time.monotonic() + timeout
        while not socket.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                log = directory / "pgbouncer.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
                raise PgBouncerError(f"pgbouncer did not start:\n{tail}")
            time.sleep(0.01)
        yield URL.create(
            backend.drivername,
            username=backend.username,
            database=backend.database,
            port=LISTEN_PORT,
            query={"host": str(directory)},
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)
