"""The dispatch point for apps that a controller owns (Argo CD, Flux): plans and actions through its object.

``Actions`` asks ``OwnedActions.driver_for(row)`` first in every verb (sync, rollback, pause, resume,
refresh); None means fleetdeck owns the row and ``Actions``' own path runs, unchanged. For a controller
owner the plan carries exactly the patches the action writes (``SyncPlan.patches``), and running it writes
exactly them through ``core.sync.owners.base.run_controller_action``: the cluster's guarded client (the
read-only chokepoint), the journal, and the app's operation Lease in its destination cluster, as for
fleetdeck's own syncs. docs/owners.md.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from core.errors import FleetdeckError, ReadOnlyError
from core.journal import Journal
from core.model import (
    AppStatus,
    ControllerPatch,
    ControllerRef,
    OperationState,
    Owner,
    PlanStep,
    ResourceKey,
    SyncPlan,
)
from core.settings import EngineSettings
from core.sync.owners import (
    DRIVERS,
    ControllerDriver,
    PauseRequest,
    Refused,
    SyncRequest,
    run_controller_action,
)

if TYPE_CHECKING:
    from core.engine.clusters import ClusterRuntime

READ_ONLY = "read-only mode: fleetdeck refuses every change, dry runs included"


def controller_options_refused(row: AppStatus, sync_options: Sequence[str], controller_dry_run: bool) -> str:
    """Why a fleetdeck-owned row refuses a controller's sync options or its dry run ("" when none was asked):
    fleetdeck's own sync has neither, and ignoring them would sync something other than what was asked."""
    asked = [f"--sync-option {o}" for o in sync_options] + (["--controller-dry-run"] if controller_dry_run else [])
    if not asked:
        return ""
    return (f"{', '.join(asked)}: {row.app} on {row.cluster} is owned by fleetdeck, and these are Argo CD's "
            "(operation.sync.syncOptions / operation.sync.dryRun), for an app an Application owns; fleetdeck's "
            "own dry run is --dry-run")


class OwnedActions:
    """Plans and actions of controller-owned rows.

    Args:
        clusters: the cluster runtimes by name (the controller object may live in another cluster: a hub).
        journal: the operator journal.
        settings: engine settings (the Lease's timing).
        read_only: the fleet's read-only flag.
        clock: the wall clock.
    """

    def __init__(self, *, clusters: Mapping[str, ClusterRuntime], journal: Journal, settings: EngineSettings,
                 read_only: bool, clock: Callable[[], float] = time.time) -> None:
        self.clusters = clusters
        self.journal = journal
        self.settings = settings
        self.read_only = read_only
        self.clock = clock

    # ------------------------------------------------------------------------------------ dispatch

    def driver_for(self, row: AppStatus) -> ControllerDriver | None:
        """The row's owner backend: None for fleetdeck (``Actions``' own path), else the controller driver.

        Raises:
            FleetdeckError: no driver for the owner in this build.
        """
        if row.owner is Owner.FLEETDECK:
            return None
        driver = DRIVERS.get(row.owner)
        if driver is None:
            raise FleetdeckError(f"{row.app} on {row.cluster} is owned by {row.owner.value}, and this build of "
                                 f"fleetdeck has no {row.owner.value} backend", title="No owner backend")
        return driver

    def object_of(self, ref: ControllerRef) -> Mapping[str, Any] | None:
        """The controller object as the cache last saw it."""
        return self._object(ref)

    def _object(self, ref: ControllerRef) -> Mapping[str, Any] | None:
        runtime = self.clusters.get(ref.cluster)
        return runtime.cache.get(ref.key) if runtime is not None else None

    def _lookup(self, cluster: str, key: ResourceKey) -> Mapping[str, Any] | None:
        runtime = self.clusters.get(cluster)
        return runtime.cache.get(key) if runtime is not None else None

    def read_only_for(self, row: AppStatus) -> bool:
        """Whether the row may not be changed (the fleet, its cluster or the controller's cluster is read-only)."""
        names = {row.cluster, *([row.controller.cluster] if row.controller is not None else [])}
        return self.read_only or any(self.clusters[n].read_only for n in names if n in self.clusters)

    def _patches(self, row: AppStatus, build: Callable[[ControllerRef, Mapping[str, Any]],
                                                       tuple[ControllerPatch, ...]]) -> tuple[tuple[ControllerPatch, ...], str]:
        """The patches ``build`` makes from the row's controller object, or () and why not."""
        ref = row.controller
        if ref is None:
            return (), (f"{row.app} on {row.cluster} is owned by {row.owner.value} (fleet file), but no "
                        f"{row.owner.value} object managing it was found")
        obj = self._object(ref)
        if obj is None:
            return (), f"{ref} on {ref.cluster} is not in the cache (deleted, or its cluster not listed yet)"
        try:
            return build(ref, obj), ""
        except Refused as exc:
            return (), f"{ref}: {exc.message}"

    def _blocked(self, row: AppStatus, why: str) -> str:
        if row.stale:
            why = why or f"cluster {row.cluster} is not connected: its live state is not current"
        return why or (READ_ONLY if self.read_only_for(row) else "")

    def _warning(self, row: AppStatus, dry_run: bool) -> str:
        ref = row.controller
        what = f"{ref} on {ref.cluster}" if ref is not None else row.owner.value
        verb = "sends these patches through the API server's dry run (nothing is stored)" if dry_run else \
            "writes only the patches below"
        return f"{row.app} on {row.cluster} is owned by {row.owner.value} ({what}): fleetdeck {verb}; " \
               f"{row.owner.value} applies the app's objects (the steps are fleetdeck's own comparison)"

    # ------------------------------------------------------------------------------------ plans

    async def plan_sync(self, row: AppStatus, driver: ControllerDriver, *, prune: bool, dry_run: bool,
                        resources: Sequence[ResourceKey], steps: tuple[PlanStep, ...],
                        sync_options: Sequence[str] = (), controller_dry_run: bool = False) -> SyncPlan:
        """The sync plan of a controller-owned row: the patches that make the controller sync (with the
        controller's sync options and its own dry run when asked; a driver that has neither refuses them)."""
        runtime = self.clusters[row.cluster]
        revision = row.revision.sha if row.revision else ""
        request = SyncRequest(revision=revision, prune=prune, resources=tuple(resources), by=runtime.identity.by,
                              sync_options=tuple(sync_options), dry_run=controller_dry_run)
        patches, why = self._patches(row, lambda ref, obj: driver.sync(ref, obj, request, self._lookup))
        warnings: tuple[str, ...] = (self._warning(row, dry_run),)
        if controller_dry_run:
            warnings += (f"{row.owner.value} runs this sync as its own dry run (operation.sync.dryRun): the "
                         f"operation is written and {row.owner.value} reports what it would do, applying nothing",)
        return SyncPlan(app=row.app, cluster=row.cluster, revision=revision, steps=steps, prune=prune,
                        dry_run=dry_run, selected=tuple(resources), blocked=self._blocked(row, why),
                        warnings=warnings, owner=row.owner, patches=patches)

    async def plan_rollback(self, row: AppStatus, driver: ControllerDriver, revision: str) -> SyncPlan:
        """The rollback plan of a controller-owned row (automation paused and recorded, then the sync)."""
        runtime = self.clusters[row.cluster]
        patches, why = self._patches(row, lambda ref, obj: driver.rollback(ref, obj, revision, runtime.identity.by,
                                                                            self._lookup))
        known: tuple[str, ...] = ()
        if row.controller is not None and (obj := self._object(row.controller)) is not None:
            known = driver.rollback_revisions(obj)
        sha = next((r for r in known if r.startswith(revision)), revision) if revision else revision
        return SyncPlan(app=row.app, cluster=row.cluster, revision=sha, steps=(), kind="rollback",
                        blocked=self._blocked(row, why), owner=row.owner, patches=patches,
                        warnings=(self._warning(row, False),
                                  f"{row.owner.value}'s automated sync is turned off first and recorded on the "
                                  "object (fleetdeck resume restores it)"))

    # ------------------------------------------------------------------------------------ running

    async def execute(self, plan: SyncPlan, row: AppStatus) -> AsyncIterator[OperationState]:
        """Write a confirmed plan's patches (exactly them); yields the result."""
        runtime = self.clusters[plan.cluster]
        who = runtime.identity
        details = {"owner": plan.owner.value, "revision": plan.revision, "dry_run": plan.dry_run,
                   "patches": [f"{p.cluster}: {p.key.kind} {p.key.namespace}/{p.key.name}: {p.text}"
                               for p in plan.patches]}
        if plan.blocked or self.read_only_for(row):
            why = plan.blocked or READ_ONLY
            await self.journal.record(who=who, action=plan.kind, app=plan.app, cluster=plan.cluster,
                                      result="refused", message=why, details=details)
            if not plan.blocked:
                raise ReadOnlyError(f"{plan.kind} {plan.app} on {plan.cluster}")
            raise FleetdeckError(f"{plan.kind} of {plan.app} on {plan.cluster} refused: {why}", title="Refused")
        yield await self._run(plan.kind, row, plan.revision, plan.patches, dry_run=plan.dry_run)

    async def _run(self, action: str, row: AppStatus, revision: str, patches: Sequence[ControllerPatch], *,
                   dry_run: bool = False) -> OperationState:
        runtime = self.clusters[row.cluster]
        return await run_controller_action(
            action=action, owner=row.owner, app=row.app, cluster=row.cluster, revision=revision, patches=patches,
            apis={name: r.api for name, r in self.clusters.items()},
            resource_for=lambda cluster, key: self.clusters[cluster].watcher.resource_for(key.group, key.kind),
            lease_api=runtime.api, journal=self.journal, identity=runtime.identity, dry_run=dry_run,
            settings=self.settings.sync, clock=self.clock)

    async def control(self, action: str, row: AppStatus, driver: ControllerDriver, *, reason: str = "",
                      expires_in: float | None = None) -> OperationState:
        """Pause, resume or refresh through the owner (journalled; refused in read-only mode, journalled).

        Raises:
            ReadOnlyError: read-only mode (nothing written).
            FleetdeckError: the controller object cannot take the action (nothing written).
        """
        runtime = self.clusters[row.cluster]
        who = runtime.identity
        expires_at = self.clock() + expires_in if expires_in else None
        if action == "pause":
            request = PauseRequest(reason=reason, by=who.by, expires_at=expires_at)
            patches, why = self._patches(row, lambda ref, obj: driver.pause(ref, obj, request, self._lookup))
        elif action == "resume":
            patches, why = self._patches(row, lambda ref, obj: driver.resume(ref, obj, self._lookup))
        else:
            patches, why = self._patches(row, lambda ref, obj: driver.refresh(ref, obj, self._lookup))
        details: dict[str, Any] = {"owner": row.owner.value, "reason": reason, "expires_in": expires_in,
                                   "patches": [f"{p.cluster}: {p.key.kind} {p.key.namespace}/{p.key.name}: {p.text}"
                                               for p in patches]}
        if self.read_only_for(row):
            await self.journal.record(who=who, action=action, app=row.app, cluster=row.cluster, result="refused",
                                      message="read-only mode", details=details)
            raise ReadOnlyError(f"{action} {row.app} on {row.cluster}")
        if why:
            await self.journal.record(who=who, action=action, app=row.app, cluster=row.cluster, result="refused",
                                      message=why, details=details)
            raise FleetdeckError(f"{action} of {row.app} on {row.cluster} refused: {why}", title="Refused")
        state = await self._run(action, row, "", patches)
        if state.phase.value != "Succeeded":
            raise FleetdeckError(f"{action} of {row.app} on {row.cluster} failed: {state.message}")
        return state

