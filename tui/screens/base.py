"""ConsoleScreen: the base of the console's full screens (fleet, app, diff, history).

It installs the registry's bindings for the screen's scope (without the mutating ones in read-only
mode) and watches the app's ``snapshot`` and ``operations`` reactives, which only ``tui.app`` assigns;
subclasses render them in ``show_snapshot`` / ``show_operations``. It also holds the shared flows every
screen offers (plan and confirm a sync, pause, resume). Screens never mutate a snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.screen import Screen

from core.model import AppControl, FleetSnapshot, OperationState, Owner, ResourceKey, SyncPlan
from tui.actions import install_bindings
from tui.context import ConsoleContext
from tui.fleet_query import RowKey
from tui.formatting import safe
from tui.messages import PauseRequested, RefreshRequested, ResumeRequested, SyncRequested
from tui.planning import PlanChoices, plan_targets
from tui.screens.confirm import ConfirmModal, ConfirmSyncModal, plan_key
from tui.screens.pause import PauseModal, PauseRequest, targets_text
from tui.screens.worker_errors import ForwardsWorkerErrors


class ConsoleScreen(ForwardsWorkerErrors, Screen[None]):
    """A full screen of the console, fed by the app's snapshot."""

    SCOPE: ClassVar[str] = ""
    """The action-registry scope whose bindings this screen gets."""

    def __init__(self, ctx: ConsoleContext) -> None:
        super().__init__()
        self.ctx = ctx
        install_bindings(self, self.SCOPE, read_only=ctx.read_only)
        self.set_class(not ctx.glyphs.unicode, "-ascii")
        self.set_class(ctx.read_only, "-read-only")

    @on(events.Mount)
    def _follow_app_state(self) -> None:
        self.watch(self.app, "snapshot", self._snapshot_changed, init=True)
        self.watch(self.app, "operations", self._operations_changed, init=True)

    def _snapshot_changed(self, snapshot: FleetSnapshot | None) -> None:
        if snapshot is not None:
            self.show_snapshot(snapshot)

    def _operations_changed(self, operations: tuple[OperationState, ...]) -> None:
        self.show_operations(operations)

    @property
    def snapshot(self) -> FleetSnapshot | None:
        """The app's current snapshot (read only)."""
        value: Any = getattr(self.app, "snapshot", None)
        return value if isinstance(value, FleetSnapshot) else None

    def show_snapshot(self, snapshot: FleetSnapshot) -> None:
        """Render a new snapshot; subclasses override."""

    def show_operations(self, operations: tuple[OperationState, ...]) -> None:
        """Render the app's operations (sync log); subclasses override."""

    def now(self) -> float:
        """The injected clock's time."""
        return self.ctx.clock()

    def action_back(self) -> None:
        """Return to the previous screen."""
        if len(self.app.screen_stack) > 1:
            self.dismiss(None)

    # ------------------------------------------------------------------ shared operator flows

    def request_sync(self, targets: Sequence[RowKey], resources: Sequence[ResourceKey] = ()) -> None:
        """Plan a sync of ``targets`` and ask for confirmation (no-op in read-only mode)."""
        if self.ctx.read_only or not targets:
            return
        self._plan_and_confirm(tuple(targets), tuple(resources))

    @work(exclusive=True, group="plan", exit_on_error=False, description="Planning sync")
    async def _plan_and_confirm(self, targets: tuple[RowKey, ...], resources: tuple[ResourceKey, ...]) -> None:
        engine = self.ctx.engine
        plans = await plan_targets(engine, targets, resources=resources)

        argo = frozenset(plan_key(p) for p in plans if p.owner is Owner.ARGOCD)

        async def replan(choices: PlanChoices) -> tuple[SyncPlan, ...]:
            return await plan_targets(engine, targets, prune=choices.prune, dry_run=choices.dry_run,
                                      resources=resources, sync_options=choices.sync_options,
                                      controller_dry_run=choices.controller_dry_run, controller_targets=argo)

        modal = ConfirmSyncModal(plans, replan=replan, glyphs=self.ctx.glyphs, paused=self.paused_rows(targets),
                                 cursor_blink=self.ctx.cursor_blink)
        confirmed = await self.app.push_screen_wait(modal)
        if confirmed:
            self.post_message(SyncRequested(tuple(confirmed)))
            self.after_request("sync")

    def paused_rows(self, targets: Sequence[RowKey]) -> dict[RowKey, AppControl]:
        """The pause of each paused target, from the current snapshot."""
        snapshot = self.snapshot
        if snapshot is None:
            return {}
        found = {t: snapshot.app(*t) for t in targets}
        return {t: status.control for t, status in found.items() if status is not None and status.control.paused}

    def after_request(self, what: str) -> None:
        """The operator confirmed ``what`` (``sync``, ``pause``, ``resume``) and it was requested.

        Subclasses clear their marks here; a cancelled dialog never calls this, so marks survive it.
        """

    def request_pause(self, targets: Sequence[RowKey]) -> None:
        """Ask for a reason and expiry, then request the pause (no-op in read-only mode)."""
        if self.ctx.read_only or not targets:
            return
        chosen = tuple(targets)

        def done(result: PauseRequest | None) -> None:
            if result is not None:
                self.post_message(PauseRequested(chosen, result.reason, result.expires_in))
                self.after_request("pause")

        self.app.push_screen(
            PauseModal(chosen, glyphs=self.ctx.glyphs, cursor_blink=self.ctx.cursor_blink), done
        )

    def request_resume(self, targets: Sequence[RowKey]) -> None:
        """Confirm, then request resuming automated sync (no-op in read-only mode)."""
        if self.ctx.read_only or not targets:
            return
        chosen = tuple(targets)
        body = Text("Resume automated sync, and clear any rollback pin, of:\n", end="")
        body.append_text(targets_text(chosen, self.ctx.glyphs))
        body.append("\nThe next automated sync deploys the branch head.")

        def done(yes: bool | None) -> None:
            if yes:
                self.post_message(ResumeRequested(chosen))
                self.after_request("resume")

        self.app.push_screen(ConfirmModal(f"Resume {len(chosen)} row(s)", body), done)

    def request_refresh(self, targets: Sequence[RowKey]) -> None:
        """Ask the engine to fetch Git and recompute these rows now."""
        for target in targets:
            self.post_message(RefreshRequested(target))


def row_title(key: RowKey) -> Text:
    """``web on prod-us`` with both names sanitized."""
    text = safe(key[0], "bold")
    text.append(" on ")
    text.append_text(safe(key[1], "bold"))
    return text
