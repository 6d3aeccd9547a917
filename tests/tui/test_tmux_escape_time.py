"""Row R6: tmux's ``escape-time`` and the Esc key, measured through a real tmux client.

``send-keys`` writes straight into the pane and skips tmux's input parser, so it cannot show the effect. Here
the real ``fleetdeck demo`` runs in a private tmux server, a tmux *client* is attached on a pty this test
owns, and the test types into that pty as a terminal emulator would: a lone ESC byte goes through tmux's
parser, which holds it for ``escape-time`` milliseconds (500 by default) to see whether a sequence follows.
The latency is from writing ESC to the client until the pane shows the fleet screen again (the app screen
closed), polled with ``capture-pane`` every 10 ms. docs/console.md says what operators should set.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import signal
import struct
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.tmux import TmuxSession

pytestmark = [pytest.mark.tmux, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]

FLEETDECK = str(Path(sys.executable).with_name("fleetdeck"))
ROUNDS = 6
SIZE = (120, 36)


def on_fleet(screen: str) -> bool:
    return "OutOfSync" in screen and "rows" in screen and "namespace" not in screen


def on_app(screen: str) -> bool:
    return "namespace" in screen and "path" in screen


class AttachedTmux(TmuxSession):
    """``fleetdeck demo`` in a private tmux server with ``escape-time`` set, and a client attached on a pty."""

    def __init__(self, tmp: Path, escape_ms: int) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR", "TMUX") and
               not k.startswith("FLEETDECK_")}
        env.update({"XDG_CACHE_HOME": str(tmp / "xdg"), "XDG_STATE_HOME": str(tmp / "state"),
                    "FLEETDECK_JOURNAL": str(tmp / "journal.jsonl"), "TERM": "xterm-256color"})
        super().__init__(f"{FLEETDECK} demo; echo EXITED=$?; sleep 60", env=env, size=SIZE, name="fd-esc")
        self._tmux("set-option", "-s", "escape-time", str(escape_ms))
        assert self._tmux("show-options", "-s", "escape-time").split() == ["escape-time", str(escape_ms)]
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: a tmux client on this pty
            os.execvpe("tmux", ["tmux", "-L", self.socket, "attach-session", "-t", "fd"], env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))

    def drain(self) -> None:
        """Read what the client drew (so it never blocks on a full pty)."""
        while select.select([self.fd], [], [], 0)[0]:
            try:
                os.read(self.fd, 65536)
            except OSError:
                return

    def type(self, data: bytes) -> None:
        """Type ``data`` into the client's terminal."""
        os.write(self.fd, data)

    def until(self, predicate: Callable[[str], bool], what: str, timeout: float = 60) -> float:
        """Poll the pane every 10 ms until ``predicate`` holds; the monotonic time it first did."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            self.drain()
            screen = self.screen()
            if predicate(screen):
                return time.monotonic()
            time.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}; screen was:\n{screen}")

    def close(self) -> None:
        """Stop the client (our own child, by pid) and the tmux server."""
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)
        super().close()


@pytest.fixture
def attached(tmp_path: Path) -> Iterator[Callable[[int], AttachedTmux]]:
    started: list[AttachedTmux] = []

    def start(escape_ms: int) -> AttachedTmux:
        started.append(AttachedTmux(tmp_path / str(escape_ms), escape_ms))
        return started[-1]

    yield start
    for session in started:
        session.close()


def on_help(screen: str) -> bool:
    return "fleetdeck keys" in screen


def off_help(screen: str) -> bool:
    return "fleetdeck keys" not in screen and "OutOfSync" in screen and "rows" in screen


def close_latencies(t: AttachedTmux) -> tuple[list[float], list[float]]:
    """Open the help screen with ``?`` and close it, alternately with a lone ESC and with ``q`` (the same
    screen change without ESC: the reference), ``ROUNDS`` times each, typed into the client; the seconds
    from the key to the help screen gone, for ESC and for ``q``."""
    t.until(on_fleet, "the fleet screen")
    esc: list[float] = []
    reference: list[float] = []
    for _ in range(ROUNDS):
        for key, into in ((b"\x1b", esc), (b"q", reference)):
            t.type(b"?")
            t.until(on_help, "the help screen")
            time.sleep(0.3)
            start = time.monotonic()
            t.type(key)
            into.append(t.until(off_help, f"the help screen closed by {key!r}", timeout=10) - start)
            time.sleep(0.3)
    return esc, reference


@pytest.mark.parametrize("escape_ms", [500, 0])
def test_esc_closes_screens_under_tmux_escape_time(attached: Callable[[int], AttachedTmux], escape_ms: int) -> None:
    """Under tmux's default ``escape-time`` (500 ms) and under 0, a lone Esc closes the help screen and the app
    screen every time and quits nothing. Esc's extra latency over ``q`` (the same screen change; the quickest
    of each, as the load of a shared machine only ever adds) is most of tmux's hold with 500, and under
    300 ms with 0."""
    t = attached(escape_ms)
    esc, reference = close_latencies(t)
    extra = min(esc) - min(reference)  # the quickest of each: load only ever adds
    print(f"\nR6: escape-time {escape_ms} ms: Esc closes help in {', '.join(f'{x * 1000:.0f}' for x in esc)} ms, "
          f"q in {', '.join(f'{x * 1000:.0f}' for x in reference)} ms; Esc's extra latency (quickest) "
          f"{extra * 1000:.0f} ms")
    if escape_ms:
        assert min(esc) >= escape_ms / 1000 * 0.95, esc
        assert extra >= 0.4, (esc, reference)
    else:
        assert extra < 0.3, (esc, reference)
    t.type(b"\r")
    t.until(on_app, "the app screen")
    t.type(b"\x1b")
    t.until(on_fleet, "the fleet screen after Esc")
    t.type(b"q")
    t.until(lambda s: "EXITED=" in s, "the console to quit")
    assert "EXITED=0" in t.screen()
