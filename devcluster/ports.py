"""Pick free TCP ports on 127.0.0.1.

A port is free when binding it succeeded a moment ago; another process can still take it before
ours binds (the same race envtest has). Callers therefore retry a start whose log says
"address already in use" with fresh ports (see :func:`is_bind_race`).
"""

from __future__ import annotations

import socket

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
