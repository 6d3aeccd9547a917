"""HistoryScreen: Git revisions of an app and its recorded syncs; preview and roll back to one.

Revisions come from ``engine.revisions`` and recorded syncs from ``AppStatus.history``. Selecting a
revision runs ``engine.preview`` in a worker and shows the diff against live (what a rollback would
change); ``R`` plans the rollback and asks for confirmation. Commit subjects and authors are untrusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from core.model import FleetSnapshot, HistoryEntry, Revision, SyncStatus, newest_first
from tui.context import ConsoleContext
from tui.diff_model import app_rows
from tui.fleet_query import RowKey
from tui.formatting import age_since, fit, safe
from tui.glyphs import Glyphs
from tui.messages import SyncRequested
from tui.screens.base import ConsoleScreen, row_title
from tui.screens.confirm import ConfirmSyncModal
from tui.widgets.diff_view import DiffView
from tui.widgets.footer import KeysFooter


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One line of the history list: a revision and the recorded syncs of it."""

    sha: str
    revision: Revision | None
    entries: tuple[HistoryEntry, ...]


def merge_history(revisions: Sequence[Revision], entries: Sequence[HistoryEntry]) -> list[HistoryItem]:
    """Revisions with their recorded syncs (newest first), the newest revision first.

    Revisions are ordered by commit time, Git's order breaking ties; a sync of an old revision (a
    rollback) annotates that revision where it is and does not lift it above newer ones. A recorded SHA
    that Git did not list (a commit that did not change this app's output) is placed by its newest sync.
    """
    by_sha: dict[str, list[HistoryEntry]] = {}
    for entry in newest_first(entries):
        by_sha.setdefault(entry.revision, []).append(entry)
    items = [HistoryItem(r.sha, r, tuple(by_sha.pop(r.sha, ()))) for r in revisions]
    items += [HistoryItem(sha, None, tuple(found)) for sha, found in by_sha.items()]
    return sorted(items, key=_item_time, reverse=True)  # stable: Git's order among equal times


def _item_time(item: HistoryItem) -> float:
    """The commit time of a listed revision, else the time of its newest recorded sync."""
    if item.revision is not None and item.revision.committed_at is not None:
        return item.revision.committed_at
    return max((e.at for e in item.entries), default=0.0)


def item_prompt(item: HistoryItem, *, current: str | None, now: float, glyphs: Glyphs) -> Text:
    """``abc12345  2d ago  alice  subject  ● desired now  ✓ manual sync by bob 3d ago: 2 created``."""
    text = safe(item.sha[:8], "bold")
    revision = item.revision
    if revision is not None:
        text.append(f"  {age_since(revision.committed_at, now):>8}  ")
        text.append_text(safe(revision.author or "?", max_length=20))
        text.append("  ")
        text.append_text(safe(revision.subject, max_length=70))
    else:
        text.append("  (a commit that did not change this app's output)")
    if current is not None and item.sha == current:
        text.append(f"  {glyphs.marked} desired now", style="bold")
    for entry in item.entries[:2]:
        text.append(f"  {glyphs.sync[SyncStatus.SYNCED]} {entry.label} by ")
        text.append_text(safe(entry.by, max_length=20))
        text.append(f" {age_since(entry.at, now)}")
        if entry.summary:
            text.append(": ")
            text.append_text(safe(entry.summary, max_length=60))
    if len(item.entries) > 2:
        text.append(f"  {glyphs.fold} {len(item.entries) - 2} older syncs of it (fleetdeck history)")
    return text


class HistoryScreen(ConsoleScreen):
    """History and rollback preview of one app on one cluster."""

    SCOPE = "history"
    AUTO_FOCUS = "#revisions"

    def __init__(self, ctx: ConsoleContext, key: RowKey) -> None:
        super().__init__(ctx)
        self.key = key
        self.items: list[HistoryItem] = []
        self.revisions: tuple[Revision, ...] | None = None
        self.previewed: str | None = None

    def compose(self) -> ComposeResult:
        """Title, the revision list, the preview, status line, footer."""
        title = Text("history ", style="bold", end="")
        title.append_text(row_title(self.key))
        yield Static(title, id="history-title")
        yield OptionList(id="revisions")
        yield Static(Text("enter previews a revision: its diff against live", end=""), id="preview-title")
        yield DiffView(glyphs=self.ctx.glyphs, id="preview")
        yield Static(self._status_text(), id="status-line")
        yield KeysFooter()

    def _status_text(self) -> Text:
        g = self.ctx.glyphs
        text = Text(f"enter preview {g.dot} ", no_wrap=True, end="")
        if not self.ctx.read_only:
            text.append(f"R roll back (pins and pauses the app) {g.dot} ")
        text.append("esc back")
        return text

    def on_mount(self) -> None:
        """Load the app's revisions."""
        self._load_revisions()

    @work(exclusive=True, group="history", exit_on_error=False, description="Loading revisions")
    async def _load_revisions(self) -> None:
        self.revisions = await self.ctx.engine.revisions(self.key[0], self.key[1])
        self._render_items()

    def show_snapshot(self, snapshot: FleetSnapshot) -> None:
        """Recorded syncs may have changed."""
        if self.revisions is not None:
            self._render_items()

    def _render_items(self) -> None:
        status = self.snapshot.app(*self.key) if self.snapshot else None
        entries = status.history if status else ()
        items = merge_history(self.revisions or (), entries)
        if items == self.items:
            return
        self.items = items
        current = status.revision.sha if status and status.revision else None
        options = self.query_one("#revisions", OptionList)
        highlighted = options.highlighted
        options.clear_options()
        width = max(20, options.scrollable_content_region.width or self.size.width - 2)
        options.add_options(
            Option(fit(item_prompt(i, current=current, now=self.now(), glyphs=self.ctx.glyphs), width,
                       self.ctx.glyphs.ellipsis), id=i.sha)
            for i in items
        )
        if items:
            options.highlighted = min(highlighted or 0, len(items) - 1)

    @property
    def selected_sha(self) -> str | None:
        """The SHA under the cursor."""
        index = self.query_one("#revisions", OptionList).highlighted
        return self.items[index].sha if index is not None and index < len(self.items) else None

    @on(OptionList.OptionSelected, "#revisions")
    def _selected(self) -> None:
        self.action_preview_revision()

    def action_preview_revision(self) -> None:
        """Diff the selected revision against live."""
        if (sha := self.selected_sha) is not None:
            self._preview(sha)

    @work(exclusive=True, group="preview", exit_on_error=False, description="Previewing revision")
    async def _preview(self, sha: str) -> None:
        self.query_one("#preview-title", Static).update(Text(f"previewing {sha[:8]}…", end=""))
        resources = await self.ctx.engine.preview(self.key[0], self.key[1], sha)
        self.previewed = sha
        rows = app_rows(resources, now=self.now())
        self.query_one("#preview", DiffView).show(rows, side_by_side=False)
        drifted = sum(1 for r in resources if r.managed and r.state.drifted)
        title = Text("rollback preview ", style="bold", end="")
        title.append_text(safe(sha[:8], "bold"))
        title.append(f": {drifted} resource(s) would change (- live, + that revision)")
        self.query_one("#preview-title", Static).update(title)

    def action_rollback(self) -> None:
        """Plan a rollback to the selected revision and confirm it."""
        if self.ctx.read_only or (sha := self.selected_sha) is None:
            return
        self._plan_rollback(sha)

    @work(exclusive=True, group="plan", exit_on_error=False, description="Planning rollback")
    async def _plan_rollback(self, sha: str) -> None:
        plan = await self.ctx.engine.plan_rollback(self.key[0], self.key[1], sha)
        title = f"Roll back {self.key[0]} on {self.key[1]} to {sha[:8]} (pins and pauses the app)"
        confirmed = await self.app.push_screen_wait(
            ConfirmSyncModal((plan,), glyphs=self.ctx.glyphs, title=title)
        )
        if confirmed:
            self.post_message(SyncRequested(tuple(confirmed)))
