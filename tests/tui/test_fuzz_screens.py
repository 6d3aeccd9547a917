"""Row S9, widened: random hostile strings in every rendered field of the fleet, app, diff and history
screens (``tests.fixtures.hostile.FIELDS``: app, cluster and namespace names, resource names, messages,
diff values and managers, commit subjects and authors, history and pause operators), through the console
(Hypothesis) and once through a real pty (the console in its own process, bytes read raw).

Property: what reaches the terminal holds no C1 control (CSI is U+009B), no bidi override or isolate, no
OSC/DCS/APC/PM/SOS, RIS or BEL, none of which the console writes itself; the screen's text holds no ESC."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.hostile import FIELDS, SEQUENCES, forbidden_chars, hostile_fleet
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle, wait_for_screen
from tests.tui.screen import screen_text, terminal_bytes
from tui.screens.app_screen import AppScreen
from tui.screens.diff import DiffScreen
from tui.screens.history import HistoryScreen

HOSTILE_TEXT = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(SEQUENCES)), min_size=1,
                        max_size=6).map("".join)
STRINGS = st.fixed_dictionaries({f: HOSTILE_TEXT for f in FIELDS})
ROOT = Path(__file__).resolve().parents[2]


def assert_inert(app: object, where: str) -> None:
    raw = terminal_bytes(app)  # type: ignore[arg-type]
    assert forbidden_chars(raw) == [], (where, forbidden_chars(raw))
    text = screen_text(app)  # type: ignore[arg-type]
    assert "\x1b" not in text and forbidden_chars(text) == [], (where, forbidden_chars(text))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(strings=STRINGS)
async def test_every_rendered_field_of_every_screen_is_inert(build_app: AppFactory, strings: dict[str, str]) -> None:
    """Fleet table and matrix, app screen, diff (unified and side by side), history and its detail."""
    snapshot, revisions = hostile_fleet(strings)
    app = build_app(FakeEngine([snapshot], revision_list=revisions))
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        assert_inert(app, "fleet")
        await pilot.press("m")
        await pilot.pause()
        assert_inert(app, "matrix")
        await pilot.press("m", "enter")
        await wait_for_screen(pilot, AppScreen)
        await settle(pilot)
        assert_inert(app, "app")
        await pilot.press("D")
        await wait_for_screen(pilot, DiffScreen)
        await settle(pilot)
        assert_inert(app, "diff")
        await pilot.press("v")
        await pilot.pause()
        assert_inert(app, "diff side by side")
        await pilot.press("escape", "h")
        await wait_for_screen(pilot, HistoryScreen)
        await settle(pilot)
        assert_inert(app, "history")
        await pilot.press("enter")
        await settle(pilot)
        assert_inert(app, "history detail")


def test_hostile_fleet_through_a_real_pty(tmp_path: Path) -> None:
    """The console on a random hostile fleet (seeded) in its own process on a raw pty, walked through the
    fleet, app, diff and history screens: the bytes it writes, decoded, hold nothing of ``forbidden_chars``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETDECK_")}
    env.update({"TERM": "xterm-256color", "XDG_CACHE_HOME": str(tmp_path / "xdg"),
                "XDG_STATE_HOME": str(tmp_path / "state"), "PYTHONPATH": str(ROOT)})
    pid, fd = pty.fork()
    if pid == 0:  # the child: the console on the pty
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "tests.fixtures.hostile", "20261207"], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    os.kill(pid, signal.SIGWINCH)
    out = bytearray()

    def read_for(seconds: float, stop: bytes = b"") -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until and not (stop and stop in out):
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    out.extend(os.read(fd, 65536))
                except OSError:
                    return

    reaped = False
    try:
        read_for(60, stop=b"OutOfSync")
        assert b"OutOfSync" in out, bytes(out[-2000:])
        for keys in (b"m", b"m", b"\r", b"D", b"v", b"\x1b", b"h", b"\r", b"\x1b", b"\x1b", b"\x1b"):
            os.write(fd, keys)
            read_for(1.5)
        os.write(fd, b"q")
        read_for(20, stop=b"\x1b[?1049l")
        _, status = os.waitpid(pid, 0)
        reaped = True
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        if not reaped:  # only our own child, by its pid
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    text = out.decode("utf-8", errors="replace")
    assert "web" in text and "ns" in text
    for marker in ("changed by m", "side by side", "History"):  # the walk reached the diff and history screens
        assert marker in text, marker
    assert forbidden_chars(text) == [], forbidden_chars(text)
    print(f"\nS9: {len(out):,} bytes from the console on a hostile fleet over a pty: nothing from the data")
