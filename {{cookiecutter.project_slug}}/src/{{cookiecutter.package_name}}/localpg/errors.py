"""Why a private cluster could not be had."""

from pathlib import Path


class ClusterError(RuntimeError):
    """The private cluster could not be created, started or stopped."""


class ClusterInUse(ClusterError):
    """A server this process did not start is running on the data directory."""

    def __init__(self, datadir: Path, pid: int) -> None:
        super().__init__(f"PostgreSQL (pid {pid}) is already running on {datadir}")
        self.datadir = datadir
        self.pid = pid
