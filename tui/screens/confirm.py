"""Confirmation dialogs: the sync/rollback plan preview, and a plain yes/no question.

``ConfirmSyncModal`` states exactly what will happen on which cluster (created, changed, pruned,
skipped, blocked) and returns the plans to run, or ``None``. A plan whose revision does not descend from
the one synced (a force-push) is shown with a HISTORY REPLACED warning, and ``y`` runs nothing until the
operator acknowledged it with ``a`` (the returned plans then carry ``non_descendant_allowed``). Toggling dry run or prune re-plans through a
callback the caller provides (run in a worker: planning is I/O). The dialog never runs anything itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from core.model import SyncAction, SyncPlan
from tui.actions import install_bindings
from tui.formatting import join_lines, safe
from tui.glyphs import UNICODE, Glyphs
from tui.screens.worker_errors import ForwardsWorkerErrors

Replan = Callable[[bool, bool], Awaitable[tuple[SyncPlan, ...]]]
"""``replan(prune, dry_run)``: plan the same targets again with new options."""

MAX_STEPS_SHOWN = 30
"""Steps listed per plan; the rest are counted."""

_COUNTED = (SyncAction.CREATED, SyncAction.CONFIGURED, SyncAction.PRUNED, SyncAction.PRUNE_SKIPPED)


def plan_counts(plan: SyncPlan) -> str:
    """``1 created, 2 configured, 1 pruned`` (``nothing to change`` when empty)."""
    parts = [f"{plan.count(a)} {a.value}" for a in _COUNTED if plan.count(a)]
    return ", ".join(parts) or "nothing to change"


def plan_block(plan: SyncPlan, glyphs: Glyphs) -> list[Text]:
    """The lines describing one plan: heading, blocked reason or steps, warnings."""
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
    if plan.blocked:
        blocked = Text(f"    {glyphs.action[SyncAction.FAILED]} blocked: ", style="bold", end="")
        blocked.append_text(safe(plan.blocked, max_length=400))
        return [*lines, blocked]
    lines.append(Text(f"    {plan_counts(plan)}", end=""))
    for step in plan.steps[:MAX_STEPS_SHOWN]:
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


def runnable(plans: Sequence[SyncPlan]) -> tuple[SyncPlan, ...]:
    """The plans that may run (not blocked)."""
    return tuple(p for p in plans if not p.blocked)


def unacknowledged(plans: Sequence[SyncPlan]) -> tuple[SyncPlan, ...]:
    """Runnable plans that replace history and are not acknowledged: ``y`` does nothing while any is left."""
    return tuple(p for p in runnable(plans) if p.needs_acknowledgement)


def summary_line(plans: Sequence[SyncPlan]) -> Text:
    """What pressing ``y`` does, in one sentence."""
    ok = runnable(plans)
    if not ok:
        return Text("Nothing can run: every plan is blocked.", style="bold", end="")
    waiting = unacknowledged(plans)
    if waiting:
        where = ", ".join(sorted({p.cluster for p in waiting}))
        text = Text(f"History would be replaced on {where}: ", style="bold", end="")
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
    ) -> None:
        super().__init__(classes="confirm-modal")
        install_bindings(self, "confirm", read_only=False)
        self.plans = tuple(plans)
        self.replan = replan
        self.glyphs = glyphs
        self.title_text = title or self._make_title()
        self.prune = any(p.prune for p in self.plans)
        self.dry_run = bool(self.plans) and all(p.dry_run for p in self.plans)
        self.acknowledged: frozenset[tuple[str, str, str]] = frozenset()
        """(app, cluster, message) of each history replacement the operator acknowledged with ``a``; a re-plan
        keeps an acknowledgement only for the same message."""

    def _make_title(self) -> str:
        kind = "Roll back" if any(p.kind == "rollback" for p in self.plans) else "Sync"
        apps = len({p.app for p in self.plans})
        clusters = len({p.cluster for p in self.plans})
        return f"{kind} {apps} app(s) on {clusters} cluster(s)"

    def compose(self) -> ComposeResult:
        """Title, the plans, the consequences line and the keys."""
        with Vertical(id="dialog"):
            yield Static(safe(self.title_text, "bold"), id="dialog-title")
            with VerticalScroll(id="plan-list"):
                yield Static(self._plans_renderable(), id="plans")
            yield Static(summary_line(self.plans), id="consequences")
            yield Static(self._options_text(), id="options")
        yield Footer()

    def _plans_renderable(self) -> Text:
        lines: list[Text] = []
        for plan in self.plans:
            lines.extend(plan_block(plan, self.glyphs))
        return join_lines(lines)

    def _options_text(self) -> Text:
        acknowledge = ""
        if self._replacing():
            done = all(p.non_descendant_allowed for p in self._replacing())
            acknowledge = f", a acknowledge replaced history: {'on' if done else 'off'}"
        if self.replan is None:
            return Text(f"y run, n cancel{acknowledge}", end="")
        return Text(
            f"y run, n cancel, d dry run: {'on' if self.dry_run else 'off'}, "
            f"p prune: {'on' if self.prune else 'off'}{acknowledge}",
            end="",
        )

    def _replacing(self) -> tuple[SyncPlan, ...]:
        """Runnable plans that would replace history (dry runs write nothing: not concerned)."""
        return tuple(p for p in runnable(self.plans) if p.non_descendant and not p.dry_run)

    def _with_acknowledgements(self, plans: Sequence[SyncPlan]) -> tuple[SyncPlan, ...]:
        return tuple(replace(p, non_descendant_allowed=True)
                     if p.non_descendant and (p.app, p.cluster, p.non_descendant) in self.acknowledged else p
                     for p in plans)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Re-planning toggles exist only when the caller can re-plan; the acknowledgement only when a plan
        replaces history; ``y`` only when something can run and every history replacement is acknowledged."""
        if action in ("toggle_dry_run", "toggle_prune"):
            return self.replan is not None
        if action == "acknowledge":
            return bool(self._replacing())
        if action == "confirm":
            return bool(runnable(self.plans)) and not unacknowledged(self.plans)
        return True

    def action_confirm(self) -> None:
        """Run the runnable plans (never while a history replacement is not acknowledged)."""
        if runnable(self.plans) and not unacknowledged(self.plans):
            self.dismiss(runnable(self.plans))

    def action_acknowledge(self) -> None:
        """Acknowledge every history replacement shown (or take the acknowledgement back)."""
        replacing = self._replacing()
        if not replacing:
            return
        if all(p.non_descendant_allowed for p in replacing):
            self.acknowledged = frozenset()
        else:
            self.acknowledged = frozenset((p.app, p.cluster, p.non_descendant) for p in replacing)
        self.show_plans(tuple(replace(p, non_descendant_allowed=False) for p in self.plans))

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

    @work(exclusive=True, group="replan", exit_on_error=False, description="Re-planning")
    async def _replan(self) -> None:
        if self.replan is None:
            return
        self.query_one("#consequences", Static).update(Text("re-planning…", end=""))
        self.show_plans(await self.replan(self.prune, self.dry_run))

    def show_plans(self, plans: Sequence[SyncPlan]) -> None:
        """Replace the plans shown (after a re-plan), applying the acknowledgements still valid."""
        self.plans = self._with_acknowledgements(plans)
        self.query_one("#plans", Static).update(self._plans_renderable())
        self.query_one("#consequences", Static).update(summary_line(self.plans))
        self.query_one("#options", Static).update(self._options_text())
        self.refresh_bindings()


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
        yield Footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """No re-planning or acknowledgement in a plain question."""
        return action not in ("toggle_dry_run", "toggle_prune", "acknowledge")

    def action_confirm(self) -> None:
        """Answer yes."""
        self.dismiss(True)

    def action_cancel(self) -> None:
        """Answer no."""
        self.dismiss(False)
