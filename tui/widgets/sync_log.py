"""SyncLog: live progress of syncs and rollbacks, one block per operation, newest first.

The panel shows what the engine reported (``OperationState`` from ``engine.execute_plan``), per resource, with an
action glyph and word for each entry. It never infers the fleet's state from a result: rows clear only
when a new snapshot says so. Resource names and messages are untrusted and rendered through ``safe``.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from core.model import OperationState, SyncAction, SyncStatus
from tui.formatting import join_lines, safe
from tui.glyphs import UNICODE, Glyphs

MAX_OPERATIONS = 6
"""Operations kept in the panel; older ones are summarised by the notifications already shown."""

MAX_ENTRIES = 12
"""Per-resource lines shown for the newest operation."""


def operation_heading(state: OperationState, glyphs: Glyphs) -> Text:
    """``↻ sync web on prod-us @ a1b2c3d4: Running (2 created, 1 configured)``."""
    if state.phase.successful:
        mark = glyphs.sync[SyncStatus.SYNCED]
    elif state.phase.completed:
        mark = glyphs.action[SyncAction.FAILED]
    else:
        mark = glyphs.running
    text = Text(f"{mark} ", no_wrap=True, end="")
    text.append(f"{'dry-run ' if state.dry_run else ''}{state.kind} ")
    text.append_text(safe(state.app, "bold"))
    text.append(" on ")
    text.append_text(safe(state.cluster, "bold"))
    text.append(" @ ")
    text.append_text(safe(state.revision[:8]))
    text.append(f": {state.phase.value} ({state.summary})")
    if state.message:
        text.append(" ")
        text.append_text(safe(state.message, max_length=200))
    return text


def entry_line(state: OperationState, index: int, glyphs: Glyphs) -> Text:
    """One resource line of an operation: ``  + created Deployment/shop/web  message``."""
    entry = state.entries[index]
    text = Text(f"    {glyphs.action_label(entry.action):<15} ", no_wrap=True, end="")
    if entry.hook:
        text.append(f"{entry.phase.value} hook ", style="dim")
    text.append_text(safe(entry.key.short))
    if entry.message:
        text.append("  ")
        text.append_text(safe(entry.message, max_length=200))
    return text


class SyncLog(Static):
    """The sync log panel."""

    def __init__(self, *, glyphs: Glyphs = UNICODE, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.glyphs = glyphs
        self.operations: tuple[OperationState, ...] = ()

    def show(self, operations: Sequence[OperationState]) -> None:
        """Render ``operations`` (oldest first, as the app keeps them), newest on top."""
        self.operations = tuple(operations)[-MAX_OPERATIONS:]
        lines: list[Text] = [Text("Sync log", style="bold", end="")]
        if not self.operations:
            lines.append(Text("no operation since fleetdeck started", end=""))
        for position, state in enumerate(reversed(self.operations)):
            lines.append(operation_heading(state, self.glyphs))
            if position == 0:
                shown = state.entries[-MAX_ENTRIES:]
                hidden = len(state.entries) - len(shown)
                if hidden:
                    lines.append(Text(f"    {self.glyphs.fold} {hidden} earlier entries", end=""))
                offset = len(state.entries) - len(shown)
                lines.extend(entry_line(state, offset + i, self.glyphs) for i in range(len(shown)))
        self.update(join_lines(lines))
