"""Pick free TCP ports on 127.0.0.1.

A port is free when binding it succeeded a moment ago; another process can still take it before
ours binds (the same race envtest has). Callers therefore retry a start whose log says
"address already in use" with fresh ports (see :func:`is_bind_race`), and only trust a health
probe once :func:`held_by` confirms that the port belongs to the process they started (another
control plane may have grabbed the same port and answer in its place).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"
_handed_out: set[int] = set()


def free_port() -> int:
    """Return a currently unused port on 127.0.0.1, never the same one twice per process."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def is_bind_race(log_text: str) -> bool:
    """Whether a failed process's log shows it lost a port race."""
    return "address already in use" in log_text.lower()


def is_listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


_LISTEN = "0A"


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def held_by(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself holds the listening socket on ``port`` (Linux /proc)."""
    inodes = _listening_inodes(port)
    if not inodes:
        return False
    fd_dir = f"/proc/{pid}/fd"
    try:
        links = [os.readlink(f"{fd_dir}/{fd}") for fd in os.listdir(fd_dir)]
    except OSError:
        return False
    return any(link == f"socket:[{inode}]" for inode in inodes for link in links)
