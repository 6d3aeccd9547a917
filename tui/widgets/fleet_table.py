"""FleetTable: the fleet's (app, cluster) rows as a Line-API ``ScrollView`` with virtual rows.

Only visible lines are rendered (``render_line``). The screen keeps a ``tui.fleet_view.FleetView`` up to
date and hands the table what changed (``update``): a row changed in place refreshes its line only, so one
changed app on a 100,000-row fleet repaints one line; rows that moved, came or went repaint the visible
lines from cached strips. Column widths are counted per width and updated from changed rows only; the
layout drops low-priority columns on narrow terminals. The widget never reads the snapshot or the
engine: the screen pushes rows and marks down, and reads ``cursor_key``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.fleet_query import FleetRow, GroupRow, RowKey, TableRow
from tui.fleet_view import FleetView, ViewChange
from tui.formatting import safe
from tui.glyphs import UNICODE, Glyphs
from tui.widgets.fleet_columns import (
    SELECT_WIDTH,
    CellContext,
    ContentWidths,
    Layout,
    full_width,
    layout_columns,
    render_cells,
    render_titles,
)
from tui.widgets.strips import text_strip

STATE_STYLES = (
    "synced",
    "outofsync",
    "unknown",
    "healthy",
    "progressing",
    "degraded",
    "missing",
    "suspended",
    "paused",
    "pinned",
    "stale",
    "dim",
)
"""Style names cells may ask for; each is a ``fleet-table--<name>`` component class."""


class FleetTable(ScrollView, can_focus=True):
    """Virtual table of fleet rows with a fixed header line, a cursor and marks."""

    COMPONENT_CLASSES = {
        "fleet-table--header",
        "fleet-table--cursor",
        "fleet-table--marked",
        "fleet-table--group",
        *(f"fleet-table--{name}" for name in STATE_STYLES),
    }

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False),
        Binding("pagedown,ctrl+f", "page(1)", "Page down", show=False),
        Binding("home", "edge(0)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
    ]

    @dataclass
    class CursorMoved(Message):
        """The cursor moved to another row."""

        table: FleetTable
        key: RowKey | None

        @property
        def control(self) -> FleetTable:
            """The table that posted the message."""
            return self.table

    cursor: reactive[int] = reactive(0, always_update=False, repaint=False)
    """Index of the highlighted row in ``rows``."""

    def __init__(
        self,
        *,
        glyphs: Glyphs = UNICODE,
        now: float = 0.0,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.glyphs = glyphs
        self.now = now
        """The time ages are computed from; the screen sets it from the app's clock."""
        self.rows: Sequence[TableRow] = ()
        self.marked: frozenset[RowKey] = frozenset()
        self._position: Callable[[object], int | None] = self._lookup(())
        """Display position of a row key."""
        self._cursor_key_memo: RowKey | None = None
        """The key under the cursor as of the last cursor move or repaint (rows may change under it)."""
        self._widths = ContentWidths()
        self._natural: dict[str, int] = {}
        self._column_layout: Layout | None = None
        self._column_layout_width = -1
        self._resolved_styles: dict[str, Style] | None = None
        self._strip_cache: dict[tuple[object, bool], Strip] = {}
        self.refreshed_keys: list[object] = []
        """Keys of the rows repainted by the last ``show`` (empty after a full repaint); for tests."""

    # ------------------------------------------------------------------ data in

    def set_now(self, now: float) -> None:
        """Move the time ages are computed from; repaints only the visible lines whose text changed (an
        age that moved from "3m" to "4m"), so an idle fleet writes nothing to the terminal."""
        if now == self.now:
            return
        self.now = now
        width = self.scrollable_content_region.width
        top = int(self.scroll_y)
        kept: dict[tuple[object, bool], Strip] = {}
        for index in range(top, min(len(self.rows), top + max(0, self.scrollable_content_region.height - 1))):
            row = self.rows[index]
            if index == self.cursor:
                self.refresh_lines(index + 1)  # never cached: drawn again from the new time
                continue
            key = (row.key, row.key in self.marked if isinstance(row, FleetRow) else False)
            strip = self._render_row(row, False, width)
            if self._strip_cache.get(key) != strip:
                self.refresh_lines(index + 1)
            kept[key] = strip
        self._strip_cache = kept  # rows off screen are drawn afresh when they scroll in

    def show(self, rows: Sequence[TableRow], marked: frozenset[RowKey]) -> None:
        """Display ``rows``, refreshing only the lines whose row (or mark) changed.

        Rows are compared with the last ones by identity when their order is unchanged; otherwise the
        table repaints. A ``FleetView`` kept up to date by the screen should go through ``update``.

        Args:
            rows: the rows in display order.
            marked: keys of the rows marked for a bulk action.
        """
        if rows is self.rows:
            self.set_marks(marked)
            return
        old = self.rows
        current_key = self.cursor_key
        same_order = len(rows) == len(old) and all(a.key == b.key for a, b in zip(rows, old, strict=True))
        if not same_order:
            self.rows, self.marked = rows, marked
            self._position = self._lookup(rows)
            self._repaint_all(current_key)
            return
        changed = [i for i, (new, prev) in enumerate(zip(rows, old, strict=True)) if new is not prev]
        gone = [r for i in changed if isinstance(r := old[i], FleetRow)]
        came = [r for i in changed if isinstance(r := rows[i], FleetRow)]
        self.rows = rows
        self._position = self._lookup(rows)
        self._refresh_changed([rows[i] for i in changed], gone, came, marked)

    def update(self, change: ViewChange, marked: frozenset[RowKey]) -> None:
        """The ``FleetView`` shown already changed in place as ``change`` says: refresh what it touched."""
        rows = self.rows
        if not isinstance(rows, FleetView) or change.full:
            if isinstance(rows, FleetView):
                self.marked = marked
                self._repaint_all(self._cursor_key_memo)
            return
        gone = [*change.replaced, *change.removed]
        came = [*change.changed, *change.inserted]
        for row in change.removed:
            self._forget(row.key)
        if not change.moved:
            self._refresh_changed([*change.changed, *change.headings], gone, came, marked)
            return
        self.marked = marked
        self._widths.remove(gone, self._cell_context())
        self._widths.add(came, self._cell_context())
        self._natural_changed()
        for key in (*(r.key for r in change.changed), *(r.key for r in change.inserted),
                    *(h.key for h in change.headings)):
            self._forget(key)
        self.refreshed_keys = []
        self.virtual_size = Size(self.size.width, len(rows) + 1)
        self._keep_cursor(self._cursor_key_memo)
        self.refresh()

    def set_marks(self, marked: frozenset[RowKey]) -> None:
        """Only the marks changed: repaint the lines whose mark did."""
        self._refresh_changed([], [], [], marked)

    def _refresh_changed(
        self, rows: Sequence[TableRow], gone: Sequence[FleetRow], came: Sequence[FleetRow], marked: frozenset[RowKey]
    ) -> None:
        """Rows replaced in place (same positions) and marks changed: refresh those lines only."""
        keys: dict[object, None] = {row.key: None for row in rows}
        keys.update((k, None) for k in marked.symmetric_difference(self.marked))
        self.marked = marked
        self._widths.remove(gone, self._cell_context())
        self._widths.add(came, self._cell_context())
        if self._natural_changed():
            self._strip_cache.clear()
            self.refreshed_keys = []
            self.refresh()
            return
        positions = sorted(p for k in keys if (p := self._position(k)) is not None)
        self._repaint_rows(positions)

    def _natural_changed(self) -> bool:
        natural = self._widths.natural()
        if natural == self._natural:
            return False
        self._natural = natural
        self._column_layout = None
        self._strip_cache.clear()
        return True

    @staticmethod
    def _lookup(rows: Sequence[TableRow]) -> Callable[[object], int | None]:
        if isinstance(rows, FleetView):
            return rows.position
        positions: dict[object, int] = {row.key: i for i, row in enumerate(rows)}
        return positions.get

    def _forget(self, key: object) -> None:
        self._strip_cache.pop((key, True), None)
        self._strip_cache.pop((key, False), None)

    def _repaint_all(self, keep_key: RowKey | None) -> None:
        rows = self.rows
        apps = rows.statuses() if isinstance(rows, FleetView) else (r.app for r in rows if isinstance(r, FleetRow))
        self._widths.reset(apps, self._cell_context())
        self._natural = self._widths.natural()
        self._column_layout = None
        self._strip_cache.clear()
        self.refreshed_keys = []
        self.virtual_size = Size(self.size.width, len(rows) + 1)
        self._keep_cursor(keep_key)
        self.refresh()

    def _keep_cursor(self, keep_key: RowKey | None) -> None:
        position = self._position(keep_key) if keep_key is not None else None
        self._set_cursor(position if position is not None else min(self.cursor, len(self.rows) - 1))
        self._cursor_key_memo = self.cursor_key

    def _repaint_rows(self, indices: Sequence[int]) -> None:
        self.refreshed_keys = [self.rows[i].key for i in indices]
        for index in indices:
            self._forget(self.rows[index].key)
            self.refresh_lines(index + 1)

    # ------------------------------------------------------------------ cursor

    @property
    def cursor_key(self) -> RowKey | None:
        """The key of the highlighted row, or ``None`` when the table is empty."""
        if 0 <= self.cursor < len(self.rows):
            row = self.rows[self.cursor]
            if isinstance(row, FleetRow):
                return row.key
        return None

    @property
    def cursor_row(self) -> FleetRow | None:
        """The highlighted row, if it is an app row."""
        if 0 <= self.cursor < len(self.rows) and isinstance(row := self.rows[self.cursor], FleetRow):
            return row
        return None

    def move_to(self, key: RowKey) -> None:
        """Put the cursor on the row with ``key``, if shown."""
        position = self._position(key)
        if position is not None:
            self._set_cursor(position)

    def _set_cursor(self, index: int) -> None:
        index = self._nearest_app_row(max(0, index), 1)
        self.cursor = index

    def _nearest_app_row(self, index: int, step: int) -> int:
        """``index`` or the first app row after it in direction ``step`` (group headings are skipped)."""
        count = len(self.rows)
        if not count:
            return 0
        index = min(index, count - 1)
        probe = index
        while 0 <= probe < count and isinstance(self.rows[probe], GroupRow):
            probe += step
        if not 0 <= probe < count:
            probe = index
            while 0 <= probe < count and isinstance(self.rows[probe], GroupRow):
                probe -= step
        return min(max(probe, 0), count - 1)

    def watch_cursor(self, old: int, new: int) -> None:
        """Repaint the two affected lines and keep the cursor visible."""
        self._strip_cache.pop((self._key_at(old), True), None)
        self.refresh_lines(old + 1)
        self.refresh_lines(new + 1)
        self._cursor_key_memo = self.cursor_key
        self._scroll_to_cursor()
        self.post_message(self.CursorMoved(self, self.cursor_key))

    def _key_at(self, index: int) -> object:
        return self.rows[index].key if 0 <= index < len(self.rows) else None

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)
        top = int(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False)

    def action_cursor(self, delta: int) -> None:
        """Move the cursor by ``delta`` app rows."""
        target = self.cursor + delta
        if 0 <= target < len(self.rows):
            self.cursor = self._nearest_app_row(target, 1 if delta > 0 else -1)

    def action_page(self, direction: int) -> None:
        """Move the cursor by one screenful."""
        page = max(1, self.scrollable_content_region.height - 2)
        target = min(max(0, self.cursor + direction * page), max(0, len(self.rows) - 1))
        self.cursor = self._nearest_app_row(target, direction)

    def action_edge(self, end: int) -> None:
        """Jump to the first (0) or last (1) row."""
        if end:
            self.cursor = self._nearest_app_row(len(self.rows) - 1, -1)
        else:
            self.cursor = self._nearest_app_row(0, 1)

    def on_click(self, event: events.Click) -> None:
        """With ``--mouse``: a click moves the cursor."""
        index = int(self.scroll_y) + event.y - 1
        if event.y >= 1 and 0 <= index < len(self.rows):
            self._set_cursor(index)

    # ------------------------------------------------------------------ rendering

    def on_resize(self, _event: events.Resize) -> None:
        """A new width means a new layout and new strips."""
        self._column_layout = None
        self._strip_cache.clear()
        self.virtual_size = Size(self.size.width, len(self.rows) + 1)

    def notify_style_update(self) -> None:
        """Theme or CSS changed: resolved styles and rendered strips are stale."""
        super().notify_style_update()
        self._resolved_styles = None
        self._strip_cache.clear()

    def _styles(self) -> dict[str, Style]:
        if self._resolved_styles is None:
            self._resolved_styles = {
                name: self.get_component_rich_style(f"fleet-table--{name}", partial=True)
                for name in STATE_STYLES
            }
        return self._resolved_styles

    def _cell_context(self) -> CellContext:
        return CellContext(glyphs=self.glyphs, now=self.now, styles=self._styles() if self.is_mounted else {})

    @property
    def hidden_columns(self) -> tuple[str, ...]:
        """Titles of the columns dropped for width, in display order."""
        if not self.is_mounted or not self.scrollable_content_region.width:
            return ()  # not laid out yet
        return tuple(c.title for c in self._current_layout().hidden)

    def width_for_all_columns(self) -> int:
        """The terminal width at which every column shows without cutting names (this table's margins
        and scrollbar included)."""
        chrome = self.app.size.width - self.scrollable_content_region.width
        return full_width(self._natural) + chrome

    def _current_layout(self) -> Layout:
        width = self.scrollable_content_region.width
        if self._column_layout is None or width != self._column_layout_width:
            self._column_layout = layout_columns(max(0, width - SELECT_WIDTH), self._natural)
            self._column_layout_width = width
        return self._column_layout

    def render_line(self, y: int) -> Strip:
        """Line 0 is the fixed header; line ``y`` shows row ``scroll_y + y - 1``."""
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            header = self.get_component_rich_style("fleet-table--header")
            titles = render_titles(self._current_layout(), header, self.glyphs, width)
            return self._to_strip(titles, width, base + header)
        index = int(self.scroll_y) + y - 1
        if not 0 <= index < len(self.rows):
            return Strip.blank(width, base)
        row = self.rows[index]
        is_cursor = index == self.cursor
        cache_key = (row.key, row.key in self.marked if isinstance(row, FleetRow) else False)
        if not is_cursor and cache_key in self._strip_cache:
            return self._strip_cache[cache_key]
        strip = self._render_row(row, is_cursor, width)
        if not is_cursor:
            self._strip_cache[cache_key] = strip
        return strip

    def _render_row(self, row: TableRow, is_cursor: bool, width: int) -> Strip:
        base = self.rich_style
        if isinstance(row, GroupRow):
            group = self.get_component_rich_style("fleet-table--group")
            return self._to_strip(self._group_text(row), width, base + group)
        marked = row.key in self.marked
        line = Text(
            (self.glyphs.cursor if is_cursor else " ") + (self.glyphs.marked if marked else " "),
            no_wrap=True,
            end="",
        )
        # The cursor line drops the state colours: on the cursor's background they could vanish, and the
        # words and glyphs already say the state.
        context = self._cell_context()
        if is_cursor:
            context = CellContext(glyphs=context.glyphs, now=context.now, styles={})
        line.append_text(render_cells(row, self._current_layout(), context))
        style = base
        if marked:
            style += self.get_component_rich_style("fleet-table--marked")
        if is_cursor:
            style += self.get_component_rich_style("fleet-table--cursor")
        if row.app.stale:
            style += self.get_component_rich_style("fleet-table--stale", partial=True)
        return self._to_strip(line, width, style)

    def _group_text(self, row: GroupRow) -> Text:
        g = self.glyphs
        text = Text(f"{g.group_mark} ", no_wrap=True, end="")
        text.append_text(safe(row.label))
        text.append(f"  {row.count} rows {g.dot} {row.out_of_sync} OutOfSync {g.dot} {row.degraded} Degraded")
        if row.cluster is not None:
            text.append(f" {g.dot} {g.connection_label(row.cluster.connection)}")
            if row.cluster.listing:
                text.append(f" {g.dot} ")
                text.append_text(safe(row.cluster.listing, max_length=120))
        return text

    def _to_strip(self, text: Text, width: int, style: Style) -> Strip:
        return text_strip(text, width, style, self.app.console, self.glyphs.ellipsis)
