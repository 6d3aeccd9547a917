"""FakeEngine: a scripted, recording stand-in for the engine, implementing ``FleetEngineAPI``.

Tests give it a finite list of snapshots (so ``app.workers.wait_for_complete()`` returns) and read what
the console asked for: plans, runs, pauses, resumes, refreshes. ``live=True`` keeps the stream open and
publishes a new snapshot after each run or pause, which is how ``run_fake.py`` behaves like a fleet.
Like the real core, it refuses mutations in read-only mode.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from core.engine.takeover import takeovers
from core.errors import FieldConflictError, FleetdeckError, NotAcknowledgedError, ReadOnlyError
from core.model import (
    AppControl,
    AppEvents,
    AppName,
    ClusterName,
    EventRecord,
    FleetSnapshot,
    OperationPhase,
    OperationState,
    Owner,
    PlanStep,
    ResourceKey,
    ResourceState,
    ResourceStatus,
    Revision,
    Severity,
    SyncAction,
    SyncPlan,
    SyncResultEntry,
)
from core.sync.owners.argocd import ArgoCDDriver
from core.sync.owners.base import SyncRequest
from tests.fixtures.snapshots import NOW, REVISIONS, synced, with_app

_ACTION_OF = {
    ResourceState.MISSING: SyncAction.CREATED,
    ResourceState.OUT_OF_SYNC: SyncAction.CONFIGURED,
}


@dataclass
class FakeEngine:
    """Scripted snapshots in, recorded calls out."""

    scripted: Sequence[FleetSnapshot]
    read_only: bool = False
    live: bool = False
    """Keep the snapshot stream open and publish follow-up snapshots (for a person at a terminal)."""
    hold_run: asyncio.Event | None = None
    """When set, ``execute_plan`` pauses after its first progress until the event is set (sync in progress)."""
    errors: dict[str, FleetdeckError] = field(default_factory=dict)
    """Method name → error it raises."""
    revision_list: tuple[Revision, ...] = REVISIONS
    """What ``revisions`` returns."""
    run_delay: float = 0.0
    fail_runs: bool = False
    """Runs end Failed (a resource rejected) instead of Succeeded."""
    """Seconds between progress reports (only ``run_fake.py`` uses a delay)."""
    event_lines: dict[tuple[str, str], tuple[EventRecord, ...]] = field(default_factory=dict)
    """What ``app_events`` returns per (app, cluster)."""
    events_error: str = ""
    """``AppEvents.error`` of every answer (``events not readable: forbidden``)."""
    field_takeovers: bool = False
    """Plans list the fields they take over from other field managers (``core.engine.takeover``, as the real
    engine always does); off by default so the console tests of other features need no extra confirmation."""
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    plans: list[SyncPlan] = field(default_factory=list)
    runs: list[SyncPlan] = field(default_factory=list)
    pauses: list[tuple[str, str, str, float | None]] = field(default_factory=list)
    resumes: list[tuple[str, str]] = field(default_factory=list)
    refreshes: list[tuple[str | None, str | None, bool]] = field(default_factory=list)
    started: bool = False
    stopped: bool = False

    def __post_init__(self) -> None:
        self.current: FleetSnapshot | None = self.scripted[-1] if self.scripted else None
        self._published = asyncio.Event()

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if name in self.errors:
            raise self.errors[name]

    def _refuse(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyError(what)

    async def start(self) -> None:
        """Nothing to connect to."""
        self._record("start")
        self.started = True

    async def stop(self) -> None:
        """Nothing to release."""
        self._record("stop")
        self.stopped = True

    async def wait_ready(self, timeout: float = 30.0) -> FleetSnapshot:
        """The current snapshot (nothing to wait for)."""
        self._record("wait_ready", timeout)
        if self.current is None:
            raise RuntimeError("no snapshot scripted")
        return self.current

    async def sync_automated_apps(self, *, wait: bool = False) -> None:
        """Nothing is automated here."""
        self._record("sync_automated_apps", wait)
        self._refuse("automated syncs")

    async def snapshots(self) -> AsyncIterator[FleetSnapshot]:
        """The scripted snapshots, then (live only) every published one."""
        for snapshot in self.scripted:
            yield snapshot
        while self.live:
            await self._published.wait()
            self._published.clear()
            if self.current is not None:
                yield self.current

    def publish(self, snapshot: FleetSnapshot) -> None:
        """Make ``snapshot`` current (live mode streams it)."""
        self.current = snapshot
        self._published.set()

    async def refresh(self, app: str | None = None, cluster: str | None = None, *, hard: bool = False) -> None:
        """Record the request."""
        self._record("refresh", app, cluster, hard)
        self.refreshes.append((app, cluster, hard))

    def _app(self, app: str, cluster: str) -> Any:
        status = self.current.app(app, cluster) if self.current else None
        if status is None:
            raise FleetdeckError(f"no app {app} on cluster {cluster}", title="Unknown app")
        return status

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
        """A plan from the current snapshot: drifted resources, prune as asked, blocked when unsafe; the row's
        ``non_descendant`` carried over (acknowledged with ``allow_non_descendant``); controller sync options
        and the controller's dry run block the plan of a row Argo CD does not own, as the engine's do."""
        self._record("plan_sync", app, cluster, prune, dry_run, tuple(resources))
        if sync_options or controller_dry_run:
            self._record("plan_sync_controller", app, cluster, tuple(sync_options), controller_dry_run)
        status = self._app(app, cluster)
        steps = tuple(_step(r, prune) for r in status.resources if _in_plan(r, resources))
        blocked = ""
        if (sync_options or controller_dry_run) and status.owner is not Owner.ARGOCD:
            blocked = f"{status.app} on {cluster} is owned by {status.owner.value}: sync options and the " \
                      "controller's dry run are Argo CD's"
        elif status.stale:
            blocked = f"cluster {cluster} is unreachable: its state is stale"
        elif any(c.severity is Severity.ERROR for c in status.conditions):
            blocked = f"render failed: {status.conditions[0].message}"
        plan = SyncPlan(app=AppName(app), cluster=ClusterName(cluster), revision=status.revision.sha if
                        status.revision else "", steps=steps, prune=prune, dry_run=dry_run,
                        selected=tuple(resources), blocked=blocked, synced_revision=status.synced_revision or "",
                        non_descendant=status.non_descendant,
                        non_descendant_allowed=allow_non_descendant and bool(status.non_descendant))
        if status.owner is Owner.ARGOCD and status.controller is not None and not blocked:
            request = SyncRequest(revision=plan.revision, prune=prune, resources=tuple(resources),
                                  sync_options=tuple(sync_options), by="tester", dry_run=controller_dry_run)
            patches = ArgoCDDriver().sync(status.controller, {}, request, lambda key, cluster: None)
            plan = replace(plan, owner=Owner.ARGOCD, steps=(), patches=patches)
        if self.field_takeovers:
            taken = takeovers(steps, status.resources, field_manager="fleetdeck")
            plan = replace(plan, takeovers=taken, takeovers_allowed=force_conflicts and bool(taken))
        self.plans.append(plan)
        return plan

    async def plan_rollback(self, app: str, cluster: str, revision: str) -> SyncPlan:
        """A rollback plan configuring every managed resource."""
        self._record("plan_rollback", app, cluster, revision)
        status = self._app(app, cluster)
        steps = tuple(PlanStep(r.key, SyncAction.CONFIGURED) for r in status.resources if r.managed)
        plan = SyncPlan(app=AppName(app), cluster=ClusterName(cluster), revision=revision, steps=steps,
                        kind="rollback")
        self.plans.append(plan)
        return plan

    async def execute_plan(self, plan: SyncPlan) -> AsyncIterator[OperationState]:
        """Pending, one Running per step, then Succeeded; live mode then publishes the synced row."""
        self._record("execute_plan", plan)
        self._refuse(f"sync {plan.app} on {plan.cluster}")
        if plan.needs_acknowledgement:  # like the core: history is replaced only when acknowledged
            raise NotAcknowledgedError(f"sync of {plan.app} on {plan.cluster} refused: {plan.non_descendant}")
        if plan.needs_takeover_confirmation:
            raise FieldConflictError(f"sync of {plan.app} on {plan.cluster} refused: it {plan.takeover_summary}")
        self.runs.append(plan)
        state = OperationState(id=f"op-{len(self.runs)}", app=plan.app, cluster=plan.cluster, kind=plan.kind,
                               revision=plan.revision, phase=OperationPhase.RUNNING, dry_run=plan.dry_run,
                               started_at=NOW, by="tester")
        yield replace(state, phase=OperationPhase.PENDING)
        for index, step in enumerate(plan.steps):
            entry = SyncResultEntry(step.key, SyncAction.SKIPPED if plan.dry_run else step.action)
            state = replace(state, entries=(*state.entries, entry), message=f"applied {step.key.short}")
            yield state
            if index == 0 and self.hold_run is not None:
                await self.hold_run.wait()
            if self.run_delay:
                await asyncio.sleep(self.run_delay)
        if self.fail_runs:
            yield replace(state, phase=OperationPhase.FAILED, finished_at=NOW, message="stopped at wave 0")
            return
        yield replace(state, phase=OperationPhase.SUCCEEDED, finished_at=NOW, message="")
        if self.live and self.current is not None and not plan.dry_run:
            self.publish(with_app(self.current, synced(self._app(plan.app, plan.cluster))))

    async def preview(self, app: str, cluster: str, revision: str) -> tuple[ResourceStatus, ...]:
        """The app's resources, as if ``revision`` were desired: the current drifted ones."""
        self._record("preview", app, cluster, revision)
        return tuple(self._app(app, cluster).resources)

    async def revisions(self, app: str, cluster: str, *, limit: int = 50) -> tuple[Revision, ...]:
        """``revision_list`` (the fixture's four revisions unless given)."""
        self._record("revisions", app, cluster)
        return self.revision_list[:limit]

    async def app_events(self, app: str, cluster: str) -> AppEvents:
        """``event_lines`` of the app (not recorded in ``calls``: the app screen asks every second)."""
        if "app_events" in self.errors:
            raise self.errors["app_events"]
        return AppEvents(app=AppName(app), cluster=ClusterName(cluster), events=self.event_lines.get((app, cluster), ()),
                         listed=True, error=self.events_error, taken_at=NOW)

    async def pause(self, app: str, cluster: str, *, reason: str, expires_in: float | None = None) -> None:
        """Record the pause; live mode publishes it."""
        self._record("pause", app, cluster, reason, expires_in)
        self._refuse(f"pause {app} on {cluster}")
        self.pauses.append((app, cluster, reason, expires_in))
        if self.live and self.current is not None:
            status = self._app(app, cluster)
            control = AppControl(paused=True, reason=reason, by="you", at=NOW,
                                 expires_at=NOW + expires_in if expires_in else None)
            self.publish(with_app(self.current, replace(status, control=control)))

    async def resume(self, app: str, cluster: str) -> None:
        """Record the resume; live mode publishes it."""
        self._record("resume", app, cluster)
        self._refuse(f"resume {app} on {cluster}")
        self.resumes.append((app, cluster))
        if self.live and self.current is not None:
            self.publish(with_app(self.current, replace(self._app(app, cluster), control=AppControl())))


def _in_plan(status: ResourceStatus, selected: Sequence[ResourceKey]) -> bool:
    if not status.managed or not status.state.drifted:
        return False
    return not selected or status.key in selected


def _step(status: ResourceStatus, prune: bool) -> PlanStep:
    if status.state is ResourceState.EXTRANEOUS:
        action = SyncAction.PRUNED if prune else SyncAction.PRUNE_SKIPPED
        return PlanStep(status.key, action, reason="" if prune else "prune is off")
    return PlanStep(status.key, _ACTION_OF[status.state], wave=status.wave)
