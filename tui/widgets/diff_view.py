"""DiffView: a Line-API view of diff rows, unified or side by side, with YAML colouring.

Rows come from ``tui.diff_model`` (already sanitized text with JSON-pointer paths); only visible lines
are rendered, so a whole-app diff of thousands of lines scrolls cheaply. Colours come from component
classes (themed in ``diff.tcss``); every change also has a ``-``/``+`` sign so it reads without colour.
The widget does no diffing and no I/O: the screen hands it rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.diff_model import DiffRow, RowKind, YamlLine
from tui.formatting import fit
from tui.glyphs import UNICODE, Glyphs
from tui.widgets.strips import text_strip

SIDE_BY_SIDE_MIN_WIDTH = 140
"""Below this width side by side is unreadable; the screen falls back to unified."""


class DiffView(ScrollView, can_focus=True):
    """Scrollable diff rows."""

    COMPONENT_CLASSES = {
        "diff-view--title",
        "diff-view--note",
        "diff-view--removed",
        "diff-view--added",
        "diff-view--fold",
        "diff-view--blame",
        "diff-view--key",
        "diff-view--string",
        "diff-view--number",
        "diff-view--bool",
        "diff-view--null",
        "diff-view--gutter",
    }

    BINDINGS = [
        Binding("up,k", "scroll_up", "Up", show=False),
        Binding("down,j", "scroll_down", "Down", show=False),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False),
        Binding("pagedown,ctrl+f,space", "page_down", "Page down", show=False),
        Binding("home,g", "scroll_home", "Top", show=False),
        Binding("end,G", "scroll_end", "Bottom", show=False),
    ]

    def __init__(self, *, glyphs: Glyphs = UNICODE, id: str | None = None) -> None:
        super().__init__(id=id)
        self.glyphs = glyphs
        self.rows: tuple[DiffRow, ...] = ()
        self.side_by_side = False
        self._resolved_styles: dict[str, Style] | None = None

    def show(self, rows: Sequence[DiffRow], *, side_by_side: bool) -> None:
        """Replace the rows; keeps the scroll position when possible."""
        self.rows = tuple(rows)
        self.side_by_side = side_by_side
        self.virtual_size = Size(self.size.width, len(self.rows))
        self.refresh()

    @property
    def change_starts(self) -> list[int]:
        """Indices of rows that begin a run of changes (blame rows do not break a run)."""
        starts: list[int] = []
        in_run = False
        for index, row in enumerate(self.rows):
            if row.is_change and not in_run:
                starts.append(index)
            in_run = row.is_change or (in_run and row.kind is RowKind.BLAME)
        return starts

    def next_change(self, direction: int = 1) -> bool:
        """Scroll to the next (``1``) or previous (``-1``) change; return whether there was one."""
        top = int(self.scroll_y) + 2
        starts = self.change_starts
        candidates = [s for s in starts if s > top] if direction > 0 else [s for s in starts if s < top][::-1]
        if not candidates:
            return False
        self.scroll_to(y=max(0, candidates[0] - 2), animate=False)
        return True

    def notify_style_update(self) -> None:
        """Theme or CSS changed: drop resolved styles."""
        super().notify_style_update()
        self._resolved_styles = None

    def _style(self, name: str) -> Style:
        if self._resolved_styles is None:
            self._resolved_styles = {
                cls.removeprefix("diff-view--"): self.get_component_rich_style(cls, partial=True)
                for cls in self.COMPONENT_CLASSES
            }
        return self._resolved_styles.get(name, Style.null())

    def render_line(self, y: int) -> Strip:
        """Render row ``scroll_y + y``."""
        width = self.scrollable_content_region.width
        index = int(self.scroll_y) + y
        base = self.rich_style
        if not 0 <= index < len(self.rows):
            return Strip.blank(width, base)
        return text_strip(self._row_text(self.rows[index], width), width, base, self.app.console,
                          self.glyphs.ellipsis)

    def _row_text(self, row: DiffRow, width: int) -> Text:
        g = self.glyphs
        if row.kind is RowKind.TITLE:
            return Text(f"{g.separator} {row.text}", style=self._style("title"), end="")
        if row.kind is RowKind.NOTE:
            return Text(f"  {row.text}", style=self._style("note"), end="")
        if row.kind is RowKind.FOLD:
            return Text(f"  {g.fold} {row.text}", style=self._style("fold"), end="")
        if row.kind is RowKind.BLAME:
            indent = " " * (row.left.indent if row.left else 0)
            return Text(f"    {indent}{g.arrow} {row.text}", style=self._style("blame"), end="")
        if self.side_by_side:
            return self._side_by_side(row, width)
        return self._unified(row)

    def _unified(self, row: DiffRow) -> Text:
        if row.kind is RowKind.REMOVED:
            return self._signed("-", row.left, "removed")
        if row.kind is RowKind.ADDED:
            return self._signed("+", row.right, "added")
        return self._signed(" ", row.right or row.left, "")

    def _side_by_side(self, row: DiffRow, width: int) -> Text:
        half = max(10, (width - 3) // 2)
        if row.kind is RowKind.CONTEXT:
            left, right = self._signed(" ", row.left, ""), self._signed(" ", row.right, "")
        else:
            left = self._signed("-", row.left, "removed") if row.left else Text("", end="")
            right = self._signed("+", row.right, "added") if row.right else Text("", end="")
        text = self._half(left, half, "removed" if row.left and row.kind is not RowKind.CONTEXT else "")
        text.append(f" {self.glyphs.separator} ", style=self._style("gutter"))
        text.append_text(self._half(right, half, "added" if row.right and row.kind is not RowKind.CONTEXT else ""))
        return text

    def _half(self, text: Text, width: int, kind: str) -> Text:
        """One side, fitted; a changed side's background spans the whole half."""
        fitted = fit(text, width, self.glyphs.ellipsis)
        if kind:
            fitted.stylize(self._style(kind), 0, len(fitted))
        return fitted

    def _signed(self, sign: str, line: YamlLine | None, kind: str) -> Text:
        style = self._style(kind) if kind else Style.null()
        text = Text(f"{sign} ", style=self._style("gutter") + style, end="")
        if line is not None:
            text.append_text(self._yaml(line, style))
        return text

    def _yaml(self, line: YamlLine, style: Style) -> Text:
        """YAML colouring on context lines; changed lines keep one style so they stay legible on their
        background (the sign says what they are)."""
        if style:
            return Text(line.text, style=style, end="")
        text = Text(" " * line.indent + ("- " if line.item else ""), end="")
        if line.key:
            text.append(line.key, style=self._style("key"))
            text.append(":")
            if line.value:
                text.append(" ")
        if line.value:
            text.append(line.value, style=self._style(line.value_kind or "string"))
        return text
