"""The console's terminal driver: Textual's Linux driver, writing through ``tui.terminal_output.ScreenDiff``.

Every write Textual makes goes through the screen model first, so only changed cells and the shortest
colour changes reach the terminal (docs/performance.md, "Bytes to the terminal"). The model forgets the
screen whenever the terminal may have changed behind it: a new size (checked on every write, and on the
app's resize event), entering or leaving application mode (start, suspend, resume, exit).

``FLEETDECK_RAW_OUTPUT=1`` turns this off (Textual's own output, byte for byte), for comparison.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from textual.drivers.linux_driver import LinuxDriver

from tui.terminal_output import ScreenDiff

RAW_OUTPUT_ENV = "FLEETDECK_RAW_OUTPUT"


def raw_output() -> bool:
    """Whether the operator asked for Textual's output unchanged."""
    return os.environ.get(RAW_OUTPUT_ENV, "") not in ("", "0")


class DiffingDriver(LinuxDriver):
    """``LinuxDriver`` whose writes carry only what changed on the screen."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.screen_diff = ScreenDiff()
        self._diff_lock = threading.Lock()
        self.bytes_in = self.bytes_out = 0
        """Characters Textual wrote and characters sent on (for tests and measurements)."""

    def write(self, data: str) -> None:
        """Write what ``data`` changes on the screen."""
        with self._diff_lock:
            self.screen_diff.resize(*self._get_terminal_size())
            out = self.screen_diff.write(data)
            self.bytes_in += len(data)
            self.bytes_out += len(out)
        if out:
            super().write(out)

    def forget_screen(self) -> None:
        """The terminal may show anything: the next writes go out in full."""
        with self._diff_lock:
            self.screen_diff.forget()

    def start_application_mode(self) -> None:
        """Enter application mode with a screen known to nothing."""
        self.forget_screen()
        super().start_application_mode()  # type: ignore[no-untyped-call]

    def stop_application_mode(self) -> None:
        """Leave application mode; whatever runs next may write anywhere."""
        super().stop_application_mode()
        self.forget_screen()
