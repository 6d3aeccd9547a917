"""ResourceTree: an app's resources as owner → owned, with per-resource sync, health and message.

Built on Textual's ``Tree`` with every label a ``Text`` (a ``str`` label would be parsed as markup) made
from sanitized names. A new snapshot updates labels in place; the tree is rebuilt only when the set of
resources or their parents changed, so the cursor and expansion survive updates. The widget reports
nothing new: the screen reads ``cursor_key`` and pushes marks down.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from core.model import HealthStatus, ResourceKey, ResourceState, ResourceStatus
from tui.formatting import safe
from tui.glyphs import UNICODE, Glyphs

_STATE_STYLE = {
    ResourceState.OUT_OF_SYNC: "bold",
    ResourceState.MISSING: "bold",
    ResourceState.EXTRANEOUS: "bold",
    ResourceState.INVALID: "bold",
    ResourceState.UNKNOWN: "italic",
}


def resource_label(status: ResourceStatus, *, marked: bool, glyphs: Glyphs) -> Text:
    """``● Deployment/shop/web  ✗ OutOfSync  ♥ Healthy  2 changes  message``."""
    text = Text(f"{glyphs.marked if marked else ' '} ", no_wrap=True, end="")
    text.append_text(safe(status.key.short, "" if status.managed else "dim"))
    text.append("  ")
    text.append(glyphs.resource_label(status.state), style=_STATE_STYLE.get(status.state, ""))
    if status.health is not None:
        text.append("  " + glyphs.health_label(status.health.status),
                    style="bold" if status.health.status is HealthStatus.DEGRADED else "")
    if status.diff.changes:
        count = len(status.diff.changes)
        text.append(f"  {count} change{'s' if count != 1 else ''}")
    if status.diff.approximate:
        text.append(f" {glyphs.approximate}")
    if status.wave:
        text.append(f"  wave {status.wave}", style="dim")
    if not status.managed:
        text.append("  (not applied by fleetdeck)", style="dim")
    message = (status.health.message if status.health else "") or status.diff.message
    if message:
        text.append("  ")
        text.append_text(safe(message, "dim", max_length=300))
    return text


def health_detail(status: ResourceStatus, *, glyphs: Glyphs) -> Text | None:
    """``♥ Degraded (built-in: Rollout (argoproj.io))``: one resource's health and the rule that judged it.

    None for a resource without a health verdict; the source is left out when nothing names one.
    """
    if status.health is None:
        return None
    text = Text(glyphs.health_label(status.health.status), no_wrap=True, end="",
                style="bold" if status.health.status is HealthStatus.DEGRADED else "")
    if status.health.source:
        text.append(" (")
        text.append_text(safe(status.health.source, "dim", max_length=120))
        text.append(")")
    return text


class ResourceTree(Tree[ResourceKey], inherit_bindings=False):
    """The resource tree of one app on one cluster."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "scroll_end", "Bottom", show=False),
        Binding("left,right", "toggle_node", "Fold", show=False),
    ]

    def __init__(self, *, glyphs: Glyphs = UNICODE, id: str | None = None) -> None:
        super().__init__(Text("resources", end=""), id=id)
        self.glyphs = glyphs
        self.show_root = False
        self.guide_depth = 3
        self.auto_expand = False
        self._structure: tuple[tuple[ResourceKey, ResourceKey | None], ...] = ()
        self._resource_nodes: dict[ResourceKey, TreeNode[ResourceKey]] = {}
        self._statuses: dict[ResourceKey, ResourceStatus] = {}
        self.marked: frozenset[ResourceKey] = frozenset()
        self._shown_marks: frozenset[ResourceKey] = frozenset()

    @property
    def cursor_key(self) -> ResourceKey | None:
        """The resource under the cursor."""
        node = self.cursor_node
        return node.data if node is not None else None

    @property
    def cursor_status(self) -> ResourceStatus | None:
        """The status of the resource under the cursor."""
        key = self.cursor_key
        return self._statuses.get(key) if key is not None else None

    def show(self, resources: Sequence[ResourceStatus], marked: frozenset[ResourceKey]) -> None:
        """Display ``resources``; rebuild only when the tree's shape changed."""
        keys = {r.key for r in resources}
        structure = tuple((r.key, r.parent if r.parent in keys else None) for r in resources)
        previous = dict(self._statuses)
        self._statuses = {r.key: r for r in resources}
        self.marked = marked
        if structure != self._structure:
            self._rebuild(resources, structure)
            return
        for status in resources:
            if previous.get(status.key) is not status or status.key in marked ^ self._shown_marks:
                self._resource_nodes[status.key].set_label(self._label(status))
        self._shown_marks = marked

    def _label(self, status: ResourceStatus) -> Text:
        return resource_label(status, marked=status.key in self.marked, glyphs=self.glyphs)

    def _rebuild(
        self,
        resources: Sequence[ResourceStatus],
        structure: tuple[tuple[ResourceKey, ResourceKey | None], ...],
    ) -> None:
        cursor = self.cursor_key
        self.clear()
        self._resource_nodes = {}
        parents = dict(structure)
        pending = list(resources)
        while pending:
            remaining = []
            for status in pending:
                parent_key = parents[status.key]
                if parent_key is not None and parent_key not in self._resource_nodes:
                    remaining.append(status)
                    continue
                parent = self.root if parent_key is None else self._resource_nodes[parent_key]
                self._resource_nodes[status.key] = parent.add(self._label(status), data=status.key, expand=True)
            if len(remaining) == len(pending):
                for status in remaining:
                    self._resource_nodes[status.key] = self.root.add(self._label(status), data=status.key, expand=True)
                break
            pending = remaining
        for node in self._resource_nodes.values():
            if not node.children:
                node.allow_expand = False
        self._structure = structure
        self._shown_marks = self.marked
        target = self._resource_nodes.get(cursor) if cursor is not None else None
        if target is None and self._resource_nodes:
            target = next(iter(self._resource_nodes.values()))
        if target is not None:
            # Line numbers exist only once the tree has laid out its lines.
            self.call_after_refresh(self.move_cursor, target)
