"""FleetdeckCommands: the command palette (``:`` and ctrl+p), built from the action registry.

``discover`` lists the current screen's actions and the global ones; ``search`` fuzzy-matches their
``"group: verb"`` titles and, on the fleet screen, ``open: <app> on <cluster>`` for every row. Read-only
mode leaves the mutating actions out, exactly as the bindings do. Commands run the same action methods
the keys run; nothing here calls the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from textual.command import CommandList, CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape

from core.model import FleetSnapshot
from core.sanitize import clean
from tui.actions import Action, actions_for

MAX_ROW_HITS = 50
"""``open:`` hits offered per search; the palette is for jumping, the filter is for browsing."""


def _help(action: Action) -> str:
    """Palette help text; the palette parses it as markup, so it is escaped."""
    return escape(f"key {action.display_keys}: {action.help}")


class FleetdeckCommands(Provider):
    """Palette hits from ``tui.actions.ACTIONS`` and the fleet's rows."""

    def _read_only(self) -> bool:
        return bool(getattr(self.app, "read_only", True))

    def _actions(self) -> Iterator[Action]:
        scope = getattr(self.screen, "SCOPE", "")
        read_only = self._read_only()
        for action in (*actions_for(scope, read_only=read_only), *actions_for("global", read_only=read_only)):
            if action.palette:
                yield action

    def _command(self, action: Action) -> partial[Any]:
        return partial(self.screen.run_action, action.action)

    async def discover(self) -> Hits:
        """Every action available on this screen."""
        for action in self._actions():
            yield DiscoveryHit(action.title, self._command(action), help=_help(action))

    async def search(self, query: str) -> Hits:
        """Actions whose title matches, then rows to open (fleet screen only)."""
        matcher = self.matcher(query)
        for action in self._actions():
            score = matcher.match(action.title)
            if score > 0:
                yield Hit(score, matcher.highlight(action.title), self._command(action),
                          text=action.title, help=_help(action))
        async for hit in self._row_hits(matcher):
            yield hit

    async def _row_hits(self, matcher: Any) -> Hits:
        open_row = getattr(self.screen, "open_row", None)
        snapshot: Any = getattr(self.app, "snapshot", None)
        if open_row is None or not isinstance(snapshot, FleetSnapshot):
            return
        found = 0
        for status in snapshot.apps:
            title = f"open: {clean(status.app, max_length=80)} on {clean(status.cluster, max_length=80)}"
            score = matcher.match(title)
            if score > 0:
                # Names are untrusted: plain Content, never ``matcher.highlight`` (which parses markup).
                yield Hit(score * 0.9, Content(title), partial(open_row, status.id), text=title)
                found += 1
                if found >= MAX_ROW_HITS:
                    return


class ConsolePalette(CommandPalette):
    """Textual's command palette, with page keys ignored while the hit list has no size yet.

    Hits that have just arrived are not laid out until the next refresh; Textual 8.2.8's
    ``OptionList._move_page`` then raised ``KeyError`` on PageDown/PageUp and the console exited.
    """

    def _action_command_list(self, action: str) -> None:
        if action in ("page_up", "page_down"):
            found = self.query(CommandList)
            if not found or not found.first().scrollable_content_region:
                return
        super()._action_command_list(action)
