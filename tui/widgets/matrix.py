"""FleetMatrix: apps × clusters, showing which revision runs where with sync and health glyphs.

A Line-API ``ScrollView`` like the fleet table: one line per app, rendered only when visible, and only
the lines whose cells changed are refreshed. Each cell is ``abc1234 ✓♥`` (the revision last synced there, so
it tells what runs, not what Git wants) plus a badge for paused, pinned
or stale, so it reads without colour. The screen pushes rows down and reads ``cursor_key``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from core.model import AppName, AppStatus, ClusterName, HealthStatus, SyncStatus
from core.sanitize import clean
from tui.fleet_query import FleetRow, RowKey
from tui.formatting import fit, safe
from tui.glyphs import UNICODE, Glyphs
from tui.widgets.strips import text_strip

CELL_WIDTH = 12
NAME_MAX = 24


class FleetMatrix(ScrollView, can_focus=True):
    """Apps down, clusters across."""

    COMPONENT_CLASSES = {
        "fleet-matrix--header",
        "fleet-matrix--cursor",
        "fleet-matrix--outofsync",
        "fleet-matrix--degraded",
        "fleet-matrix--unknown",
        "fleet-matrix--stale",
        "fleet-matrix--empty",
    }

    BINDINGS = [
        Binding("up,k", "move(0, -1)", "Up", show=False),
        Binding("down,j", "move(0, 1)", "Down", show=False),
        Binding("left", "move(-1, 0)", "Left", show=False),
        Binding("right", "move(1, 0)", "Right", show=False),
    ]

    @dataclass
    class CursorMoved(Message):
        """The cursor moved to another cell."""

        matrix: FleetMatrix
        key: RowKey | None

        @property
        def control(self) -> FleetMatrix:
            """The matrix that posted the message."""
            return self.matrix

    cursor: reactive[tuple[int, int]] = reactive((0, 0), repaint=False)
    """(column, row) of the highlighted cell."""

    def __init__(self, *, glyphs: Glyphs = UNICODE, id: str | None = None) -> None:
        super().__init__(id=id)
        self.glyphs = glyphs
        self.apps: tuple[AppName, ...] = ()
        self.clusters: tuple[ClusterName, ...] = ()
        self.cells: dict[RowKey, AppStatus] = {}
        self.marked: frozenset[RowKey] = frozenset()
        self._name_width = 8
        self._col_offset = 0

    def show(
        self, rows: Sequence[FleetRow], clusters: Sequence[ClusterName], marked: frozenset[RowKey]
    ) -> None:
        """Display ``rows`` as a grid over ``clusters``; repaint only changed app lines."""
        cells = {row.key: row.app for row in rows}
        apps = tuple(sorted({row.app.app for row in rows}))
        clusters = tuple(clusters)
        if apps != self.apps or clusters != self.clusters:
            self.apps, self.clusters, self.cells, self.marked = apps, clusters, cells, marked
            self._name_width = min(NAME_MAX, max([3, *(len(safe(a).plain) for a in apps)]))
            self.virtual_size = Size(self.size.width, len(apps) + 1)
            self.cursor = (min(self.cursor[0], max(0, len(clusters) - 1)), min(self.cursor[1], max(0, len(apps) - 1)))
            self.refresh()
            return
        changed = {k[0] for k in cells.keys() | self.cells.keys() if cells.get(k) is not self.cells.get(k)}
        changed |= {k[0] for k in marked.symmetric_difference(self.marked)}
        self.cells, self.marked = cells, marked
        for index, app in enumerate(self.apps):
            if app in changed:
                self.refresh_lines(index + 1)

    @property
    def cursor_key(self) -> RowKey | None:
        """The (app, cluster) under the cursor, if that app runs on that cluster."""
        column, row = self.cursor
        if row < len(self.apps) and column < len(self.clusters):
            key = (self.apps[row], self.clusters[column])
            return key if key in self.cells else None
        return None

    def move_to(self, key: RowKey) -> None:
        """Put the cursor on ``key``'s cell, if shown."""
        if key[0] in self.apps and key[1] in self.clusters:
            self.cursor = (self.clusters.index(key[1]), self.apps.index(key[0]))

    def action_move(self, dx: int, dy: int) -> None:
        """Move the cursor by one cell."""
        column = min(max(0, self.cursor[0] + dx), max(0, len(self.clusters) - 1))
        row = min(max(0, self.cursor[1] + dy), max(0, len(self.apps) - 1))
        self.cursor = (column, row)

    def watch_cursor(self, old: tuple[int, int], new: tuple[int, int]) -> None:
        """Repaint the old and new lines, keep the cell visible, tell the screen."""
        self._keep_visible(new)
        self.refresh_lines(old[1] + 1)
        self.refresh_lines(new[1] + 1)
        self.post_message(self.CursorMoved(self, self.cursor_key))

    def _visible_columns(self) -> int:
        return max(1, (self.scrollable_content_region.width - self._name_width - 1) // (CELL_WIDTH + 1))

    def _sync_offset(self) -> bool:
        """Scroll columns so the cursor's cluster is visible; return whether the offset moved."""
        visible = self._visible_columns()
        column = self.cursor[0]
        offset = self._col_offset
        if column < offset:
            offset = column
        elif column >= offset + visible:
            offset = column - visible + 1
        offset = max(0, min(offset, len(self.clusters) - visible))
        moved = offset != self._col_offset
        self._col_offset = offset
        return moved

    def on_resize(self) -> None:
        """A new width shows a different number of clusters."""
        self._sync_offset()
        self.refresh()

    def _keep_visible(self, cell: tuple[int, int]) -> None:
        if self._sync_offset():
            self.refresh()
        rows = max(1, self.scrollable_content_region.height - 1)
        if cell[1] < self.scroll_y:
            self.scroll_to(y=cell[1], animate=False)
        elif cell[1] >= self.scroll_y + rows:
            self.scroll_to(y=cell[1] - rows + 1, animate=False)

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"fleet-matrix--{name}", partial=True)

    def render_line(self, y: int) -> Strip:
        """Line 0 names the clusters; line ``y`` is app ``scroll_y + y - 1``."""
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            return self._strip(self._header_text(), width, base + self._style("header"))
        index = int(self.scroll_y) + y - 1
        if not 0 <= index < len(self.apps):
            return Strip.blank(width, base)
        return self._strip(self._app_text(index), width, base)

    def _columns(self) -> range:
        self._sync_offset()
        return range(self._col_offset, min(len(self.clusters), self._col_offset + self._visible_columns()))

    def _header_text(self) -> Text:
        text = Text("APP".ljust(self._name_width) + " ", no_wrap=True, end="")
        for column in self._columns():
            text.append(" ")
            text.append_text(fit(safe(self.clusters[column]), CELL_WIDTH - 1, self.glyphs.ellipsis))
            text.append(" ")
        if self._col_offset + self._visible_columns() < len(self.clusters):
            text.append(f"{self.glyphs.ellipsis}+{len(self.clusters) - self._col_offset - self._visible_columns()}")
        return text

    def _app_text(self, index: int) -> Text:
        app = self.apps[index]
        text = fit(safe(app), self._name_width, self.glyphs.ellipsis)
        text.append(" ")
        for column in self._columns():
            is_cursor = self.cursor == (column, index)
            text.append_text(self._cell(self.cells.get((app, self.clusters[column])), is_cursor))
            text.append(" ")
        return text

    def _cell(self, status: AppStatus | None, is_cursor: bool) -> Text:
        g = self.glyphs
        cursor_style = self._style("cursor") if is_cursor else Style.null()
        prefix = g.cursor if is_cursor else " "
        if status is None:
            return Text(f"{prefix}{g.dot}".ljust(CELL_WIDTH), style=self._style("empty") + cursor_style, end="")
        if status.id in self.marked and not is_cursor:
            prefix = g.marked
        running = status.running_revision  # which revision runs where, never merely the desired one
        sha = clean(running[:7]) if running else "-------"
        badge = g.paused if status.control.paused else g.pinned if status.control.pinned else ""
        badge = g.stale if status.stale else badge
        body = f"{prefix}{sha} {g.sync[status.sync]}{g.health[status.health.status]}{badge}"
        text = fit(Text(body, end=""), CELL_WIDTH)
        text.stylize(cursor_style if is_cursor else self._cell_style(status))
        return text

    def _cell_style(self, status: AppStatus) -> Style:
        if status.stale:
            return self._style("stale")
        if status.health.status is HealthStatus.DEGRADED:
            return self._style("degraded")
        if status.sync is SyncStatus.OUT_OF_SYNC:
            return self._style("outofsync")
        if status.sync is SyncStatus.UNKNOWN:
            return self._style("unknown")
        return Style.null()

    def _strip(self, text: Text, width: int, style: Style) -> Strip:
        return text_strip(text, width, style, self.app.console, self.glyphs.ellipsis)
