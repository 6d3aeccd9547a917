"""SyncOptionsModal: type Argo CD sync options for the Argo CD-owned apps of a sync.

The options are checked against Argo CD's documented Application sync options (``core.controller_options``,
the same check as ``fleetdeck sync --sync-option``): a misspelt option is refused here with the spelling
Argo CD expects, never written (Argo CD would silently ignore it). Returns the options, or ``None`` when
cancelled. No I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from core.controller_options import check_sync_options
from tui.actions import install_bindings
from tui.formatting import safe
from tui.widgets.footer import KeysFooter


def parse_options(text: str) -> tuple[str, ...]:
    """``CreateNamespace=true, PruneLast=true`` → the checked options (commas or spaces between them).

    Raises:
        ValueError: an option Argo CD does not document, with the expected spelling.
    """
    return tuple(check_sync_options([part for part in text.replace(",", " ").split() if part]))


class SyncOptionsModal(ModalScreen[tuple[str, ...] | None]):
    """One input for the options; enter checks and returns them, esc keeps the old ones."""

    SCOPE = "options"

    def __init__(self, current: Sequence[str], *, cursor_blink: bool = True) -> None:
        super().__init__(classes="confirm-modal")
        install_bindings(self, "options", read_only=False)
        self.current = tuple(current)
        self.cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        """Title, what the options do, the input, a line for validation errors."""
        with Vertical(id="dialog"):
            yield Static(Text("Argo CD sync options", style="bold", end=""), id="dialog-title")
            yield Static(Text("Written to operation.sync.syncOptions of each Argo CD-owned app in this sync; "
                              "empty for none.", end=""))
            box = Input(value=" ".join(self.current), placeholder="e.g. CreateNamespace=true PruneLast=true",
                        id="sync-options")
            box.cursor_blink = self.cursor_blink
            yield box
            yield Static("", id="options-error")
            yield Static(Text("enter re-plan with these options, esc cancel", end=""), id="options")
        yield KeysFooter()

    @on(Input.Submitted, "#sync-options")
    def _submit(self) -> None:
        try:
            options = parse_options(self.query_one("#sync-options", Input).value)
        except ValueError as exc:
            self.query_one("#options-error", Static).update(safe(str(exc)))
            return
        self.dismiss(options)

    def action_cancel(self) -> None:
        """Close; the options stay as they were."""
        self.dismiss(None)
