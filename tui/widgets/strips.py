"""Turning a one-line ``Text`` into a ``Strip`` of exact width for the Line-API widgets.

Every segment gets a real style (the line's base style when Rich leaves it unset): Textual's
monochrome filter, used under ``NO_COLOR``, cannot handle a segment without a style.
"""

from __future__ import annotations

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

from tui.formatting import fit


def text_strip(text: Text, width: int, style: Style, console: Console, ellipsis: str = "…") -> Strip:
    """``text`` cut or padded to ``width`` cells, on ``style``."""
    line = fit(text, width, ellipsis)
    line.style = style
    segments = [Segment(t, s if s is not None else style, c) for t, s, c in line.render(console)]
    return Strip(segments, width).adjust_cell_length(width, style)
