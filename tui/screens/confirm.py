"""Confirmation dialogs: the sync/rollback plan preview, and a plain yes/no question.

``ConfirmSyncModal`` states exactly what will happen on which cluster (created, changed, pruned,
skipped, blocked) and returns the plans to run, or ``None``. A plan whose revision does not descend from
the one synced (a force-push) is shown with a HISTORY REPLACED warning, and ``y`` runs nothing until the
operator acknowledged it with ``a`` (the returned plans then carry ``non_descendant_allowed``). A plan that
takes fields over from another field manager says "takes over N fields from MANAGER", lists them, and
likewise needs ``a`` (then ``takeovers_allowed``). Toggling dry run or prune re-plans through a
callback the caller provides (run in a worker: planning is I/O). The dialog never runs anything itself.

Paused rows are named in the preview with who paused them and why. A pause stops automated syncs only (as
Argo CD's disabled auto-sync): a manual sync of one paused row still applies, and the preview says so. In a
bulk preview (several rows) the paused rows are left out unless the operator includes them with ``i``:
marking many rows (``a`` marks every row shown) must not silently override a colleague's pause.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import replace

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Size
from textual.screen import ModalScreen
from textual.widgets import Static

from core.model import AppControl, Owner, SyncAction, SyncPlan
from tui.actions import install_bindings
from tui.fleet_query import RowKey
from tui.formatting import join_lines, safe
from tui.glyphs import UNICODE, Glyphs
from tui.planning import PlanChoices
from tui.screens.sync_options import SyncOptionsModal
from tui.screens.worker_errors import ForwardsWorkerErrors
from tui.widgets.footer import KeysFooter

Replan = Callable[[PlanChoices], Awaitable[tuple[SyncPlan, ...]]]
"""``replan(choices)``: plan the same targets again with new options."""

PLAN_LIST_MAX_ROWS = 20
"""Rows of plans shown at most before the list scrolls (fewer when the terminal is small)."""

MAX_STEPS_SHOWN = 30
"""Steps listed per plan; the rest are counted."""

_COUNTED = (SyncAction.CREATED, SyncAction.CONFIGURED, SyncAction.PRUNED, SyncAction.PRUNE_SKIPPED)


def plan_counts(plan: SyncPlan) -> str:
    """``1 created, 2 configured, 1 pruned`` (``nothing to change`` when empty)."""
    parts = [f"{plan.count(a)} {a.value}" for a in _COUNTED if plan.count(a)]
    return ", ".join(parts) or "nothing to change"


def plan_key(plan: SyncPlan) -> RowKey:
    """The (app, cluster) row a plan is for."""
    return (plan.app, plan.cluster)


def paused_line(control: AppControl, glyphs: Glyphs, *, left_out: bool) -> Text:
    """``‖ paused by alice: load test · left out of this sync (i includes it)``."""
    line = Text(f"    {glyphs.paused} paused", style="bold", no_wrap=True, end="")
    if control.by:
        line.append(" by ")
        line.append_text(safe(control.by, max_length=80))
    if control.reason:
        line.append(": ")
        line.append_text(safe(control.reason, max_length=200))
    line.append(f" {glyphs.dot} ")
    if left_out:
        line.append("left out of this sync (i includes it)", style="bold")
    else:
        line.append("a manual sync still applies; automated sync stays paused")
    return line


def plan_block(plan: SyncPlan, glyphs: Glyphs, *, paused: AppControl | None = None,
               left_out: bool = False) -> list[Text]:
    """The lines describing one plan: heading, pause, blocked reason or steps, warnings.

    ``paused`` is the row's pause, if any; ``left_out`` says the preview will not run this plan.
    """
    verb = "roll back" if plan.kind == "rollback" else "sync"
    heading = Text(f"{glyphs.dot} {verb} ", no_wrap=True, end="")
    heading.append_text(safe(plan.app, "bold"))
    heading.append(" on cluster ")
    heading.append_text(safe(plan.cluster, "bold"))
    heading.append(" to ")
    heading.append_text(safe(plan.revision[:8] or "?"))
    if plan.selected:
        heading.append(f" (only {len(plan.selected)} selected resources)")
    lines = [heading]
    if plan.non_descendant:
        lines.extend(history_lines(plan, glyphs))
    if plan.takeovers:
        lines.extend(takeover_lines(plan, glyphs))
    if paused is not None:
        lines.append(paused_line(paused, glyphs, left_out=left_out))
    if plan.blocked:
        blocked = Text(f"    {glyphs.action[SyncAction.FAILED]} blocked: ", style="bold", end="")
        blocked.append_text(safe(plan.blocked, max_length=400))
        return [*lines, blocked]
    if plan.owner.value != "fleetdeck":  # a controller owns the app: fleetdeck writes exactly these patches
        owner = Text(f"    owner {plan.owner.value}: fleetdeck writes exactly", style="bold", end="")
        lines.append(owner)
        for patch in plan.patches:
            line = Text("      write ", end="")
            line.append_text(safe(str(patch), max_length=300))
            lines.append(line)
        lines.append(Text(f"    expected changes ({plan.owner.value} applies them; fleetdeck's comparison):",
                          style="dim", end=""))
    lines.append(Text(f"    {plan_counts(plan)}", end=""))
    phase = None
    for step in plan.steps[:MAX_STEPS_SHOWN]:
        if plan.phased and step.phase is not phase:  # hooks: the steps phase by phase, in run order
            phase = step.phase
            when = " (only if the sync fails)" if phase.value == "SyncFail" else ""
            lines.append(Text(f"    {phase.value}{when}", style="bold", end=""))
        if step.action is SyncAction.UNCHANGED:
            continue
        line = Text(f"    {glyphs.action_label(step.action):<16}", no_wrap=True, end="")
        line.append_text(safe(step.key.short))
        if step.wave:
            line.append(f"  wave {step.wave}")
        if step.reason:
            line.append("  ")
            line.append_text(safe(step.reason, "dim", max_length=200))
        lines.append(line)
    if len(plan.steps) > MAX_STEPS_SHOWN:
        lines.append(Text(f"    {glyphs.fold} {len(plan.steps) - MAX_STEPS_SHOWN} more steps", end=""))
    lines.extend(Text(f"    {glyphs.warning} ", end="").append_text(safe(w, max_length=300)) for w in plan.warnings)
    return lines


def history_lines(plan: SyncPlan, glyphs: Glyphs) -> list[Text]:
    """The warning of a plan whose revision does not descend from the one synced (a force-push), and
    whether it is acknowledged."""
    warning = Text(f"    {glyphs.warning} HISTORY REPLACED: ", style="bold reverse", end="")
    warning.append_text(safe(plan.non_descendant, "bold", max_length=400))
    if plan.dry_run:
        state = Text("      dry run: nothing is written, no acknowledgement needed", style="dim", end="")
    elif plan.non_descendant_allowed:
        state = Text("      acknowledged (a to take it back)", style="bold", end="")
    else:
        state = Text("      not acknowledged: press a to acknowledge, then y", style="bold", end="")
    return [warning, state]


MAX_TAKEOVERS_SHOWN = 10
"""Taken-over fields listed per plan; the rest are counted."""


def takeover_lines(plan: SyncPlan, glyphs: Glyphs) -> list[Text]:
    """The warning of a plan that takes fields over from other field managers, the fields, and whether the
    operator confirmed it."""
    warning = Text(f"    {glyphs.warning} FIELD CONFLICT: this sync ", style="bold reverse", end="")
    warning.append_text(safe(plan.takeover_summary, "bold", max_length=300))
    lines = [warning]
    for takeover in plan.takeovers[:MAX_TAKEOVERS_SHOWN]:
        line = Text("      ", end="")
        line.append_text(safe(takeover.key.short))
        line.append(" ")
        line.append_text(safe(takeover.display_path, max_length=200))
        line.append(" (owned by ")
        line.append_text(safe(takeover.manager, max_length=80))
        line.append(")")
        lines.append(line)
    if len(plan.takeovers) > MAX_TAKEOVERS_SHOWN:
        lines.append(Text(f"      {glyphs.fold} {len(plan.takeovers) - MAX_TAKEOVERS_SHOWN} more fields", end=""))
    if plan.dry_run:
        state = Text("      dry run: nothing is written, no confirmation needed", style="dim", end="")
    elif plan.takeovers_allowed:
        state = Text("      confirmed: the sync takes them over (a to take it back)", style="bold", end="")
    else:
        state = Text("      not confirmed: press a to take them over, then y", style="bold", end="")
    return [*lines, state]


def needs_confirmation(plan: SyncPlan) -> bool:
    """Whether ``plan`` is refused until the operator presses ``a`` (history replaced, fields taken over)."""
    return plan.needs_acknowledgement or plan.needs_takeover_confirmation


def runnable(plans: Sequence[SyncPlan], left_out: Collection[RowKey] = ()) -> tuple[SyncPlan, ...]:
    """The plans that may run: not blocked, and not left out (paused rows of a bulk sync)."""
    return tuple(p for p in plans if not p.blocked and plan_key(p) not in left_out)


def unacknowledged(plans: Sequence[SyncPlan], left_out: Collection[RowKey] = ()) -> tuple[SyncPlan, ...]:
    """Plans that would run and replace history unacknowledged: ``y`` does nothing while any is left."""
    return tuple(p for p in runnable(plans, left_out) if needs_confirmation(p))


def summary_line(plans: Sequence[SyncPlan], left_out: Collection[RowKey] = (),
                 paused_included: int = 0) -> Text:
    """What pressing ``y`` does, in one or two sentences.

    Args:
        plans: every plan shown.
        left_out: rows that will not run although their plan could (paused, not included).
        paused_included: paused rows that will run.
    """
    ok = runnable(plans, left_out)
    skipped = sum(1 for p in plans if plan_key(p) in left_out and not p.blocked)
    if not ok:
        if skipped:
            return Text(f"Nothing runs: {skipped} paused row(s) left out (i includes them), the rest blocked.",
                        style="bold", end="")
        return Text("Nothing can run: every plan is blocked.", style="bold", end="")
    waiting = unacknowledged(plans, left_out)
    if waiting:
        replacing = [p for p in waiting if p.needs_acknowledgement]
        taking = [p for p in waiting if p.needs_takeover_confirmation]
        what = []
        if replacing:
            what.append(f"History would be replaced on {', '.join(sorted({p.cluster for p in replacing}))}")
        if taking:
            what.append("Fields owned by another field manager would be taken over on "
                        f"{', '.join(sorted({p.cluster for p in taking}))}")
        text = Text("; ".join(what) + ": ", style="bold", end="")
        text.append("press a to acknowledge it before y can run.")
        return text
    clusters = sorted({p.cluster for p in ok})
    dry = all(p.dry_run for p in ok)
    prune = any(p.prune for p in ok)
    text = Text(f"Press y to run {len(ok)} of {len(plans)} plans. ", end="")
    if dry:
        text.append("Dry run: nothing is written. ", style="bold")
    else:
        text.append("Writes to cluster(s): ", style="bold")
        text.append_text(safe(", ".join(clusters), "bold"))
        text.append(". ")
    text.append("Prune on: extraneous resources are deleted." if prune else "Prune off: nothing is deleted.")
    if skipped:
        text.append(f"\n{skipped} paused row(s) left out (i includes them).", style="bold")
    elif paused_included:
        text.append(f"\nIncludes {paused_included} paused row(s): their automated sync stays paused.",
                    style="bold")
    return text


class ConfirmSyncModal(ForwardsWorkerErrors, ModalScreen[tuple[SyncPlan, ...] | None]):
    """Preview of one or many plans; dismisses with the runnable plans or ``None``."""

    SCOPE = "confirm"

    def __init__(
        self,
        plans: Sequence[SyncPlan],
        *,
        replan: Replan | None = None,
        glyphs: Glyphs = UNICODE,
        title: str = "",
        paused: Mapping[RowKey, AppControl] | None = None,
        include_paused: bool | None = None,
        cursor_blink: bool = True,
    ) -> None:
        """
        Args:
            plans: one plan per target.
            replan: re-plans the same targets with new options; ``None`` hides the dry-run/prune toggles.
            glyphs: glyph set.
            title: dialog title; by default "Sync N app(s) on M cluster(s)".
            paused: the pause of each paused target.
            include_paused: run the paused targets' plans; by default only when a single row is previewed.
            cursor_blink: blink the cursor of the sync options input.
        """
        super().__init__(classes="confirm-modal")
        install_bindings(self, "confirm", read_only=False)
        self.plans = tuple(plans)
        self.replan = replan
        self.glyphs = glyphs
        self.paused: dict[RowKey, AppControl] = {
            k: c for k, c in (paused or {}).items() if c.paused
        }
        self.include_paused = len(self.plans) <= 1 if include_paused is None else include_paused
        self.acknowledged: frozenset[tuple[str, str, str]] = frozenset()
        """(app, cluster, message) of each history replacement the operator acknowledged with ``a``; a re-plan
        keeps an acknowledgement only for the same message."""
        self.title_text = title or self._make_title()
        self.prune = any(p.prune for p in self.plans)
        self.dry_run = bool(self.plans) and all(p.dry_run for p in self.plans)
        self.sync_options: tuple[str, ...] = ()
        """Argo CD sync options chosen with ``o`` (sent for the Argo CD-owned plans only)."""
        self.controller_dry_run = False
        """Argo CD's own dry run, toggled with ``c`` (Argo CD-owned plans only)."""
        self.cursor_blink = cursor_blink

    def _make_title(self) -> str:
        kind = "Roll back" if any(p.kind == "rollback" for p in self.plans) else "Sync"
        apps = len({p.app for p in self.plans})
        clusters = len({p.cluster for p in self.plans})
        return f"{kind} {apps} app(s) on {clusters} cluster(s)"

    @property
    def left_out(self) -> frozenset[RowKey]:
        """Rows whose plan will not run because they are paused and not included."""
        return frozenset() if self.include_paused else frozenset(self.paused)

    def to_run(self) -> tuple[SyncPlan, ...]:
        """The plans ``y`` runs."""
        return runnable(self.plans, self.left_out)

    def compose(self) -> ComposeResult:
        """Title, the plans, the consequences line and the keys."""
        with Vertical(id="dialog"):
            yield Static(safe(self.title_text, "bold"), id="dialog-title")
            with VerticalScroll(id="plan-list"):
                yield Static(self._plans_renderable(), id="plans")
            yield Static(self._summary(), id="consequences")
            yield Static(self._options_text(), id="options")
        yield KeysFooter()

    def _summary(self) -> Text:
        included = 0 if not self.include_paused else sum(
            1 for p in self.plans if plan_key(p) in self.paused and not p.blocked)
        return summary_line(self.plans, self.left_out, included)

    def _plans_renderable(self) -> Text:
        lines: list[Text] = []
        left_out = self.left_out
        for plan in self.plans:
            key = plan_key(plan)
            lines.extend(plan_block(plan, self.glyphs, paused=self.paused.get(key), left_out=key in left_out))
        return join_lines(lines)

    def _options_text(self) -> Text:
        parts = ["y run", "n cancel"]
        if self.replan is not None:
            parts += [f"d dry run: {'on' if self.dry_run else 'off'}", f"p prune: {'on' if self.prune else 'off'}"]
        if self.paused:
            parts.append(f"i paused rows: {'included' if self.include_paused else 'left out'}")
        if replacing := self._replacing():
            done = all(p.non_descendant_allowed for p in replacing)
            parts.append(f"a acknowledge replaced history: {'on' if done else 'off'}")
        elif taking := self._taking():
            done = all(p.takeovers_allowed for p in taking)
            parts.append(f"a take over fields of other managers: {'on' if done else 'off'}")
        text = Text(", ".join(parts), end="")
        if self._argocd():
            text.append(f"\nArgo CD: c its own dry run: {'on' if self.controller_dry_run else 'off'}, "
                        "o sync options: ")
            text.append_text(safe(" ".join(self.sync_options) or "none"))
        return text

    def _argocd(self) -> bool:
        """Whether a plan of this sync goes through Argo CD (its options can be chosen)."""
        return self.replan is not None and any(p.owner is Owner.ARGOCD for p in self.plans)

    def _replacing(self) -> tuple[SyncPlan, ...]:
        """Plans that would run and replace history (dry runs write nothing: not concerned)."""
        return tuple(p for p in self.to_run() if p.non_descendant and not p.dry_run)

    def _taking(self) -> tuple[SyncPlan, ...]:
        """Plans that would run and take fields over from other field managers (dry runs: not concerned)."""
        return tuple(p for p in self.to_run() if p.takeovers and not p.dry_run)

    def _with_acknowledgements(self, plans: Sequence[SyncPlan]) -> tuple[SyncPlan, ...]:
        plans = tuple(replace(p, non_descendant_allowed=True)
                      if p.non_descendant and (p.app, p.cluster, p.non_descendant) in self.acknowledged else p
                      for p in plans)
        return tuple(replace(p, takeovers_allowed=True)
                     if p.takeovers and (p.app, p.cluster, _takeover_key(p)) in self.acknowledged else p
                     for p in plans)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Re-planning toggles exist only when the caller can re-plan; the paused toggle when a row is paused;
        the acknowledgement only when a plan replaces history; ``y`` only when something runs and every history
        replacement among it is acknowledged."""
        if action in ("toggle_dry_run", "toggle_prune"):
            return self.replan is not None
        if action in ("toggle_controller_dry_run", "edit_sync_options"):
            return self._argocd()
        if action == "toggle_paused":
            return bool(self.paused)
        if action == "acknowledge":
            return bool(self._replacing() or self._taking())
        if action == "confirm":
            return bool(self.to_run()) and not unacknowledged(self.plans, self.left_out)
        return True

    def action_confirm(self) -> None:
        """Run the runnable plans (paused rows only when included; never while a history replacement is not
        acknowledged)."""
        if (plans := self.to_run()) and not unacknowledged(self.plans, self.left_out):
            self.dismiss(plans)

    def action_acknowledge(self) -> None:
        """Acknowledge every history replacement and field takeover shown (or take the acknowledgement back)."""
        replacing, taking = self._replacing(), self._taking()
        if not replacing and not taking:
            return
        if all(p.non_descendant_allowed for p in replacing) and all(p.takeovers_allowed for p in taking):
            self.acknowledged = frozenset()
        else:
            self.acknowledged = frozenset({(p.app, p.cluster, p.non_descendant) for p in replacing}
                                          | {(p.app, p.cluster, _takeover_key(p)) for p in taking})
        self.show_plans(tuple(replace(p, non_descendant_allowed=False, takeovers_allowed=False)
                              for p in self.plans))

    def action_toggle_paused(self) -> None:
        """Include the paused rows in the run, or leave them out."""
        if not self.paused:
            return
        self.include_paused = not self.include_paused
        self._show()

    def action_cancel(self) -> None:
        """Close; nothing runs."""
        self.dismiss(None)

    def action_toggle_dry_run(self) -> None:
        """Re-plan with dry run flipped."""
        self.dry_run = not self.dry_run
        self._replan()

    def action_toggle_prune(self) -> None:
        """Re-plan with prune flipped."""
        self.prune = not self.prune
        self._replan()

    def action_toggle_controller_dry_run(self) -> None:
        """Re-plan with Argo CD's own dry run flipped (Argo CD-owned plans only)."""
        if not self._argocd():
            return
        self.controller_dry_run = not self.controller_dry_run
        self._replan()

    def action_edit_sync_options(self) -> None:
        """Ask for Argo CD sync options, then re-plan with them (esc keeps the old ones)."""
        if not self._argocd():
            return

        def chosen(options: tuple[str, ...] | None) -> None:
            if options is not None and options != self.sync_options:
                self.sync_options = options
                self._replan()

        self.app.push_screen(SyncOptionsModal(self.sync_options, cursor_blink=self.cursor_blink), chosen)

    @work(exclusive=True, group="replan", exit_on_error=False, description="Re-planning")
    async def _replan(self) -> None:
        if self.replan is None:
            return
        self.query_one("#consequences", Static).update(Text("re-planning…", end=""))
        self.show_plans(await self.replan(PlanChoices(prune=self.prune, dry_run=self.dry_run,
                                                      sync_options=self.sync_options,
                                                      controller_dry_run=self.controller_dry_run)))

    def show_plans(self, plans: Sequence[SyncPlan]) -> None:
        """Replace the plans shown (after a re-plan), applying the acknowledgements still valid."""
        self.plans = self._with_acknowledgements(plans)
        self._show()

    def _show(self) -> None:
        self.query_one("#plans", Static).update(self._plans_renderable())
        self.query_one("#consequences", Static).update(self._summary())
        self.query_one("#options", Static).update(self._options_text())
        self.refresh_bindings()
        self.call_after_refresh(self._fit_plan_list)

    def on_mount(self) -> None:
        """Fit the plan list once the dialog is laid out."""
        self.call_after_refresh(self._fit_plan_list)

    def on_resize(self) -> None:
        """Fit the plan list to the new terminal size."""
        self.call_after_refresh(self._fit_plan_list)

    def _fit_plan_list(self) -> None:
        """Give the plan list (it scrolls) only the rows the dialog has left after its title, consequences
        and keys line, so that what ``y`` does and where it writes stay on screen at 80x24 too."""
        dialog = self.query_one("#dialog")
        fixed = sum(self.query_one(f"#{name}").outer_size.height for name in ("dialog-title", "consequences",
                                                                               "options"))
        keys = self.query_one(KeysFooter).outer_size.height
        space = Size(self.size.width, self.size.height - keys)  # the screen less its docked keys line
        room = dialog.styles.max_height.resolve(space, self.app.size) if dialog.styles.max_height else None
        limit = int(room) if room is not None else space.height
        rows = max(3, min(PLAN_LIST_MAX_ROWS, limit - dialog.styles.gutter.height - fixed))
        plan_list = self.query_one("#plan-list")
        if plan_list.styles.max_height is None or plan_list.styles.max_height.value != rows:
            plan_list.styles.max_height = rows


def _takeover_key(plan: SyncPlan) -> str:
    """What a field-takeover confirmation is for: a re-plan keeps it only for the same fields and managers."""
    return "takeover:" + "|".join(f"{t.key}{t.path}@{t.manager}" for t in plan.takeovers)


class ConfirmModal(ModalScreen[bool]):
    """A yes/no question whose body says exactly what happens where."""

    SCOPE = "confirm"

    def __init__(self, title: str, body: Text) -> None:
        super().__init__(classes="confirm-modal")
        install_bindings(self, "confirm", read_only=False)
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        """Title, body, keys."""
        with Vertical(id="dialog"):
            yield Static(safe(self.title_text, "bold"), id="dialog-title")
            yield Static(self.body, id="body")
            yield Static(Text("y confirm, n cancel", end=""), id="options")
        yield KeysFooter()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """No re-planning, paused toggle or acknowledgement in a plain question."""
        return action not in ("toggle_dry_run", "toggle_prune", "toggle_paused", "acknowledge",
                              "toggle_controller_dry_run", "edit_sync_options")

    def action_confirm(self) -> None:
        """Answer yes."""
        self.dismiss(True)

    def action_cancel(self) -> None:
        """Answer no."""
        self.dismiss(False)
