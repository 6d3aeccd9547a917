"""FleetScreen: every (app, cluster) row, or the apps × clusters matrix, with filter, sort and groups.

The screen coordinates: it turns the app's snapshot into rows (``tui.fleet_query``), pushes them down to
the table or the matrix, keeps the marks for bulk actions, and opens the other screens. It never calls
the engine outside a worker and never assigns the app's snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.reactive import var
from textual.widgets import ContentSwitcher, Input, Static

from core.model import ClusterName, FleetSnapshot, HealthStatus, OperationState, SyncStatus
from tui.context import ConsoleContext
from tui.fleet_query import GroupBy, RowKey, SortKey, TableRow
from tui.fleet_view import FleetView, ViewChange, ViewParams
from tui.formatting import safe
from tui.glyphs import Glyphs
from tui.screens.app_screen import AppScreen
from tui.screens.base import ConsoleScreen
from tui.screens.diff import DiffScreen
from tui.screens.history import HistoryScreen
from tui.widgets.fleet_table import FleetTable
from tui.widgets.footer import KeysFooter
from tui.widgets.header import FleetHeader, set_line
from tui.widgets.matrix import FleetMatrix
from tui.widgets.sync_log import SyncLog

AGE_TICK = 30.0
"""Seconds between repaints of the ages ("3m"): the only periodic repaint."""


def matrix_legend(g: Glyphs) -> str:
    """What the matrix cell glyphs mean."""
    return (f"{g.sync[SyncStatus.SYNCED]} synced {g.sync[SyncStatus.OUT_OF_SYNC]} out of sync "
            f"{g.health[HealthStatus.HEALTHY]} healthy {g.health[HealthStatus.DEGRADED]} degraded "
            f"{g.health[HealthStatus.PROGRESSING]} progressing {g.paused} paused {g.pinned} pinned {g.stale} stale")


class FleetScreen(ConsoleScreen):
    """The fleet overview."""

    SCOPE = "fleet"
    AUTO_FOCUS = "#table"

    filter_text: var[str] = var("", init=False)
    """The ``/`` filter."""
    sort: var[SortKey] = var(SortKey.NAME, init=False)
    reverse: var[bool] = var(False, init=False)
    group: var[GroupBy] = var(GroupBy.NONE, init=False)
    matrix: var[bool] = var(False, init=False)
    """Show the apps × clusters matrix instead of the table."""
    marked: var[frozenset[RowKey]] = var(frozenset())
    """Rows marked for a bulk sync or pause."""
    show_log: var[bool] = var(False, init=False)

    def __init__(self, ctx: ConsoleContext) -> None:
        super().__init__(ctx)
        self._view = FleetView()
        self.rows: Sequence[TableRow] = self._view
        """The rows shown, in order (the same as ``fleet_query.build_rows``), updated in place."""
        self._table_stale = False
        """The matrix was shown while snapshots arrived: the table must repaint when it returns."""

    def compose(self) -> ComposeResult:
        """Header, filter, table or matrix, sync log, status line, footer."""
        glyphs = self.ctx.glyphs
        yield FleetHeader(glyphs=glyphs, read_only=self.ctx.read_only, id="header")
        box = Input(
            placeholder="filter: name, cluster, env=prod, outofsync, degraded, paused...  (enter keep, esc clear)",
            id="filter",
            classes="-hidden",
        )
        box.cursor_blink = self.ctx.cursor_blink
        yield box
        with ContentSwitcher(initial="table", id="views"):
            yield FleetTable(glyphs=glyphs, now=self.now(), id="table")
            yield FleetMatrix(glyphs=glyphs, id="matrix")
        yield SyncLog(glyphs=glyphs, id="sync-log", classes="-hidden")
        yield Static("", id="status-line")
        yield KeysFooter()

    def on_mount(self) -> None:
        """Start the age tick."""
        self.set_interval(AGE_TICK, self._tick_ages)

    def _tick_ages(self) -> None:
        self.query_one(FleetTable).set_now(self.now())
        self._refresh_header()

    # ------------------------------------------------------------------ data down

    def show_snapshot(self, snapshot: FleetSnapshot) -> None:
        """A new snapshot: update the rows that changed, refresh only their lines."""
        self._render_rows()
        self._refresh_header()

    def show_operations(self, operations: tuple[OperationState, ...]) -> None:
        """Progress arrived: show it in the sync log (opened on the first operation)."""
        log = self.query_one(SyncLog)
        log.show(operations)
        if operations and not log.operations[:-1]:
            self.show_log = True

    def _refresh_header(self) -> None:
        snapshot = self.snapshot
        counts = self._view.counts if self._view.snapshot is snapshot else None
        self.query_one(FleetHeader).show(snapshot, self.now(), counts)

    def _render_rows(self) -> None:
        snapshot = self.snapshot
        params = ViewParams(filter_text=self.filter_text, sort=self.sort, reverse=self.reverse, group=self.group)
        change = self._view.apply(snapshot, params)
        self.marked = self._existing_marks(snapshot)
        if self.matrix:
            self._table_stale = True
            clusters = tuple(sorted(c.name for c in snapshot.clusters)) if snapshot else ()
            fleet_rows = list(self._view.fleet_rows())
            self.query_one(FleetMatrix).show(fleet_rows, tuple(ClusterName(c) for c in clusters), self.marked)
        else:
            table = self.query_one(FleetTable)
            if table.rows is not self._view:
                table.show(self._view, self.marked)
            else:
                table.update(ViewChange(full=True) if self._table_stale else change, self.marked)
            self._table_stale = False
        self._refresh_status()

    def _existing_marks(self, snapshot: FleetSnapshot | None) -> frozenset[RowKey]:
        """Marks of rows that still exist (an app removed from Git loses its mark)."""
        if snapshot is None or not self.marked:
            return self.marked
        return frozenset(k for k in self.marked if self._view.exists(k))

    def _refresh_status(self) -> None:
        g = self.ctx.glyphs
        shown = self._view.row_count
        total = len(self.snapshot.apps) if self.snapshot else 0
        arrow = "desc" if self.reverse else "asc"
        if self.matrix:
            text = Text(f"matrix {g.dot} {shown} of {total} rows {g.dot} {matrix_legend(g)}", no_wrap=True, end="")
        else:
            text = Text(f"sort: {self.sort.value} {arrow} {g.dot} group: {self.group.value} {g.dot} "
                        f"{shown} of {total} rows", no_wrap=True, end="")
        if self.marked:
            text.append(f" {g.dot} {len(self.marked)} marked", style="bold")
        if self.filter_text:
            text.append(f" {g.dot} filter: ")
            text.append_text(safe(self.filter_text, "bold", max_length=60))
        if not self.matrix and (hidden := len(self.query_one(FleetTable).hidden_columns)):
            text.append(f" {g.dot} {g.more} {hidden} column{'s' if hidden > 1 else ''} hidden")
        text.append(f" {g.dot} ? help")
        set_line(self.query_one("#status-line", Static), text)

    def on_resize(self) -> None:
        """Another width may hide other columns: the status line counts them."""
        self.call_after_refresh(self._refresh_status)

    def help_notes(self) -> list[str]:
        """For the help screen: which columns the table hides at this width, and how to see them."""
        table = self.query_one(FleetTable)
        hidden = table.hidden_columns
        if self.matrix or not hidden:
            return []
        needed = table.width_for_all_columns()
        return [f"Hidden at this width ({self.ctx.glyphs.more} at the end of the table header): "
                f"{', '.join(hidden)}. A terminal {needed} columns wide shows every column; enter opens "
                "the app under the cursor with its cluster state and messages."]

    def watch_filter_text(self) -> None:
        """Filter changed."""
        self._render_rows()

    def watch_sort(self) -> None:
        """Order changed."""
        self._render_rows()

    def watch_reverse(self) -> None:
        """Order direction changed."""
        self._render_rows()

    def watch_group(self) -> None:
        """Grouping changed."""
        self._render_rows()

    def watch_matrix(self, matrix: bool) -> None:
        """Switch between table and matrix, keeping the cursor on the same row."""
        previous = self.query_one(FleetTable) if matrix else self.query_one(FleetMatrix)
        key = previous.cursor_key
        self.query_one(ContentSwitcher).current = "matrix" if matrix else "table"
        self._render_rows()
        if key is not None:
            if matrix:
                self.query_one(FleetMatrix).move_to(key)
            else:
                self.query_one(FleetTable).move_to(key)
        self.query_one("#matrix" if matrix else "#table").focus()

    def watch_show_log(self, show: bool) -> None:
        """Show or hide the sync log."""
        self.query_one(SyncLog).set_class(not show, "-hidden")

    # ------------------------------------------------------------------ selection

    @property
    def cursor_key(self) -> RowKey | None:
        """The row under the cursor of the current view."""
        if self.matrix:
            return self.query_one(FleetMatrix).cursor_key
        return self.query_one(FleetTable).cursor_key

    def targets(self) -> tuple[RowKey, ...]:
        """The marked rows, or the row under the cursor when nothing is marked."""
        if self.marked:
            return tuple(sorted(self.marked))
        key = self.cursor_key
        return (key,) if key is not None else ()

    def action_toggle_mark(self) -> None:
        """Mark or unmark the row under the cursor and move down."""
        key = self.cursor_key
        if key is None:
            return
        self.marked = self.marked ^ {key}
        self._push_marks()
        if not self.matrix:
            self.query_one(FleetTable).action_cursor(1)

    def action_mark_all(self) -> None:
        """Mark every row the filter shows."""
        self.marked = self.marked | {r.key for r in self._view.fleet_rows()}
        self._push_marks()

    def action_clear_marks(self) -> None:
        """Clear every mark."""
        self.marked = frozenset()
        self._push_marks()

    def after_request(self, what: str) -> None:
        """A confirmed sync, pause or resume of the marked rows was requested: the marks have done their job."""
        if self.marked:
            self.action_clear_marks()

    def _push_marks(self) -> None:
        if self.matrix:
            self._render_rows()
        else:
            self.query_one(FleetTable).show(self.rows, self.marked)
            self._refresh_status()

    # ------------------------------------------------------------------ view actions

    def action_focus_filter(self) -> None:
        """Show and focus the filter input."""
        box = self.query_one("#filter", Input)
        box.remove_class("-hidden")
        box.focus()

    def action_clear_filter(self) -> None:
        """Clear and hide the filter."""
        box = self.query_one("#filter", Input)
        if box.value or box.has_focus:
            box.value = ""
            box.add_class("-hidden")
            self.query_one("#matrix" if self.matrix else "#table").focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value:
            self.query_one("#filter", Input).add_class("-hidden")
        self.query_one("#matrix" if self.matrix else "#table").focus()

    def action_cycle_sort(self) -> None:
        """Next order: name, cluster, sync, health."""
        self.sort = self.sort.next()

    def action_reverse_sort(self) -> None:
        """Reverse the order."""
        self.reverse = not self.reverse

    def action_cycle_group(self) -> None:
        """Next grouping: none, cluster, env."""
        self.group = self.group.next()

    def action_toggle_matrix(self) -> None:
        """Table or matrix."""
        self.matrix = not self.matrix

    def action_toggle_log(self) -> None:
        """Show or hide the sync log."""
        self.show_log = not self.show_log

    # ------------------------------------------------------------------ navigation

    def action_open_app(self) -> None:
        """Open the app screen for the row under the cursor."""
        if (key := self.cursor_key) is not None:
            self.app.push_screen(AppScreen(self.ctx, key))

    def open_row(self, key: RowKey) -> None:
        """Open the app screen for ``key`` (used by the command palette)."""
        self.app.push_screen(AppScreen(self.ctx, key))

    def action_open_diff(self) -> None:
        """Open the whole-app diff for the row under the cursor."""
        if (key := self.cursor_key) is not None:
            self.app.push_screen(DiffScreen(self.ctx, key))

    def action_open_history(self) -> None:
        """Open history for the row under the cursor."""
        if (key := self.cursor_key) is not None:
            self.app.push_screen(HistoryScreen(self.ctx, key))

    # ------------------------------------------------------------------ operator actions

    def action_refresh_selected(self) -> None:
        """Refresh the marked rows (or the row under the cursor)."""
        self.request_refresh(self.targets())

    def action_sync_selected(self) -> None:
        """Plan a sync of the marked rows (or the row under the cursor) and confirm it."""
        self.request_sync(self.targets())

    def action_pause_selected(self) -> None:
        """Pause the marked rows (or the row under the cursor)."""
        self.request_pause(self.targets())

    def action_resume_selected(self) -> None:
        """Resume the marked rows (or the row under the cursor)."""
        self.request_resume(self.targets())
