"""Watchdog that stops a control plane when the Python process that owns it dies, even by SIGKILL.

The owner (the pytest plugin) starts ``python -m devcluster.reaper <state dir>`` with a pipe on
stdin and never writes to it. When the owner exits for any reason the pipe reaches EOF, and the
reaper stops every process still recorded in the state file (by PID, after checking the command
line). After a clean teardown the state file is gone and the reaper simply exits.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path


def spawn(state_dir: Path) -> subprocess.Popen[bytes]:
    """Start a reaper for ``state_dir``; keep the returned object alive as long as the plane runs."""
    return subprocess.Popen(
        [sys.executable, "-m", "devcluster.reaper", str(state_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def main(argv: list[str]) -> int:
    """Block until stdin closes, then stop what the state file still records."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdin.buffer.read()
    from devcluster.cluster import ControlPlane

    plane = ControlPlane.load(Path(argv[0]), progress=None)
    if plane is not None:
        plane.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
