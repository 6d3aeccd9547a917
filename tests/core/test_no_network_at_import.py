"""Row S10, one part: importing every module of fleetdeck (core, the console, the command line) opens no
socket and resolves no name. Run in a fresh interpreter whose socket layer raises on any attempt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import socket, sys
attempts = []
def refuse(what):
    def call(*args, **kwargs):
        attempts.append(what + repr(args[:2]))
        raise OSError("network access at import time: " + what)
    return call
socket.socket.connect = refuse("connect")
socket.socket.connect_ex = refuse("connect_ex")
socket.socket.bind = refuse("bind")
socket.socket.sendto = refuse("sendto")
socket.getaddrinfo = refuse("getaddrinfo")
socket.create_connection = refuse("create_connection")
import importlib, pkgutil
count = 0
for top in ("core", "tui"):
    package = importlib.import_module(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        importlib.import_module(info.name)
        count += 1
print(count)
print("\\n".join(attempts))
"""


def test_importing_every_module_touches_no_network() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    count, *attempts = result.stdout.strip().splitlines()
    assert int(count) > 100
    assert attempts == []
