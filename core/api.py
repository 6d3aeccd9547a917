"""The engine's public surface, as the console and the command line see it.

``FleetEngineAPI`` is a Protocol so the console's tests can drive a fake engine. Every method is safe
to call from the console's event loop: the real engine runs on its own loop in its own thread and
marshals each call there. Only frozen values from ``core.model`` cross this boundary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from core.model import (
    AppEvents,
    FleetSnapshot,
    OperationState,
    ResourceKey,
    ResourceStatus,
    Revision,
    SyncPlan,
)


class FleetEngineAPI(Protocol):
    """What the console and the CLI may ask of the engine."""

    read_only: bool
    """True when every mutating action is refused by the core."""

    async def start(self) -> None:
        """Connect to clusters, fetch the repo and begin publishing snapshots."""
        ...

    async def stop(self) -> None:
        """Stop watchers and release connections."""
        ...

    async def wait_ready(self, timeout: float = 30.0) -> FleetSnapshot:
        """Wait until every cluster has listed once (or is known unreachable) and a snapshot is out; that
        snapshot. A one-shot engine also waits for the dry runs that snapshot asked for."""
        ...

    def snapshots(self) -> AsyncIterator[FleetSnapshot]:
        """The current snapshot, then each newer one (newest wins; none is queued)."""
        ...

    async def refresh(self, app: str | None = None, cluster: str | None = None, *, hard: bool = False) -> None:
        """Fetch Git now and recompute; ``hard`` also drops the render and dry-run caches."""
        ...

    async def plan_sync(
        self,
        app: str,
        cluster: str,
        *,
        prune: bool = False,
        dry_run: bool = False,
        resources: Sequence[ResourceKey] = (),
        force_replace: bool = False,
        allow_non_descendant: bool = False,
        force_conflicts: bool = False,
        sync_options: Sequence[str] = (),
        controller_dry_run: bool = False,
    ) -> SyncPlan:
        """What a sync would do, for the operator to confirm. Never writes. A revision that does not descend
        from the one last synced (``SyncPlan.non_descendant``) runs only with ``allow_non_descendant``; fields
        another field manager owns (``SyncPlan.takeovers``) are taken over only with ``force_conflicts``.
        ``sync_options`` (``core.controller_options``) and ``controller_dry_run`` go to the owning controller
        (Argo CD's ``operation.sync.syncOptions`` / ``dryRun``): a row whose owner has none (fleetdeck, Flux)
        gets a blocked plan saying so, never a plan that ignores them. ``dry_run`` is fleetdeck's own."""
        ...

    async def plan_rollback(self, app: str, cluster: str, revision: str) -> SyncPlan:
        """What rolling back to ``revision`` would do. Never writes."""
        ...

    def execute_plan(self, plan: SyncPlan) -> AsyncIterator[OperationState]:
        """Execute a confirmed sync or rollback plan (the only call that applies objects), yielding its
        progress; the last value is the result."""
        ...

    async def sync_automated_apps(self, *, wait: bool = False) -> None:
        """One round of Argo CD's auto-sync decision over every app whose policy is automated, on each
        cluster whose automation Lease this process holds (or can take). Each sync it decides is started in
        the background and this returns without waiting for it; with ``wait`` it returns when every one of
        them has ended. The engine also does this by itself every 2 s unless it is one-shot or read-only;
        the headless agent (``core.engine.agent``) calls it with ``wait`` for ``agent --once``."""
        ...

    async def preview(self, app: str, cluster: str, revision: str) -> tuple[ResourceStatus, ...]:
        """The app's resources as they would compare if ``revision`` were desired (rollback preview)."""
        ...

    async def revisions(self, app: str, cluster: str, *, limit: int = 50) -> tuple[Revision, ...]:
        """Git revisions that changed the app's rendered output, newest first."""
        ...

    async def app_events(self, app: str, cluster: str) -> AppEvents:
        """The Kubernetes Events of the app's objects and of the objects they own on ``cluster``: Warnings
        first, duplicates folded, capped. Events are listed and watched from the first call on."""
        ...

    async def pause(self, app: str, cluster: str, *, reason: str, expires_in: float | None = None) -> None:
        """Stop automated syncs of the app on the cluster."""
        ...

    async def resume(self, app: str, cluster: str) -> None:
        """Clear a pause and any rollback pin."""
        ...
