"""FleetdeckApp: the console's Textual app, and ``make_app``, the factory the CLI and the tests use.

The app owns the engine's lifetime (``start`` on mount, ``stop`` on unmount) and is the only place that
assigns the ``snapshot`` reactive. Every engine call runs in a worker: the snapshot stream (posted as
coalescing ``SnapshotChanged`` messages), operations (``engine.execute_plan`` progress as ``SyncProgressed``),
pause, resume and refresh. Worker failures become an ``ErrorModal``. In read-only mode mutating requests
are refused here too, whatever posted them: the UI never offers them, and this is the second guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path, PurePath
from typing import Any, ClassVar

from textual import events, on, work
from textual.app import App
from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver
from textual.notifications import SeverityLevel
from textual.reactive import var
from textual.worker import Worker, WorkerState

from core.api import FleetEngineAPI
from core.errors import FleetdeckError
from core.model import FleetSnapshot, OperationState, SyncPlan
from core.sanitize import clean
from tui.actions import install_bindings
from tui.commands import ConsolePalette, FleetdeckCommands
from tui.context import ConsoleContext
from tui.driver import DiffingDriver, raw_output
from tui.fleet_query import RowKey
from tui.glyphs import default_glyphs
from tui.messages import (
    PauseRequested,
    RefreshRequested,
    ResumeRequested,
    SnapshotChanged,
    SyncFinished,
    SyncProgressed,
    SyncRequested,
    WorkerFailed,
)
from tui.screens.error import ErrorModal
from tui.screens.fleet_screen import FleetScreen
from tui.screens.help import HelpScreen

log = logging.getLogger(__name__)
STYLES = Path(__file__).parent / "styles"
MAX_OPERATIONS_KEPT = 50


def _upsert(operations: tuple[OperationState, ...], state: OperationState) -> tuple[OperationState, ...]:
    """Replace the operation with the same id, or append it; keep the newest ``MAX_OPERATIONS_KEPT``."""
    kept = tuple(op for op in operations if op.id != state.id)
    return (*kept, state)[-MAX_OPERATIONS_KEPT:]


class FleetdeckApp(App[None]):
    """The fleetdeck console."""

    TITLE = "fleetdeck"
    CSS_PATH: ClassVar[list[str | PurePath]] = [
        STYLES / "app.tcss",
        STYLES / "fleet.tcss",
        STYLES / "app_screen.tcss",
        STYLES / "diff.tcss",
        STYLES / "history.tcss",
        STYLES / "modals.tcss",
    ]
    COMMANDS = App.COMMANDS | {FleetdeckCommands}

    snapshot: var[FleetSnapshot | None] = var(None, always_update=True)
    """The newest fleet snapshot; assigned only by ``_snapshot_changed``. ``always_update`` skips a deep
    equality check of the whole fleet on every assignment. A ``var``, not a repainting ``reactive``: the
    screens watch it and refresh only what changed; a repaint of the app on every snapshot rewrote the whole
    terminal (about 16 kB at 120x36) each time."""
    operations: var[tuple[OperationState, ...]] = var(())
    """Operations started from this console, oldest first, each at its latest reported state."""

    def __init__(self, ctx: ConsoleContext, *, mouse: bool = False, theme: str = "textual-dark") -> None:
        super().__init__()
        self.ctx = ctx
        self.mouse = mouse
        self.theme = theme
        install_bindings(self, "global", read_only=ctx.read_only)
        self.set_class(not ctx.glyphs.unicode, "-ascii")

    @property
    def read_only(self) -> bool:
        """Whether this console may change the fleet."""
        return self.ctx.read_only

    def run(self, *args: Any, mouse: bool | None = None, **kwargs: Any) -> Any:
        """Run the app; mouse reporting is off unless ``make_app(mouse=True)`` (SSH-friendly)."""
        return super().run(*args, mouse=self.mouse if mouse is None else mouse, **kwargs)

    def get_driver_class(self) -> type[Driver]:
        """Textual's Linux driver writing only what changed on the screen (``tui.driver``), unless another
        driver was asked for (``TEXTUAL_DRIVER``, as ``fleetdeck serve`` does) or ``FLEETDECK_RAW_OUTPUT``."""
        driver = super().get_driver_class()
        return DiffingDriver if driver is LinuxDriver and not raw_output() else driver

    def on_resize(self, _event: events.Resize) -> None:
        """A new size: the terminal may have redrawn or reflowed, so the driver forgets what it showed."""
        if isinstance(self._driver, DiffingDriver):
            self._driver.forget_screen()

    def get_default_screen(self) -> FleetScreen:
        """The fleet screen is the base of the stack."""
        return FleetScreen(self.ctx)

    def on_mount(self) -> None:
        """Start the engine and follow its snapshots."""
        self.follow_snapshots()

    async def on_unmount(self) -> None:
        """Stop the engine (watchers, connections)."""
        try:
            await self.ctx.engine.stop()
        except Exception:  # shutting down: report, never hang the terminal
            log.exception("engine stop failed")

    # ------------------------------------------------------------------ snapshots

    @work(exclusive=True, group="snapshots", exit_on_error=False, description="Following the fleet")
    async def follow_snapshots(self) -> None:
        """Post every snapshot the engine publishes; the queue keeps only the newest. An engine that offers a
        ``placeholder`` (every row, loading) has it shown while it starts."""
        placeholder = getattr(self.ctx.engine, "placeholder", None)
        if isinstance(placeholder, FleetSnapshot):
            self.post_message(SnapshotChanged(placeholder))
            painted = asyncio.Event()
            self.call_after_refresh(lambda: self.call_after_refresh(painted.set))
            with contextlib.suppress(TimeoutError):  # the engine thread's imports would slow the first frame
                async with asyncio.timeout(1.0):
                    await painted.wait()
        await self.ctx.engine.start()
        async for snapshot in self.ctx.engine.snapshots():
            self.post_message(SnapshotChanged(snapshot))

    @on(SnapshotChanged)
    def _snapshot_changed(self, message: SnapshotChanged) -> None:
        self.snapshot = message.snapshot

    # ------------------------------------------------------------------ operations

    def _refuse_in_read_only(self, what: str) -> bool:
        if self.read_only:
            self.notify(f"read-only audit mode: {what} refused", severity="warning", markup=False)
        return self.read_only

    @on(SyncRequested)
    def _sync_requested(self, message: SyncRequested) -> None:
        if self._refuse_in_read_only("sync"):
            return
        for plan in message.plans:
            self.start_operation(plan)

    def start_operation(self, plan: SyncPlan) -> None:
        """Run a confirmed plan in its own worker (one per app and cluster)."""
        group = f"sync:{plan.cluster}:{plan.app}"
        if any(w.group == group and w.is_running for w in self.workers):
            self.notify(f"{clean(plan.app)} on {clean(plan.cluster)}: an operation is already running",
                        severity="warning", markup=False)
            return
        self.run_worker(
            self._drive(plan),
            group=group,
            exclusive=True,
            exit_on_error=False,
            description=f"{plan.kind} of {clean(plan.app)} on {clean(plan.cluster)}",
        )

    async def _drive(self, plan: SyncPlan) -> None:
        last: OperationState | None = None
        async for state in self.ctx.engine.execute_plan(plan):
            last = state
            self.post_message(SyncProgressed(state))
        if last is not None:
            self.post_message(SyncFinished(last))

    @on(SyncProgressed)
    def _sync_progressed(self, message: SyncProgressed) -> None:
        self.operations = _upsert(self.operations, message.state)

    @on(SyncFinished)
    def _sync_finished(self, message: SyncFinished) -> None:
        state = message.state
        self.operations = _upsert(self.operations, state)
        where = f"{clean(state.app)} on {clean(state.cluster)}"
        severity: SeverityLevel = "information" if state.phase.successful else "error"
        undo = "" if state.phase.successful or state.dry_run else \
            " To put back what ran before: h (history) on its row, pick that revision, R (roll back)."
        self.notify(
            f"{state.kind} {state.phase.value}: {state.summary}. Rows update with the next snapshot.{undo}",
            title=f"{'dry-run ' if state.dry_run else ''}{state.kind} {where}",
            severity=severity,
            timeout=8, markup=False)

    @on(PauseRequested)
    def _pause_requested(self, message: PauseRequested) -> None:
        if self._refuse_in_read_only("pause"):
            return
        self._pause(message.targets, message.reason, message.expires_in)

    @work(exclusive=True, group="control", exit_on_error=False, description="Pausing")
    async def _pause(self, targets: tuple[RowKey, ...], reason: str, expires_in: float | None) -> None:
        engine = self.ctx.engine

        def call(target: RowKey) -> Awaitable[None]:
            return engine.pause(target[0], target[1], reason=reason, expires_in=expires_in)

        await self._for_each(targets, call, "paused")

    @on(ResumeRequested)
    def _resume_requested(self, message: ResumeRequested) -> None:
        if self._refuse_in_read_only("resume"):
            return
        self._resume(message.targets)

    @work(exclusive=True, group="control", exit_on_error=False, description="Resuming")
    async def _resume(self, targets: tuple[RowKey, ...]) -> None:
        engine = self.ctx.engine
        await self._for_each(targets, lambda t: engine.resume(t[0], t[1]), "resumed")

    async def _for_each(
        self, targets: Sequence[RowKey], call: Callable[[RowKey], Awaitable[None]], verb: str
    ) -> None:
        """Call the engine for every target; report successes, then raise the failures together."""
        failures: list[tuple[RowKey, FleetdeckError]] = []
        for target in targets:
            try:
                await call(target)
            except FleetdeckError as error:
                failures.append((target, error))
        done = len(targets) - len(failures)
        if done:
            self.notify(f"{verb} {done} row(s); rows update with the next snapshot", timeout=5, markup=False)
        if len(failures) == 1 and len(targets) == 1:
            raise failures[0][1]
        if failures:
            lines = "\n".join(f"{clean(t[0])} on {clean(t[1])}: {e.message}" for t, e in failures)
            first = failures[0][1]
            raise FleetdeckError(f"{len(failures)} of {len(targets)} failed:\n{lines}", title=first.title,
                                 hint=first.hint)

    @on(RefreshRequested)
    def _refresh_requested(self, message: RefreshRequested) -> None:
        self._refresh(message.target, message.hard)

    @work(exclusive=False, group="refresh", exit_on_error=False, description="Refreshing")
    async def _refresh(self, target: RowKey | None, hard: bool) -> None:
        app, cluster = target if target is not None else (None, None)
        await self.ctx.engine.refresh(app, cluster, hard=hard)
        what = f"{clean(app)} on {clean(cluster)}" if target else "the whole fleet"
        self.notify(f"refresh of {what} requested", timeout=3, markup=False)

    def action_refresh_fleet(self) -> None:
        """Fetch Git now and recompute every app."""
        self.post_message(RefreshRequested(None))

    # ------------------------------------------------------------------ errors and help

    @on(Worker.StateChanged)
    def _worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state is WorkerState.ERROR and worker.error is not None:
            self.show_error(worker.error, worker.description)

    @on(WorkerFailed)
    def _screen_worker_failed(self, message: WorkerFailed) -> None:
        self.show_error(message.error, message.description)

    def show_error(self, error: BaseException, doing: str = "") -> None:
        """Show ``error`` in an ErrorModal; ``doing`` is the failed worker's description."""
        context = f"while {doing[:1].lower()}{doing[1:]}" if doing else ""
        self.push_screen(ErrorModal.from_exception(error, context=context))

    def action_command_palette(self) -> None:
        """Open the command palette (``ConsolePalette``: Textual's, with the page-key crash guarded)."""
        if self.use_command_palette and not self.screen.has_class("--textual-command-palette"):
            self.push_screen(ConsolePalette(id="--command-palette"))

    def action_show_help(self) -> None:
        """Keys of the current screen, generated from the registry."""
        if isinstance(self.screen, HelpScreen):
            return
        scope = getattr(self.screen, "SCOPE", "fleet")
        notes = getattr(self.screen, "help_notes", None)
        self.push_screen(HelpScreen(scope, read_only=self.read_only, notes=notes() if callable(notes) else ()))


def make_app(
    engine: FleetEngineAPI,
    *,
    read_only: bool = False,
    mouse: bool = False,
    clock: Callable[[], float] = time.time,  # injected in tests: a frozen clock
    ascii_only: bool | None = None,
    diff_command: str | None = None,
    theme: str = "textual-dark",
    cursor_blink: bool = True,
) -> FleetdeckApp:
    """Build the console for ``engine``.

    Args:
        engine: anything implementing ``FleetEngineAPI`` (the real engine, or a fake in tests).
        read_only: audit mode; also on when ``engine.read_only`` is.
        mouse: enable mouse reporting (off by default: motion events are costly over SSH).
        clock: Unix time now, for ages.
        ascii_only: force ASCII glyphs and borders; ``None`` decides from the locale.
        diff_command: external diff program; defaults to ``$FLEETDECK_DIFF``.
        theme: Textual theme name.
        cursor_blink: blink text cursors (off for deterministic screenshots).

    Returns:
        The app, ready for ``run()``.
    """
    ctx = ConsoleContext(
        engine=engine,
        read_only=read_only or bool(getattr(engine, "read_only", False)),
        clock=clock,
        glyphs=default_glyphs(ascii_only=ascii_only),
        diff_command=diff_command if diff_command is not None else os.environ.get("FLEETDECK_DIFF"),
        cursor_blink=cursor_blink,
    )
    return FleetdeckApp(ctx, mouse=mouse, theme=theme)
