"""ErrorModal: an engine error (``FleetdeckError`` title, message, hint) or an unexpected one, shown.

Messages may quote cluster or Git text, so they are rendered through ``safe_block``. The dialog only
displays; closing it changes nothing.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from core.errors import FleetdeckError
from tui.actions import install_bindings
from tui.formatting import safe, safe_block
from tui.widgets.footer import KeysFooter


def describe_error(error: BaseException) -> tuple[str, str, str]:
    """(title, message, hint) for any exception; typed errors keep their own words."""
    if isinstance(error, FleetdeckError):
        return error.title, error.message, error.hint
    return "Unexpected error", f"{type(error).__name__}: {error}", "this is a bug in fleetdeck; please report it"


class ErrorModal(ModalScreen[None]):
    """Title, what failed, and what to do about it."""

    def __init__(self, title: str, message: str, hint: str = "", *, context: str = "") -> None:
        super().__init__(classes="error-modal")
        install_bindings(self, "error", read_only=False)
        self.title_text = title
        self.message = message
        self.hint = hint
        self.context = context

    @classmethod
    def from_exception(cls, error: BaseException, *, context: str = "") -> ErrorModal:
        """An error dialog for ``error``; ``context`` says what the console was doing."""
        title, message, hint = describe_error(error)
        return cls(title, message, hint, context=context)

    def compose(self) -> ComposeResult:
        """Title, context, message, hint."""
        with Vertical(id="dialog"):
            yield Static(safe(f"Error: {self.title_text}", "bold"), id="dialog-title")
            if self.context:
                yield Static(safe(self.context), id="error-context")
            with VerticalScroll(id="error-body"):
                yield Static(safe_block(self.message), id="error-message")
            if self.hint:
                hint = Text("What to do: ", style="bold", end="")
                hint.append_text(safe_block(self.hint))
                yield Static(hint, id="error-hint")
            yield Static(Text("esc close", end=""), id="options")
        yield KeysFooter()

    def action_close(self) -> None:
        """Close the dialog."""
        self.dismiss(None)
