"""``ThreadedEngine``: the engine on its own thread, behind the ``FleetEngineAPI`` protocol.

The console holds a ``ThreadedEngine``; each call is marshalled to the engine's loop (see
``core.loop_thread``), so a stalled terminal never stalls the watchers. The engine itself is built on
the engine thread by a factory, because its asyncio objects must belong to that loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING

from core.loop_thread import EngineThread
from core.model import (
    AppEvents,
    FleetSnapshot,
    OperationState,
    ResourceKey,
    ResourceStatus,
    Revision,
    SyncPlan,
)

if TYPE_CHECKING:
    from core.engine.fleet_engine import FleetEngine


class ThreadedEngine:
    """Implements ``core.api.FleetEngineAPI`` by forwarding to a ``FleetEngine`` on its own loop.

    Args:
        factory: builds the engine; called on the engine thread at ``start``.
        read_only: what the console shows before the engine has started.
        placeholder: what the console shows while the engine is built and started (``loading_snapshot``:
            every row listed, loading), if anything.
    """

    def __init__(self, factory: Callable[[], FleetEngine], *, read_only: bool = False,
                 placeholder: FleetSnapshot | None = None) -> None:
        self._factory = factory
        self._thread: EngineThread | None = None
        self._engine: FleetEngine | None = None
        self.read_only = read_only
        self.placeholder = placeholder
        """Shown by the console before the first snapshot; never published by the engine."""

    @property
    def engine(self) -> FleetEngine:
        """The engine (after ``start``)."""
        if self._engine is None:
            if self._thread is not None:
                raise RuntimeError("the engine is still starting; try again in a moment")
            raise RuntimeError("the engine has not been started")
        return self._engine

    async def _build(self) -> FleetEngine:
        engine = self._factory()
        await engine.start()
        return engine

    async def start(self) -> None:
        """Start the engine thread, build the engine there and start it."""
        self._thread = EngineThread()
        self._engine = await self._thread.call(self._build())
        self.read_only = self._engine.read_only

    async def stop(self) -> None:
        """Stop the engine and its thread."""
        if self._thread is None:
            return
        if self._engine is not None:
            await self._thread.call(self._engine.stop())
        self._thread.close()
        self._thread = None

    def _t(self) -> EngineThread:
        if self._thread is None:
            raise RuntimeError("the engine has not been started")
        return self._thread

    async def wait_ready(self, timeout: float = 30.0) -> FleetSnapshot:
        """Forwarded to ``FleetEngine.wait_ready``."""
        return await self._t().call(self.engine.wait_ready(timeout))

    def snapshots(self) -> AsyncIterator[FleetSnapshot]:
        """Snapshots from the engine thread, newest only."""
        return self._t().iterate(lambda: self.engine.snapshots(), latest_only=True)

    async def refresh(self, app: str | None = None, cluster: str | None = None, *, hard: bool = False) -> None:
        """Forwarded to ``FleetEngine.refresh``."""
        await self._t().call(self.engine.refresh(app, cluster, hard=hard))

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
        """Forwarded to ``FleetEngine.plan_sync``."""
        return await self._t().call(self.engine.plan_sync(
            app, cluster, prune=prune, dry_run=dry_run, resources=resources, force_replace=force_replace,
            allow_non_descendant=allow_non_descendant, force_conflicts=force_conflicts,
            sync_options=tuple(sync_options), controller_dry_run=controller_dry_run,
        ))

    async def plan_rollback(self, app: str, cluster: str, revision: str) -> SyncPlan:
        """Forwarded to ``FleetEngine.plan_rollback``."""
        return await self._t().call(self.engine.plan_rollback(app, cluster, revision))

    def execute_plan(self, plan: SyncPlan) -> AsyncIterator[OperationState]:
        """Forwarded to ``FleetEngine.execute_plan``: progress of the operation, every state delivered."""
        return self._t().iterate(lambda: self.engine.execute_plan(plan), latest_only=False)

    async def sync_automated_apps(self, *, wait: bool = False) -> None:
        """Forwarded to ``FleetEngine.sync_automated_apps``."""
        await self._t().call(self.engine.sync_automated_apps(wait=wait))

    async def preview(self, app: str, cluster: str, revision: str) -> tuple[ResourceStatus, ...]:
        """Forwarded to ``FleetEngine.preview``."""
        return await self._t().call(self.engine.preview(app, cluster, revision))

    async def revisions(self, app: str, cluster: str, *, limit: int = 50) -> tuple[Revision, ...]:
        """Forwarded to ``FleetEngine.revisions``."""
        return await self._t().call(self.engine.revisions(app, cluster, limit=limit))

    async def app_events(self, app: str, cluster: str) -> AppEvents:
        """Forwarded to ``FleetEngine.app_events``."""
        return await self._t().call(self.engine.app_events(app, cluster))

    async def pause(self, app: str, cluster: str, *, reason: str, expires_in: float | None = None) -> None:
        """Forwarded to ``FleetEngine.pause``."""
        await self._t().call(self.engine.pause(app, cluster, reason=reason, expires_in=expires_in))

    async def resume(self, app: str, cluster: str) -> None:
        """Forwarded to ``FleetEngine.resume``."""
        await self._t().call(self.engine.resume(app, cluster))
