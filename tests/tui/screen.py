"""Reading what the console shows: the composited screen as plain text or as the bytes a terminal gets.

Used by the pilot tests to assert on visible words and by the injection test to inspect the raw output.
"""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from textual.app import App


def _render(app: App[Any], *, color_system: str | None) -> Console:
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system=color_system, record=True, legacy_windows=False)  # type: ignore[arg-type]
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console


def screen_text(app: App[Any]) -> str:
    """The visible screen (including modals over their background) as plain text lines."""
    return _render(app, color_system=None).export_text()


def terminal_bytes(app: App[Any]) -> str:
    """What a truecolor terminal would receive for a full repaint of the screen."""
    console = _render(app, color_system="truecolor")
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()
