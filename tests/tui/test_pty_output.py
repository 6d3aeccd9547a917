"""The bytes the real console writes to its terminal (fault R7, a slow SSH link): read raw from a pty.

Over SSH every byte counts and mouse motion reports flood the link back. ``fleetdeck demo`` runs in a pseudo-
terminal of its own (no tmux in between, so nothing is filtered); the test reads everything it writes and
checks that mouse tracking is never switched on unless asked for (``--mouse``), and records how many bytes
per second the console writes once the fleet is on screen and live changes keep arriving, against the
1 Mbit/s (125,000 bytes/s) link of the fault. The rate is a figure, printed, not an assertion.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

import pyte
import pytest

FLEETDECK = str(Path(sys.executable).with_name("fleetdeck"))
MOUSE_ON = (b"\x1b[?1000h", b"\x1b[?1002h", b"\x1b[?1003h", b"\x1b[?1006h", b"\x1b[?1015h")
"""Sequences that make the terminal report clicks or motion (X10/normal, button, any-motion, SGR, urxvt)."""
LINK = 125_000
"""1 Mbit/s in bytes per second."""


def run_console(tmp: Path, *args: str, seconds: float) -> tuple[bytes, bytes, int]:
    """``fleetdeck demo ARGS`` in a 120x36 pty: (output until the fleet is shown, output of the next
    ``seconds``, exit code after ``q``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR") and not k.startswith("FLEETDECK_")}
    env.update({"TERM": "xterm-256color", "XDG_CACHE_HOME": str(tmp / "xdg"), "XDG_STATE_HOME": str(tmp / "state"),
                "FLEETDECK_JOURNAL": str(tmp / "journal.jsonl")})
    pid, fd = pty.fork()
    if pid == 0:  # the child: the console on the pty
        os.execve(FLEETDECK, [FLEETDECK, "demo", *args], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    os.kill(pid, signal.SIGWINCH)

    def read_for(until: float, stop: bytes = b"") -> bytes:
        out = bytearray()
        while time.monotonic() < until and not (stop and stop in out):
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    break
        return bytes(out)

    reaped = False
    try:
        start = read_for(time.monotonic() + 90, stop=b"OutOfSync")
        assert b"OutOfSync" in start, start[-2000:]
        steady = read_for(time.monotonic() + seconds)
        os.write(fd, b"q")
        read_for(time.monotonic() + 20, stop=b"\x1b[?1049l")
        _, status = os.waitpid(pid, 0)
        reaped = True
        return start, steady, os.waitstatus_to_exitcode(status)
    finally:
        if not reaped:  # only our own child, by its pid
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


def test_mouse_tracking_is_off_unless_asked_and_the_output_rate_is_recorded(tmp_path: Path) -> None:
    start, steady, code = run_console(tmp_path, seconds=8)
    assert code == 0
    written = start + steady
    assert not [s for s in MOUSE_ON if s in written], "mouse tracking switched on without --mouse"
    rate = len(steady) / 8
    print(f"\nR7: the console wrote {len(steady)} bytes in 8 s of live changes after the first screen: "
          f"{rate:,.0f} bytes/s, {rate / LINK:.1%} of a 1 Mbit/s link")

    start, steady, code = run_console(tmp_path, "--mouse", seconds=1)
    assert code == 0
    assert [s for s in MOUSE_ON if s in start + steady], "--mouse did not switch mouse tracking on"


def test_a_terminal_that_stops_reading_for_six_seconds_does_not_wedge_the_console(tmp_path: Path) -> None:
    """Fault K16 through a real pty: the reader of the console's terminal stops for 6 s while the demo's live
    changes keep coming (the pty's buffer fills and the console's writes block). When reading resumes the
    console catches up and still obeys keys: it quits cleanly. The bytes of the catch-up are printed."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR") and not k.startswith("FLEETDECK_")}
    env.update({"TERM": "xterm-256color", "XDG_CACHE_HOME": str(tmp_path / "xdg"),
                "XDG_STATE_HOME": str(tmp_path / "state"), "FLEETDECK_JOURNAL": str(tmp_path / "journal.jsonl")})
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(FLEETDECK, [FLEETDECK, "demo"], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    os.kill(pid, signal.SIGWINCH)
    reaped = False

    def read_for(seconds: float, stop: bytes = b"") -> bytes:
        out, until = bytearray(), time.monotonic() + seconds
        while time.monotonic() < until and not (stop and stop in out):
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    break
        return bytes(out)

    try:
        first = read_for(90, stop=b"OutOfSync")
        assert b"OutOfSync" in first
        time.sleep(6)  # nobody reads the terminal: the console's output backs up in the pty
        catch_up = read_for(2)
        os.write(fd, b"q")
        read_for(20, stop=b"\x1b[?1049l")
        _, status = os.waitpid(pid, 0)
        reaped = True
        assert os.waitstatus_to_exitcode(status) == 0
        print(f"\nK16: after a 6 s stall the console wrote {len(catch_up)} bytes in the next 2 s "
              f"(its first full screen was {len(first)} bytes)")
    finally:
        if not reaped:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


ROOT = Path(__file__).resolve().parents[2]
SGR = re.compile(rb"\x1b\[[0-9;]*m")
MOVE = re.compile(rb"\x1b\[[0-9]+;[0-9]+H")


def churn_output(tmp: Path, *, raw: bool, no_color: bool = False, seconds: float = 3.0) -> bytes:
    """Everything the churn console (``tests.fixtures.churn``: 100 row updates a second on the 30 rows on
    screen) writes on a 120x36 pty: its first screen, ``seconds`` of churn, help opened and closed, the cursor
    moved down three rows, and quitting. ``raw``: Textual's own output (``FLEETDECK_RAW_OUTPUT=1``);
    ``no_color``: with ``NO_COLOR=1``."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR") and not k.startswith("FLEETDECK_")}
    env.update({"TERM": "xterm-256color", "XDG_CACHE_HOME": str(tmp / "xdg"), "XDG_STATE_HOME": str(tmp / "state"),
                "FLEETDECK_JOURNAL": str(tmp / "journal.jsonl"), "PYTHONPATH": str(ROOT)})
    if raw:
        env["FLEETDECK_RAW_OUTPUT"] = "1"
    if no_color:
        env["NO_COLOR"] = "1"
    tmp.mkdir(parents=True, exist_ok=True)
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "tests.fixtures.churn", str(tmp / "count"), "0"], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    os.kill(pid, signal.SIGWINCH)
    out = bytearray()

    def read_for(span: float, stop: bytes = b"") -> None:
        until, mark = time.monotonic() + span, len(out)
        while time.monotonic() < until and not (stop and stop in out[mark:]):
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    out.extend(os.read(fd, 65536))
                except OSError:
                    break

    reaped = False
    try:
        read_for(90, stop=b"app-00000")
        read_for(seconds)
        for key, stop in ((b"?", b"fleetdeck keys"), (b"q", b"CLUSTER STATE"), (b"j", b""), (b"j", b""),
                          (b"j", b"")):
            os.write(fd, key)
            read_for(10 if stop else 0.5, stop=stop)
        read_for(1)
        os.write(fd, b"q")
        read_for(20, stop=b"\x1b[?1049l")
        _, status = os.waitpid(pid, 0)
        reaped = True
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        if not reaped:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    return bytes(out)


def breakdown(data: bytes) -> str:
    """Where the bytes go: colour escapes, cursor moves, and what is left (text and other sequences)."""
    sgr, moves = SGR.findall(data), MOVE.findall(data)
    sgr_bytes, move_bytes = sum(map(len, sgr)), sum(map(len, moves))
    return (f"{len(data):,} bytes: {len(sgr):,} SGR ({sgr_bytes:,} bytes, {sgr_bytes / len(data):.0%}), "
            f"{len(moves):,} moves ({move_bytes:,} bytes), {len(data) - sgr_bytes - move_bytes:,} bytes of text "
            f"and other sequences; {len(data) / max(1, len(moves)):.0f} bytes per move")


@pytest.mark.parametrize("no_color", [False, True], ids=["colour", "NO_COLOR"])
def test_the_screen_model_shows_textuals_frames_cell_for_cell_in_fewer_bytes(tmp_path: Path, no_color: bool) -> None:
    """Textual's own output of the churn console, replayed a line at a time into two terminal emulators (pyte):
    as Textual wrote it, and through ``tui.terminal_output.ScreenDiff``. After every line written the two
    screens show the same cells; the model's output is under a third of the bytes. Then the console as it
    runs (through the model) is measured the same way. With ``NO_COLOR`` Textual still writes a grey
    SGR sequence per segment (its monochrome filter), so the saving is the same."""
    from tests.tui.test_terminal_output import cells
    from tui.terminal_output import ScreenDiff

    raw = churn_output(tmp_path / "raw", raw=True, no_color=no_color)
    assert b"\x1b[0m\x1b[38;5;" in raw  # Textual's reset and whole style per segment: the raw output
    text = raw.decode()
    diff = ScreenDiff(120, 36)
    screens = [pyte.Screen(120, 36), pyte.Screen(120, 36)]
    streams = [pyte.Stream(s) for s in screens]
    written = 0
    for chunk in re.split(r"(?=\x1b\[\d+;1H)", text):
        out = diff.write(chunk)
        streams[0].feed(chunk)
        streams[1].feed(out)
        written += len(out.encode())
        assert cells(screens[0], diff) == cells(screens[1], diff), (chunk, out)
    assert written < len(raw) / 3, (written, len(raw))
    diffed = churn_output(tmp_path / "diffed", raw=False, no_color=no_color)
    print(f"\nR7{' (NO_COLOR)' if no_color else ''}: the churn console's whole run (first screen, 3 s of 100 row updates/s on screen, help, cursor): "
          f"Textual's output {breakdown(raw)}\n    replayed through the screen model: {written:,} bytes "
          f"({written / len(raw):.0%}); the console as it runs: {breakdown(diffed)}")
