"""Processes by pid, from /proc where there is one: alive, a server, stopped.

A pid file can outlive its process and the pid be reused, so a process is named
by its pid and start time, and a server by its pid and data directory.
"""

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

HAS_PROCFS = Path("/proc/self").is_dir()


def process_stat(pid: int) -> tuple[str, list[str]] | None:
    """The command name and the fields after it in /proc/<pid>/stat; None if gone or unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 1 :].split()


def process_identity(pid: int) -> str:
    """pid plus start time, so a recycled pid is not mistaken for the original."""
    stat = process_stat(pid)
    return f"{pid}-{stat[1][19]}" if stat else str(pid)


def is_alive(identity: str) -> bool:
    """Whether the process is running; one that exited but is not reaped yet is not."""
    pid = int(identity.split("-", 1)[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = process_stat(pid)
    if stat and stat[1][0] == "Z":
        return False
    return process_identity(pid) == identity or "-" not in identity


def is_running(pid: int) -> bool:
    """Whether the process with this pid, whatever started it, is running."""
    return is_alive(str(pid))


def is_postgres(pid: int) -> bool:
    """Whether `pid` is a running server process."""
    if not HAS_PROCFS:
        return is_alive(str(pid))  # macOS: a live pid is taken to be the server
    stat = process_stat(pid)
    return stat is not None and stat[0] in {"postgres", "postmaster"} and stat[1][0] != "Z"


def postmaster_pid(datadir: Path) -> int | None:
    """The pid of the server running on `datadir`, if one is (or was, and crashed)."""
    try:
        first_line = (datadir / "postmaster.pid").read_text().split("\n", 1)[0]
    except FileNotFoundError:
        return None
    return int(first_line) if first_line.strip().isdigit() else None


def works_in(pid: int, datadir: Path) -> bool | None:
    """Whether process `pid` works in `datadir` (a server chdirs to it); None if unknown."""
    if not HAS_PROCFS:
        return None
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")) == datadir.resolve()
    except FileNotFoundError:
        return False  # it has exited
    except OSError:
        return None  # not ours to inspect (as root without CAP_SYS_PTRACE)


def running_server(datadir: Path) -> int | None:
    """The pid of the server running on `datadir`, or None when its pid file is stale."""
    pid = postmaster_pid(datadir)
    if pid is None or not is_postgres(pid):
        return None
    # A crashed server's pid may now belong to another server's process; when
    # that cannot be told, the server is taken to be running.
    return None if works_in(pid, datadir) is False else pid


def shutdown_signal(*, discard: bool) -> signal.Signals:
    """Fast shutdown, or immediate when the data is deleted next (no shutdown checkpoint)."""
    return signal.SIGQUIT if discard else signal.SIGINT


def stop_postmaster(datadir: Path, timeout: float = 30.0, *, discard: bool = False) -> None:
    """Shut down the server running on `datadir`, whichever process started it."""
    pid = running_server(datadir)
    if pid is None:
        return
    try:
        os.kill(pid, shutdown_signal(discard=discard))
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    # Wait for the process itself: it removes its pid file just before it exits.
    while is_postgres(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.005)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C during the block takes effect when it ends: a second Ctrl-C that cut a
    clean-up short would leave a server running and its folder behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
        if received:
            raise KeyboardInterrupt
