"""AppScreen: one app on one cluster: its summary, control state, conditions, operation and resources.

The resource tree shows owner → owned (``ResourceStatus.parent``) with per-resource sync, health and
messages; space marks resources for a selective sync. Everything is re-rendered from each new snapshot,
never from an operation's result. Untrusted strings go through ``safe``.
"""

from __future__ import annotations

import logging

from rich.text import Text
from textual.app import ComposeResult
from textual.reactive import var
from textual.widgets import Static

from core.errors import FleetdeckError
from core.model import (
    AppEvents,
    AppStatus,
    ClusterStatus,
    ConnectionState,
    FleetSnapshot,
    OperationState,
    ResourceKey,
)
from tui.context import ConsoleContext
from tui.fleet_query import RowKey
from tui.formatting import age_since, age_until, join_lines, safe
from tui.glyphs import Glyphs
from tui.screens.base import ConsoleScreen, row_title
from tui.screens.diff import DiffScreen
from tui.screens.history import HistoryScreen
from tui.widgets.events_panel import EventsPanel
from tui.widgets.footer import KeysFooter
from tui.widgets.resource_tree import ResourceTree
from tui.widgets.sync_log import SyncLog


def status_line(app: AppStatus, glyphs: Glyphs) -> Text:
    """``web on prod-us  ✗ OutOfSync  ♥ Healthy  3 drifted``."""
    text = row_title(app.id)
    text.append(f"  {glyphs.sync_label(app.sync)}  {glyphs.health_label(app.health.status)}")
    if not app.drift_count and (app.loading or app.sync.value == "Unknown"):
        text.append("  drift not compared")  # no claim of zero drift for a row that was not compared
    else:
        text.append(f"  {app.drift_count} drifted")
    if app.approximate:
        text.append(f"  {glyphs.approximate} approximate (local comparison)")
    return text


def source_line(app: AppStatus, now: float, glyphs: Glyphs) -> Text:
    """Namespace, path, revision, last synced revision, sync policy, and the apps it comes after."""
    text = Text("namespace ", end="")
    text.append_text(safe(app.namespace or "-"))
    text.append(f" {glyphs.dot} path ")
    text.append_text(safe(app.path or "-"))
    text.append(f" {glyphs.dot} revision ")
    if app.revision is None:
        text.append("unknown")
    else:
        text.append_text(safe(app.revision.short, "bold"))
        text.append(f" ({age_since(app.revision.committed_at, now)})")
        if app.revision.subject:
            text.append(" ")
            text.append_text(safe(app.revision.subject, max_length=80))
    text.append(f" {glyphs.dot} last synced ")
    text.append_text(safe((app.synced_revision or "never")[:8]))
    text.append(f" {glyphs.dot} automated sync {'on' if app.automated else 'off'}")
    if app.depends_on:  # an ordering shown, not enforced
        text.append(f" {glyphs.dot} after ")
        text.append_text(safe(", ".join(app.depends_on), max_length=120))
    return text


def owner_lines(app: AppStatus, glyphs: Glyphs, *, max_resources: int = 8) -> list[Text]:
    """Who applies the app here and, for a controller owner, what the controller reports: sync and revision,
    health, operation, its per-resource view and the latest history entries with who initiated them (the
    tree and diffs below stay fleetdeck's own comparison)."""
    ref = app.controller
    head = Text(f"owner {app.owner.value}", style="bold", end="")
    if ref is not None:
        head.append(f" {glyphs.dot} ")
        head.append_text(safe(f"{ref} on {ref.cluster}"))
    status = app.controller_status
    if status is None:
        return [head] if app.owner.value != "fleetdeck" else []
    head.append(f" {glyphs.dot} says ")
    head.append_text(safe(status.sync or "?"))
    head.append(" at ")
    head.append_text(safe(status.revision[:12] or "-"))
    head.append(", health ")
    head.append_text(safe(status.health or "?"))
    head.append(f" {glyphs.dot} automated sync {'on' if status.automated else 'off'}")
    lines = [head]
    if status.operation_pending or status.operation_phase:
        op = Text("  operation ", end="")
        op.append_text(safe("requested, not started yet" if status.operation_pending else status.operation_phase))
        if status.operation_revision:
            op.append(" ")
            op.append_text(safe(status.operation_revision[:12]))
        if status.operation_message:
            op.append(": ")
            op.append_text(safe(status.operation_message, max_length=200))
        lines.append(op)
    for res in status.resources[:max_resources]:
        line = Text("  ", end="")
        line.append_text(safe(f"{res.sync or '?':<10} {res.health or '-':<12} {res.key.short}", max_length=200))
        lines.append(line)
    if len(status.resources) > max_resources:
        lines.append(Text(f"  {glyphs.fold} {len(status.resources) - max_resources} more resources", end=""))
    for entry in list(reversed(app.history))[:3]:
        line = Text("  history ", end="")
        line.append_text(safe(f"#{entry.id} {entry.revision[:12]} by {entry.by}"))
        lines.append(line)
    return lines


def control_lines(app: AppStatus, now: float, glyphs: Glyphs) -> list[Text]:
    """Paused by whom, why and until when; pinned revision and how far behind."""
    control = app.control
    lines: list[Text] = []
    if control.paused:
        text = Text(f"{glyphs.paused} paused", style="bold", end="")
        text.append(" by ")
        text.append_text(safe(control.by or "unknown"))
        text.append(f" {age_since(control.at, now)}")
        if control.reason:
            text.append(": ")
            text.append_text(safe(control.reason, max_length=200))
        text.append(f" {glyphs.dot} ")
        text.append(f"expires {age_until(control.expires_at, now)}" if control.expires_at
                    else "until resumed by hand")
        lines.append(text)
    if control.pinned is not None:
        text = Text(f"{glyphs.pinned} pinned", style="bold", end="")
        text.append(" to ")
        text.append_text(safe(control.pinned[:8], "bold"))
        behind = f"{app.behind} commit(s) behind the branch" if app.behind else "at the branch head"
        text.append(f" by a rollback {glyphs.dot} {behind} {glyphs.dot} resume (u) clears the pin")
        lines.append(text)
    return lines


def condition_lines(app: AppStatus, cluster: ClusterStatus | None, now: float, glyphs: Glyphs) -> list[Text]:
    """Conditions (render errors, permissions), staleness, and the operation in progress."""
    lines: list[Text] = []
    if app.stale or (cluster is not None and cluster.connection is not ConnectionState.CONNECTED):
        state = cluster.connection.value if cluster else "unknown"
        text = Text(f"{glyphs.stale} cluster {state}", style="bold", end="")
        if cluster is not None:
            text.append(f" since {age_since(cluster.since, now)}")
            if cluster.message:
                text.append(": ")
                text.append_text(safe(cluster.message, max_length=200))
        if app.stale:
            text.append(" (last known state shown)")
        lines.append(text)
    for condition in app.conditions:
        text = Text(f"{glyphs.warning} {condition.severity.value}: ", style="bold", end="")
        text.append_text(safe(condition.type, "bold"))
        text.append(": ")
        text.append_text(safe(condition.message, max_length=400))
        lines.append(text)
    operation = app.operation
    if operation is not None and not operation.phase.completed:
        text = Text(f"{glyphs.running} {operation.kind} {operation.phase.value}", style="bold", end="")
        text.append(f": {operation.summary}")
        if operation.by:
            text.append(" by ")
            text.append_text(safe(operation.by))
        if operation.message:
            text.append(" ")
            text.append_text(safe(operation.message, max_length=200))
        lines.append(text)
    return lines


log = logging.getLogger(__name__)

EVENTS_INTERVAL = 2.0
"""Seconds between two asks for the app's events while the screen is open (the engine watches them; the
answer is a frozen ``AppEvents``)."""


class AppScreen(ConsoleScreen):
    """One app on one cluster."""

    SCOPE = "app"
    AUTO_FOCUS = "#tree"

    marked: var[frozenset[ResourceKey]] = var(frozenset())
    """Resources marked for a selective sync."""

    def __init__(self, ctx: ConsoleContext, key: RowKey) -> None:
        super().__init__(ctx)
        self.key = key
        self.status: AppStatus | None = None
        self.events: AppEvents | None = None
        self.events_shown: bool | None = None
        """The operator's choice with ``e`` (None: show the panel when there is something to say)."""

    def compose(self) -> ComposeResult:
        """Summary, resource tree, events, sync log, status line, footer."""
        yield Static(row_title(self.key), id="app-summary")
        yield ResourceTree(glyphs=self.ctx.glyphs, id="tree")
        yield EventsPanel(glyphs=self.ctx.glyphs, id="events", classes="-hidden")
        yield SyncLog(glyphs=self.ctx.glyphs, id="sync-log", classes="-hidden")
        yield Static("", id="status-line")
        yield KeysFooter()

    def on_mount(self) -> None:
        """Ask for the app's events now and every ``EVENTS_INTERVAL`` seconds."""
        self.fetch_events()
        self.set_interval(EVENTS_INTERVAL, self.fetch_events)

    def fetch_events(self) -> None:
        """Ask the engine for the app's events (one request in flight at a time)."""
        self.run_worker(self._fetch_events(), group="events", exclusive=True, exit_on_error=False)

    async def _fetch_events(self) -> None:
        try:
            found = await self.ctx.engine.app_events(*self.key)
        except FleetdeckError as exc:
            found = AppEvents(app=self.key[0], cluster=self.key[1], error=f"events not readable: {exc.message}")
        except Exception as exc:  # events explain, they never interrupt: no error dialog every 2 s
            log.warning("events of %s on %s: %s", *self.key, exc)
            found = AppEvents(app=self.key[0], cluster=self.key[1], error=f"events not readable: {exc}")
        self.show_events(found)

    def show_events(self, found: AppEvents) -> None:
        """Render the app's events; the panel shows itself when there is something to say."""
        self.events = found
        panel = self.query_one(EventsPanel)
        panel.show(found, self.now())
        shown = panel.worth_showing if self.events_shown is None else self.events_shown
        panel.set_class(not shown, "-hidden")
        self._refresh_status()

    def action_toggle_events(self) -> None:
        """Show or hide the events panel."""
        panel = self.query_one(EventsPanel)
        self.events_shown = panel.has_class("-hidden")
        if self.events_shown and panel.found is None:
            panel.show(None, self.now())
        panel.set_class(not self.events_shown, "-hidden")

    def show_snapshot(self, snapshot: FleetSnapshot) -> None:
        """Re-render from the new snapshot."""
        self.status = snapshot.app(*self.key)
        summary = self.query_one("#app-summary", Static)
        if self.status is None:
            text = row_title(self.key)
            text.append(": no longer in the fleet (removed from Git or its cluster was dropped)")
            summary.update(text)
            return
        now, glyphs = self.now(), self.ctx.glyphs
        lines = [status_line(self.status, glyphs), source_line(self.status, now, glyphs)]
        lines += owner_lines(self.status, glyphs)
        lines += control_lines(self.status, now, glyphs)
        lines += condition_lines(self.status, snapshot.cluster(self.key[1]), now, glyphs)
        summary.update(join_lines(lines))
        present = {r.key for r in self.status.resources}
        self.marked = frozenset(k for k in self.marked if k in present)
        self.query_one(ResourceTree).show(self.status.resources, self.marked)
        self._refresh_status()

    def show_operations(self, operations: tuple[OperationState, ...]) -> None:
        """Show this app's operations in the sync log."""
        mine = tuple(op for op in operations if (op.app, op.cluster) == self.key)
        log = self.query_one(SyncLog)
        log.show(mine)
        log.set_class(not mine and log.has_class("-hidden"), "-hidden")

    def _refresh_status(self) -> None:
        g = self.ctx.glyphs
        count = len(self.status.resources) if self.status else 0
        text = Text(f"{count} resources", no_wrap=True, end="")
        if self.marked:
            text.append(f" {g.dot} {len(self.marked)} marked: sync applies only those", style="bold")
        if self.events is not None and self.events.warnings:
            text.append(f" {g.dot} {g.warning} {self.events.warnings} event warning"
                        f"{'s' if self.events.warnings != 1 else ''} (e)", style="bold")
        text.append(f" {g.dot} enter diff {g.dot} D whole app {g.dot} ? help")
        self.query_one("#status-line", Static).update(text)

    def action_toggle_mark(self) -> None:
        """Mark or unmark the resource under the cursor for a selective sync."""
        tree = self.query_one(ResourceTree)
        status = tree.cursor_status
        if status is None or not status.managed:
            self.notify("only resources fleetdeck applies can be synced selectively", timeout=3, markup=False)
            return
        self.marked = self.marked ^ {status.key}
        tree.show(self.status.resources if self.status else (), self.marked)
        tree.action_cursor_down()
        self._refresh_status()

    def after_request(self, what: str) -> None:
        """A confirmed selective sync was requested: its resource marks are cleared."""
        if what == "sync" and self.marked:
            self.marked = frozenset()
            self.query_one(ResourceTree).show(self.status.resources if self.status else (), self.marked)
            self._refresh_status()

    def action_diff_resource(self) -> None:
        """Diff the resource under the cursor."""
        key = self.query_one(ResourceTree).cursor_key
        if key is not None:
            self.app.push_screen(DiffScreen(self.ctx, self.key, resource=key))

    def action_diff_app(self) -> None:
        """Diff every resource of the app."""
        self.app.push_screen(DiffScreen(self.ctx, self.key))

    def action_open_history(self) -> None:
        """Revisions and recorded syncs of this app."""
        self.app.push_screen(HistoryScreen(self.ctx, self.key))

    def action_toggle_log(self) -> None:
        """Show or hide the sync log."""
        self.query_one(SyncLog).toggle_class("-hidden")

    def action_refresh_app(self) -> None:
        """Fetch Git and recompute this app."""
        self.request_refresh([self.key])

    def action_sync_app(self) -> None:
        """Plan a sync of the app, or of the marked resources only, and confirm it."""
        self.request_sync([self.key], resources=tuple(sorted(self.marked)))

    def action_pause_app(self) -> None:
        """Pause automated sync of this app."""
        self.request_pause([self.key])

    def action_resume_app(self) -> None:
        """Resume automated sync of this app."""
        self.request_resume([self.key])
