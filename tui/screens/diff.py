"""DiffScreen: desired against live for one resource or a whole app, unified or side by side.

Rows come from ``tui.diff_model`` (sanitized, masked by the core, unchanged runs folded, drifted fields
annotated with their last writer). Side by side needs 140 columns. ``o`` writes both sides to temporary
files and runs ``$FLEETDECK_DIFF`` on them with the app suspended. The screen follows new snapshots
(or shows a fixed rollback preview) and never calls the engine.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.text import Text
from textual import events
from textual.app import ComposeResult, SuspendNotSupported
from textual.reactive import var
from textual.widgets import Static

from core.model import FleetSnapshot, ResourceKey, ResourceStatus
from core.sanitize import clean
from tui.context import ConsoleContext
from tui.diff_model import DiffRow, app_rows, resource_rows, yaml_text
from tui.fleet_query import RowKey
from tui.formatting import safe
from tui.screens.base import ConsoleScreen, row_title
from tui.widgets.diff_view import SIDE_BY_SIDE_MIN_WIDTH, DiffView
from tui.widgets.footer import KeysFooter
from tui.widgets.resource_tree import health_detail

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9_.-]+")


def diff_sides(resources: Sequence[ResourceStatus]) -> tuple[str, str]:
    """(live, desired) YAML of the resources, as multi-document streams."""
    live = [f"# {clean(r.key)}\n{yaml_text(r.diff.live)}" for r in resources]
    desired = [f"# {clean(r.key)}\n{yaml_text(r.diff.desired)}" for r in resources]
    return "---\n".join(live), "---\n".join(desired)


def write_sides(directory: Path, label: str, live: str, desired: str) -> tuple[Path, Path]:
    """Write both sides to ``directory``; file names are derived from ``label`` but made safe."""
    stem = _UNSAFE_FILENAME.sub("_", label)[:80] or "diff"
    live_path = directory / f"{stem}.live.yaml"
    desired_path = directory / f"{stem}.desired.yaml"
    live_path.write_text(live, encoding="utf-8")
    desired_path.write_text(desired, encoding="utf-8")
    return live_path, desired_path


class DiffScreen(ConsoleScreen):
    """The diff of an app (or one of its resources) on one cluster."""

    SCOPE = "diff"
    AUTO_FOCUS = "#diff"

    side_by_side: var[bool] = var(False)
    fold: var[bool] = var(True)
    """Fold unchanged runs beyond the context lines."""

    def __init__(
        self,
        ctx: ConsoleContext,
        key: RowKey,
        *,
        resource: ResourceKey | None = None,
        preview: Sequence[ResourceStatus] | None = None,
        label: str = "",
    ) -> None:
        super().__init__(ctx)
        self.key = key
        self.resource = resource
        self.preview = tuple(preview) if preview is not None else None
        self.label = label
        self.resources: tuple[ResourceStatus, ...] = ()

    def compose(self) -> ComposeResult:
        """Title, the diff, status line, footer."""
        yield Static("", id="diff-title")
        yield DiffView(glyphs=self.ctx.glyphs, id="diff")
        yield Static("", id="status-line")
        yield KeysFooter()

    def on_mount(self) -> None:
        """A preview is fixed: render it now."""
        if self.preview is not None:
            self._set_resources(self.preview)

    def show_snapshot(self, snapshot: FleetSnapshot) -> None:
        """Follow the live diff (not for a fixed preview)."""
        if self.preview is not None:
            return
        status = snapshot.app(*self.key)
        self._set_resources(status.resources if status else ())

    def _set_resources(self, resources: Sequence[ResourceStatus]) -> None:
        if self.resource is not None:
            resources = [r for r in resources if r.key == self.resource]
        resources = tuple(resources)
        unchanged = len(resources) == len(self.resources) and all(
            a is b for a, b in zip(resources, self.resources, strict=True)
        )
        if unchanged and self.resources:
            return
        self.resources = resources
        self._render_diff()

    def _rows(self) -> list[DiffRow]:
        now = self.now()
        if self.resource is not None and self.resources:
            return resource_rows(self.resources[0], now=now, fold=self.fold, side_by_side=self.side_by_side)
        return app_rows(self.resources, now=now, fold=self.fold, side_by_side=self.side_by_side)

    def _render_diff(self) -> None:
        self.query_one(DiffView).show(self._rows(), side_by_side=self.side_by_side)
        self.query_one("#diff-title", Static).update(self._title())
        self._refresh_status()

    def _title(self) -> Text:
        title = Text("diff ", style="bold", end="")
        title.append_text(row_title(self.key))
        if self.label:
            title.append(f" {self.ctx.glyphs.dot} ")
            title.append_text(safe(self.label, "bold"))
        if self.resource is not None:
            title.append(f" {self.ctx.glyphs.dot} ")
            title.append_text(safe(self.resource.short))
            health = health_detail(self.resources[0], glyphs=self.ctx.glyphs) if self.resources else None
            if health is not None:
                title.append(f" {self.ctx.glyphs.dot} ")
                title.append_text(health)
        title.append(f" {self.ctx.glyphs.dot} - live (cluster)  + desired (Git)")
        return title

    def _refresh_status(self) -> None:
        g = self.ctx.glyphs
        view = self.query_one(DiffView)
        text = Text(f"{'side by side' if self.side_by_side else 'unified'} {g.dot} ", no_wrap=True, end="")
        text.append(f"{'folded' if self.fold else 'full'} {g.dot} {len(view.change_starts)} change blocks")
        text.append(f" {g.dot} n next {g.dot} v layout {g.dot} c context {g.dot} o external {g.dot} esc back")
        self.query_one("#status-line", Static).update(text)

    def watch_side_by_side(self) -> None:
        """Layout changed."""
        self._render_diff()

    def watch_fold(self) -> None:
        """Folding changed."""
        self._render_diff()

    def on_resize(self, event: events.Resize) -> None:
        """Too narrow for side by side: fall back to unified."""
        if self.side_by_side and event.size.width < SIDE_BY_SIDE_MIN_WIDTH:
            self.side_by_side = False
            self.notify("side by side needs 140 columns: showing unified", timeout=3, markup=False)

    def action_toggle_layout(self) -> None:
        """Unified or side by side."""
        if not self.side_by_side and self.size.width < SIDE_BY_SIDE_MIN_WIDTH:
            self.notify(f"side by side needs {SIDE_BY_SIDE_MIN_WIDTH} columns (this terminal has "
                        f"{self.size.width})", severity="warning", timeout=4, markup=False)
            return
        self.side_by_side = not self.side_by_side

    def action_toggle_fold(self) -> None:
        """Fold unchanged lines, or show whole objects."""
        self.fold = not self.fold

    def action_next_change(self) -> None:
        """Scroll to the next change."""
        if not self.query_one(DiffView).next_change(1):
            self.notify("no further change", timeout=2, markup=False)

    def action_previous_change(self) -> None:
        """Scroll to the previous change."""
        if not self.query_one(DiffView).next_change(-1):
            self.notify("no earlier change", timeout=2, markup=False)

    def action_open_external(self) -> None:
        """Open both sides in ``$FLEETDECK_DIFF`` (the app is suspended while it runs)."""
        command = self.ctx.diff_command
        if not command:
            self.notify("set $FLEETDECK_DIFF (e.g. delta, vimdiff, 'diff -u') to open diffs externally",
                        severity="warning", timeout=5, markup=False)
            return
        shown = [r for r in self.resources if self.resource is not None or r.diff.state.drifted]
        live, desired = diff_sides(shown or self.resources)
        label = f"{self.key[0]}-{self.key[1]}" + (f"-{self.resource.kind}-{self.resource.name}" if self.resource else "")
        with tempfile.TemporaryDirectory(prefix="fleetdeck-diff-") as directory:
            paths = write_sides(Path(directory), label, live, desired)
            self._run_external([*shlex.split(command), *map(str, paths)])

    def _run_external(self, argv: list[str]) -> None:
        try:
            with self.app.suspend():
                result = subprocess.run(argv, check=False)
        except SuspendNotSupported:
            self.notify("this terminal cannot be suspended: external diff unavailable", severity="warning", markup=False)
            return
        except OSError as error:
            self.notify(f"cannot run {clean(argv[0])}: {clean(error)}", severity="error", markup=False)
            return
        if result.returncode not in (0, 1):
            self.notify(f"{clean(argv[0])} exited with status {result.returncode}", severity="warning", markup=False)
