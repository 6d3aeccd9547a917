"""HelpScreen: every key of the current screen and of the console, generated from the action registry.

Nothing is written by hand here: the lists come from ``tui.actions.ACTIONS``, so help can never drift
from the bindings. In read-only mode the mutating actions are absent, as they are from the bindings.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.actions import SCOPE_TITLES, actions_for, install_bindings
from tui.widgets.footer import KeysFooter

FILTER_HELP = (
    "Filter terms (all must match; -term negates): a word matches app, cluster or namespace; "
    "env=prod matches a cluster label; app:web, cluster:prod-eu; state words: synced outofsync unknown "
    "healthy progressing degraded missing suspended drifted paused pinned stale unreachable running error."
)


def help_table(scope: str, *, read_only: bool) -> Table:
    """A two-column key/description table for one scope."""
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True, style="bold")
    table.add_column()
    for action in actions_for(scope, read_only=read_only):
        table.add_row(Text(action.display_keys, end=""), Text(f"{action.title}: {action.help}", end=""))
    return table


class HelpScreen(ModalScreen[None]):
    """Keys of ``scope`` first, then the global ones and the dialogs'."""

    def __init__(self, scope: str, *, read_only: bool, notes: Sequence[str] = ()) -> None:
        super().__init__(classes="help-modal")
        install_bindings(self, "help", read_only=read_only)
        self.scope = scope
        self.read_only = read_only
        self.notes = tuple(notes)
        """What the screen cannot show at this size (hidden columns), first in the help."""

    def compose(self) -> ComposeResult:
        """One section per scope."""
        scopes = [self.scope, "global"] + ([] if self.read_only else ["confirm", "pause", "options"])
        parts: list[Text | Table] = []
        if self.read_only:
            parts.append(Text("Read-only audit mode: sync, rollback, pause and resume are not available.",
                              style="bold"))
        parts.extend(Text(note, style="bold") for note in self.notes)
        for scope in dict.fromkeys(scopes):
            parts.append(Text(f"\n{SCOPE_TITLES.get(scope, scope)}", style="bold underline"))
            parts.append(help_table(scope, read_only=self.read_only))
        if self.scope == "fleet":
            parts.append(Text("\n" + FILTER_HELP))
        with Vertical(id="dialog"):
            yield Static(Text("fleetdeck keys", style="bold", end=""), id="dialog-title")
            with VerticalScroll(id="help-body"):
                yield Static(Group(*parts), id="help-text")
        yield KeysFooter()

    def action_close(self) -> None:
        """Close help."""
        self.dismiss(None)
