"""Files only their owner may read: fleetdeck's cache and state hold Git content, rendered manifests
and the journal, so they are created 0700 (directories) and 0600 (files) whatever the umask.

Role: the one place that creates fleetdeck's private directories and state files. Directories that
already exist are narrowed to 0700 when fleetdeck owns them (a cache made by an older version with
0755 is fixed on first use).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and missing parents) and make ``path`` itself 0700; return it.

    Parents that already exist are left alone (``~/.cache`` is not fleetdeck's); parents created here
    are 0700 too.
    """
    target = Path(path)
    missing = []
    probe = target
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=PRIVATE_DIR)
        _narrow(directory)
    _narrow(target)
    return target


def _narrow(directory: Path) -> None:
    with contextlib.suppress(OSError):
        if directory.stat().st_uid == os.getuid() and directory.stat().st_mode & 0o077:
            directory.chmod(PRIVATE_DIR)


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, then rename), readable by the owner only."""
    target = Path(path)
    private_dir(target.parent)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(staging, target)
