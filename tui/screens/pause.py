"""PauseModal: ask why (required) and for how long (optional) before pausing automated sync.

Returns a ``PauseRequest`` or ``None``; the caller posts ``PauseRequested``. The dialog lists every
target (app on cluster) so the operator sees where the pause lands. No I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tui.actions import install_bindings
from tui.fleet_query import RowKey
from tui.formatting import parse_duration, safe
from tui.glyphs import UNICODE, Glyphs
from tui.widgets.footer import KeysFooter


@dataclass(frozen=True, slots=True)
class PauseRequest:
    """What the operator typed."""

    reason: str
    expires_in: float | None


def targets_text(targets: Sequence[RowKey], glyphs: Glyphs, *, limit: int = 8) -> Text:
    """``· web on prod-us`` lines, at most ``limit`` of them."""
    text = Text(end="")
    for index, (app, cluster) in enumerate(targets[:limit]):
        if index:
            text.append("\n")
        text.append(f"{glyphs.dot} ")
        text.append_text(safe(app, "bold"))
        text.append(" on cluster ")
        text.append_text(safe(cluster, "bold"))
    if len(targets) > limit:
        text.append(f"\n{glyphs.fold} and {len(targets) - limit} more")
    return text


class PauseModal(ModalScreen[PauseRequest | None]):
    """Reason and expiry for a pause."""

    SCOPE = "pause"

    def __init__(self, targets: Sequence[RowKey], *, glyphs: Glyphs = UNICODE, cursor_blink: bool = True) -> None:
        super().__init__(classes="confirm-modal")
        install_bindings(self, "pause", read_only=False)
        self.targets = tuple(targets)
        self.glyphs = glyphs
        self.cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        """Targets, the two inputs, a line for validation errors."""
        with Vertical(id="dialog"):
            yield Static(Text(f"Pause automated sync of {len(self.targets)} row(s)", style="bold", end=""),
                         id="dialog-title")
            yield Static(targets_text(self.targets, self.glyphs), id="targets")
            yield Static(Text("Watching and diffing continue; manual sync still works.", end=""))
            for box in (
                Input(placeholder="reason (required), e.g. incident 4711", id="reason"),
                Input(placeholder="expires in (optional): 30m, 2h, 1d", id="expires"),
            ):
                box.cursor_blink = self.cursor_blink
                yield box
            yield Static("", id="pause-error")
            yield Static(Text("enter pause, esc cancel", end=""), id="options")
        yield KeysFooter()

    @on(Input.Submitted, "#reason")
    def _reason_done(self) -> None:
        self.query_one("#expires", Input).focus()

    @on(Input.Submitted, "#expires")
    def _submit(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        error = self.query_one("#pause-error", Static)
        if not reason:
            error.update(Text("A reason is required: it is stored with the pause for other operators.", end=""))
            self.query_one("#reason", Input).focus()
            return
        try:
            expires_in = parse_duration(self.query_one("#expires", Input).value)
        except ValueError as exc:
            error.update(safe(str(exc)))
            return
        self.dismiss(PauseRequest(reason=reason, expires_in=expires_in))

    def action_cancel(self) -> None:
        """Close; nothing is paused."""
        self.dismiss(None)
