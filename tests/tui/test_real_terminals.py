"""The real ``fleetdeck demo`` inside tmux, one terminal type at a time (docs/reliability.md, R4 and R6).

The Textual test driver renders into a virtual screen; this drives the installed command in a real pty
inside a private tmux server, with ``TERM`` set to each type an operator meets on a bastion (and tmux's own
``screen-256color`` / ``tmux-256color``), no ``COLORTERM``, with and without ``NO_COLOR``, at 80x24. Each
must draw the fleet with its states in words, open an app, go back, and quit cleanly.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.tmux import TmuxSession

pytestmark = [pytest.mark.tmux, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]

FLEETDECK = str(Path(sys.executable).with_name("fleetdeck"))


class Terminal(TmuxSession):
    """``fleetdeck demo`` in a private tmux server with ``TERM`` set for the program inside, at 80x24."""

    def __init__(self, tmp: Path, term: str, *, no_color: bool) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR") and
               not k.startswith("FLEETDECK_")}
        env.update({"XDG_CACHE_HOME": str(tmp / "xdg"), "XDG_STATE_HOME": str(tmp / "state"),
                    "FLEETDECK_JOURNAL": str(tmp / "journal.jsonl")})
        inner = f"env TERM={term} {'NO_COLOR=1 ' if no_color else ''}{FLEETDECK} demo; echo EXITED=$?; sleep 60"
        super().__init__(inner, env=env, size=(80, 24), key_pause=0.3, name="fd-term")


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[[str, bool], Terminal]]:
    started: list[Terminal] = []

    def start(term: str, no_color: bool) -> Terminal:
        started.append(Terminal(tmp_path, term, no_color=no_color))
        return started[-1]

    yield start
    for t in started:
        t.close()


@pytest.mark.parametrize(("term", "no_color"), [
    ("xterm-256color", True), ("xterm-256color", False), ("xterm", False), ("vt100", False),
    ("screen-256color", False), ("tmux-256color", True), ("linux", False),
])
def test_the_real_console_reads_in_words_on_every_terminal_type(terminal: Callable[[str, bool], Terminal],
                                                                term: str, no_color: bool) -> None:
    t = terminal(term, no_color)
    fleet = t.wait_for(lambda s: "OutOfSync" in s and "Synced" in s and "rows" in s, "the fleet screen")
    assert "Healthy" in fleet and "Unknown" in fleet, fleet
    assert "\x1b" not in fleet
    t.keys("Enter")
    t.wait_for(lambda s: "namespace" in s and "path" in s, "the app screen")
    t.keys("Escape")
    t.wait_for(lambda s: "OutOfSync" in s and "rows" in s, "back on the fleet screen")
    t.keys("q")
    done = t.wait_for(lambda s: "EXITED=" in s, "the console to quit")
    assert "EXITED=0" in done and "Traceback" not in done, done


def test_a_dumb_terminal_is_told_what_to_use_instead(terminal: Callable[[str, bool], Terminal]) -> None:
    """``TERM=dumb`` cannot move the cursor: the console drew one frame and froze there. It now says so and
    names the verbs that work on any terminal, exit 2."""
    done = terminal("dumb", False).wait_for(lambda s: "EXITED=" in s, "the command to end")
    assert "EXITED=2" in done, done
    assert "error: the console needs a terminal: TERM=dumb cannot move the cursor" in done, done


def test_a_resize_storm_through_the_pty_leaves_a_working_console(terminal: Callable[[str, bool], Terminal]) -> None:
    """Fault R5 through a real pty: 200 window resizes sent back to back (tmux delivers each as SIGWINCH,
    about 100 a second here) between 60x20 and 200x50, ending at 80x24. The console survives, its final
    layout fits 80 columns with the states in words, and keys still work (open an app, back, quit cleanly)."""
    t = terminal("xterm-256color", True)
    t.wait_for(lambda s: "OutOfSync" in s and "rows" in s, "the fleet screen")
    for i in range(200):
        width, height = (60, 20) if i % 2 else (200, 50)
        t._tmux("resize-window", "-t", "fd", "-x", str(width), "-y", str(height))
    t._tmux("resize-window", "-t", "fd", "-x", "80", "-y", "24")
    screen = t.wait_for(lambda s: "OutOfSync" in s and "rows" in s and len(s.splitlines()) <= 24,
                        "the fleet screen at 80x24 after the storm")
    assert all(len(line) <= 80 for line in screen.splitlines()), screen
    assert "Healthy" in screen and "Traceback" not in screen
    t.keys("Enter")
    t.wait_for(lambda s: "namespace" in s and "path" in s, "the app screen after the storm")
    t.keys("Escape", "q")
    done = t.wait_for(lambda s: "EXITED=" in s, "the console to quit")
    assert "EXITED=0" in done and "Traceback" not in done, done


def test_keys_typed_while_another_process_takes_a_core_are_not_lost(terminal: Callable[[str, bool], Terminal]) -> None:
    """Fault R2 through a real pty: with a busy process taking a whole core (of two), a burst of keys typed
    at once into the filter arrives complete and in order: the fleet shows only the app they spell, and the
    console still opens it and quits cleanly."""
    import subprocess
    import time

    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        t = terminal("xterm-256color", True)
        t.wait_for(lambda s: "OutOfSync" in s and "rows" in s, "the fleet screen")
        t.keys("/")
        t._tmux("send-keys", "-t", "fd", "-l", "payments")  # eight keys in one write, no pause between them
        time.sleep(0.3)
        t.keys("Enter")
        def only_payments(screen: str) -> bool:
            rows = [line for line in screen.splitlines() if " prod-" in line or " staging-" in line]
            return len(rows) == 3 and all("payments" in row for row in rows)

        t.wait_for(only_payments, "only the three payments rows after the typed filter")
        t.keys("Enter")
        t.wait_for(lambda s: "namespace" in s and "payments" in s, "the payments app screen")
        t.keys("Escape", "q")
        done = t.wait_for(lambda s: "EXITED=" in s, "the console to quit")
        assert "EXITED=0" in done, done
    finally:
        hog.kill()
        hog.wait(10)
