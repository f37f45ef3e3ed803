"""The account the server runs as: PostgreSQL refuses to run as root."""

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }}.localpg.errors import ClusterError


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
