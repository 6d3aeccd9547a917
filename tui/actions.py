"""The action registry: one table that drives key bindings, the footer, the help screen and the palette.

Each ``Action`` names its scope (the screen it belongs to), its keys, the ``action_<name>`` method it
runs, a ``"group: verb"`` title and whether it changes the fleet. In read-only audit mode the mutating
actions are not registered at all: ``install_bindings`` leaves them out of the node's bindings, the help
screen and the palette never list them. Nothing here performs an action; it only describes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from textual.binding import Binding
from textual.dom import DOMNode


@dataclass(frozen=True, slots=True)
class Action:
    """One operator action."""

    id: str
    """Stable id (``fleet.sync``), also the ``Binding.id`` so keys can be remapped."""
    scope: str
    """``global``, ``fleet``, ``app``, ``diff``, ``history``, ``confirm`` or ``pause``."""
    keys: str
    """Comma-separated Textual key names."""
    action: str
    """The action string run on the scope's node (``sync_selected`` runs ``action_sync_selected``)."""
    title: str
    """``"group: verb"``, as shown in the palette and the help screen."""
    label: str
    """Short footer label."""
    help: str
    """One sentence for the help screen and the palette."""
    mutating: bool = False
    """Changes the fleet (sync, rollback, pause, resume): absent in read-only mode."""
    show: bool = True
    """Shown in the footer."""
    key_display: str | None = None
    palette: bool = True
    """Offered by the command palette."""

    @property
    def binding(self) -> Binding:
        """The Textual binding for this action."""
        return Binding(
            self.keys,
            self.action,
            self.label,
            show=self.show,
            key_display=self.key_display,
            id=self.id,
            tooltip=self.help,
        )

    @property
    def display_keys(self) -> str:
        """Keys as the help screen shows them."""
        return self.key_display or " / ".join(k.strip() for k in self.keys.split(","))


def _a(scope: str, name: str, keys: str, action: str, title: str, label: str, help: str, **kw: object) -> Action:
    return Action(f"{scope}.{name}", scope, keys, action, title, label, help, **kw)  # type: ignore[arg-type]


_GLOBAL = (
    _a("global", "help", "question_mark,f1", "app.show_help", "help: show keys", "Help",
       "List every key of this screen and of the console.", key_display="?"),
    _a("global", "palette", "colon", "app.command_palette", "palette: open", "Commands",
       "Search every action by name.", key_display=":", show=False, palette=False),
    _a("global", "quit", "q", "app.quit", "console: quit", "Quit", "Leave fleetdeck (operations keep running "
       "in the engine only while it runs).", palette=True),
    _a("global", "refresh_fleet", "ctrl+r", "app.refresh_fleet", "refresh: whole fleet", "Refresh all",
       "Fetch Git now and recompute every app.", show=False),
)

_FLEET = (
    _a("fleet", "open", "enter", "open_app", "app: open", "Open", "Open the app under the cursor: resources, "
       "conditions, control state.", key_display="enter"),
    _a("fleet", "sync", "s", "sync_selected", "sync: selected rows", "Sync", "Plan a sync of the marked rows "
       "(or the row under the cursor) and confirm it.", mutating=True),
    _a("fleet", "pause", "p", "pause_selected", "pause: selected rows", "Pause", "Stop automated sync, with a "
       "reason and an optional expiry.", mutating=True),
    _a("fleet", "diff", "d", "open_diff", "diff: whole app", "Diff", "Desired against live for the app under the "
       "cursor."),
    _a("fleet", "filter", "slash", "focus_filter", "view: filter", "Filter", "Filter by name, cluster, "
       "label (env=prod) or state (outofsync, degraded, paused...).", key_display="/"),
    _a("fleet", "mark", "space", "toggle_mark", "select: toggle mark", "Mark", "Mark the row for a bulk sync "
       "or pause.", key_display="space"),
    _a("fleet", "history", "h", "open_history", "history: open", "History", "Git revisions and recorded syncs; "
       "preview a rollback."),
    _a("fleet", "matrix", "m", "toggle_matrix", "view: toggle matrix", "Matrix", "Apps × clusters: which "
       "revision runs where."),
    _a("fleet", "sort", "o", "cycle_sort", "view: cycle sort", "Sort", "Sort by name, cluster, sync, health.",
       show=False),
    _a("fleet", "group", "g", "cycle_group", "view: cycle grouping", "Group", "Group by cluster, by env "
       "label, or not at all."),
    _a("fleet", "clear_filter", "escape", "clear_filter", "view: clear filter", "Clear", "Clear the filter.",
       show=False),
    _a("fleet", "reverse", "O", "reverse_sort", "view: reverse sort", "Reverse", "Reverse the order.",
       show=False),
    _a("fleet", "log", "l", "toggle_log", "view: toggle sync log", "Log", "Show or hide the live sync log.",
       show=False),
    _a("fleet", "mark_all", "a", "mark_all", "select: mark all shown", "Mark all", "Mark every row the filter "
       "shows.", show=False),
    _a("fleet", "unmark", "A", "clear_marks", "select: clear marks", "Unmark", "Clear every mark.", show=False),
    _a("fleet", "refresh", "r", "refresh_selected", "refresh: selected rows", "Refresh", "Fetch Git and "
       "recompute the marked rows (or the row under the cursor).", show=False),
    _a("fleet", "resume", "u", "resume_selected", "resume: selected rows", "Resume", "Resume automated sync "
       "and clear a rollback pin.", mutating=True, show=False),
)

_APP = (
    _a("app", "back", "escape", "back", "app: back", "Back", "Return to the fleet."),
    _a("app", "diff", "enter,d", "diff_resource", "diff: resource", "Diff", "Desired against live for the "
       "resource under the cursor.", key_display="enter"),
    _a("app", "sync", "s", "sync_app", "sync: app or marked resources", "Sync", "Plan a sync of the app (only "
       "the marked resources if any) and confirm it.", mutating=True),
    _a("app", "pause", "p", "pause_app", "pause: this app", "Pause", "Stop automated sync of this app.",
       mutating=True),
    _a("app", "mark", "space", "toggle_mark", "select: toggle resource", "Mark", "Mark the resource for a "
       "selective sync.", key_display="space"),
    _a("app", "diff_all", "D", "diff_app", "diff: whole app", "Diff all", "Desired against live for every "
       "resource of the app."),
    _a("app", "history", "h", "open_history", "history: open", "History", "Git revisions and recorded "
       "syncs; preview a rollback."),
    _a("app", "events", "e", "toggle_events", "view: toggle events", "Events", "Show or hide the Kubernetes "
       "Events of the app's objects and of the pods they own (Warnings first)."),
    _a("app", "refresh", "r", "refresh_app", "refresh: this app", "Refresh", "Fetch Git and recompute this "
       "app.", show=False),
    _a("app", "log", "l", "toggle_log", "view: toggle sync log", "Log", "Show or hide the live sync log.",
       show=False),
    _a("app", "resume", "u", "resume_app", "resume: this app", "Resume", "Resume automated sync and clear a "
       "rollback pin.", mutating=True, show=False),
)

_DIFF = (
    _a("diff", "back", "escape", "back", "diff: back", "Back", "Return to the previous screen."),
    _a("diff", "layout", "v", "toggle_layout", "diff: toggle side by side", "Side by side", "Unified or "
       "side by side (side by side needs 140 columns)."),
    _a("diff", "fold", "c", "toggle_fold", "diff: toggle folding", "Context", "Fold unchanged lines or show "
       "whole objects."),
    _a("diff", "next", "n", "next_change", "diff: next change", "Next", "Jump to the next change."),
    _a("diff", "previous", "N", "previous_change", "diff: previous change", "Prev", "Jump to the previous "
       "change.", show=False),
    _a("diff", "external", "o", "open_external", "diff: open in $FLEETDECK_DIFF", "External", "Write both "
       "sides to temporary files and open them in $FLEETDECK_DIFF (delta, vimdiff...)."),
)

_HISTORY = (
    _a("history", "back", "escape", "back", "history: back", "Back", "Return to the previous screen."),
    _a("history", "preview", "enter", "preview_revision", "history: preview revision", "Preview", "Diff the "
       "selected revision against live: what a rollback would change."),
    _a("history", "rollback", "R", "rollback", "rollback: to selected revision", "Roll back", "Plan a rollback "
       "to the selected revision and confirm it (pins and pauses the app).", mutating=True),
)

_CONFIRM = (
    _a("confirm", "confirm", "y,ctrl+s", "confirm", "confirm: run", "Run", "Run what the dialog describes.",
       mutating=True, palette=False, key_display="y"),
    _a("confirm", "cancel", "n,escape", "cancel", "confirm: cancel", "Cancel", "Close the dialog; nothing "
       "runs.", palette=False, key_display="n/esc"),
    _a("confirm", "dry_run", "d", "toggle_dry_run", "confirm: toggle dry run", "Dry run", "Re-plan as a dry "
       "run (nothing is written).", mutating=True, palette=False),
    _a("confirm", "prune", "p", "toggle_prune", "confirm: toggle prune", "Prune", "Re-plan with or without "
       "pruning extraneous resources.", mutating=True, palette=False),
    _a("confirm", "acknowledge", "a", "acknowledge", "confirm: acknowledge replaced history", "Acknowledge",
       "Shown when a revision does not descend from the one synced (force-push), or when the sync takes fields "
       "over from another field manager: acknowledge it, or take the acknowledgement back; y runs such a sync "
       "only when acknowledged.", mutating=True, palette=False),
    _a("confirm", "paused", "i", "toggle_paused", "confirm: include paused rows", "Paused", "Include the paused "
       "rows in a bulk sync, or leave them out (the default).", mutating=True, palette=False),
    _a("confirm", "controller_dry_run", "c", "toggle_controller_dry_run", "confirm: Argo CD's own dry run",
       "Argo dry run", "Shown when an Argo CD-owned app is in the sync: re-plan so that Argo CD runs the sync as "
       "its own dry run (operation.sync.dryRun; the operation is written, nothing is applied).", mutating=True,
       palette=False),
    _a("confirm", "sync_options", "o", "edit_sync_options", "confirm: Argo CD sync options", "Sync options",
       "Shown when an Argo CD-owned app is in the sync: type Argo CD sync options (e.g. CreateNamespace=true), "
       "checked against Argo CD's documented set, and re-plan with them.", mutating=True, palette=False),
)

_DIALOGS = (
    _a("pause", "cancel", "escape", "cancel", "pause: cancel", "Cancel", "Close the pause dialog; nothing is "
       "paused.", palette=False, key_display="esc"),
    _a("options", "cancel", "escape", "cancel", "sync options: cancel", "Cancel", "Close the sync options "
       "dialog; the options stay as they were.", palette=False, key_display="esc"),
    _a("error", "close", "escape,enter,q", "close", "error: close", "Close", "Close the error dialog.",
       palette=False, key_display="esc"),
    _a("help", "close", "escape,q,question_mark", "close", "help: close", "Close", "Close the help screen.",
       palette=False, key_display="esc"),
)

ACTIONS: dict[str, Action] = {
    action.id: action for action in (*_GLOBAL, *_FLEET, *_APP, *_DIFF, *_HISTORY, *_CONFIRM, *_DIALOGS)
}
"""Every action of the console, by id."""

SCOPE_TITLES = {
    "global": "Everywhere",
    "fleet": "Fleet",
    "app": "App",
    "diff": "Diff",
    "history": "History",
    "confirm": "Confirmation dialogs",
    "pause": "Pause dialog",
    "options": "Sync options dialog",
}


def actions_for(scope: str, *, read_only: bool) -> Iterator[Action]:
    """The actions of ``scope`` that exist in this mode, in registry order."""
    for action in ACTIONS.values():
        if action.scope == scope and not (read_only and action.mutating):
            yield action


def bindings_for(scope: str, *, read_only: bool) -> list[Binding]:
    """Bindings of ``scope``; in read-only mode the mutating actions have none."""
    return [action.binding for action in actions_for(scope, read_only=read_only)]


def install_bindings(node: DOMNode, scope: str, *, read_only: bool) -> None:
    """Add the registry's bindings for ``scope`` to ``node``, per instance.

    Bindings are per instance (not the class's ``BINDINGS``) because read-only mode must not register
    the mutating ones at all; Textual's own command-palette binding is added the same way.

    Args:
        node: the screen or app receiving the bindings.
        scope: the registry scope.
        read_only: leave out mutating actions.

    Textual 8 has no public per-instance binding API (``App.bind`` is app-only, flagged as possibly
    private, and drops ``id`` and ``tooltip``): see ``docs/decisions.md``. This is the only private call;
    ``tests/tui/test_units.py`` fails if a Textual upgrade changes it.
    """
    for binding in Binding.make_bindings(bindings_for(scope, read_only=read_only)):
        node._bindings._add_binding(binding)
