"""What operators (and automation) do to the fleet: plan, sync, roll back, pause, resume.

Plans are built from the current evaluation and never write. ``Actions.execute_plan`` builds a
``core.sync.operation.SyncOperation`` from a confirmed plan and executes it, publishing each
``OperationState`` in the snapshot and yielding it to the caller. Every action and every refusal is journalled; a journal that cannot be
written refuses the action. Automation runs only where this process holds the cluster's automation
Lease and only with Argo CD's safeguards (``core.sync.automation``).

``Actions`` never sees the engine: it reads targets, rows and desired state through ``FleetAccess`` (callables
the engine passes in) and the cluster runtimes, repo, lineage checks and journal it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from core.desired.repo import ConfigRepo, Lineage
from core.engine.evaluate import LiveView
from core.engine.lineage import LineageChecks, describe, dropped_summary
from core.engine.owned import OwnedActions, controller_options_refused
from core.engine.takeover import takeovers
from core.engine.targets import Desired, Target
from core.errors import FieldConflictError, FleetdeckError, NotAcknowledgedError, ReadOnlyError
from core.journal import Journal
from core.model import (
    AppName,
    AppStatus,
    ClusterName,
    OperationPhase,
    OperationState,
    Owner,
    PlanStep,
    ResourceKey,
    ResourceState,
    ResourceStatus,
    SyncAction,
    SyncPhase,
    SyncPlan,
)
from core.reconcile.health import ScriptedHealth
from core.reconcile.hooks import hook_steps
from core.reconcile.owners import pause_expired
from core.reconcile.plan import prunable
from core.settings import EngineSettings
from core.sync.automation import AppInputs, AutoSyncPolicy, LastOperation, decide_auto_sync
from core.sync.kinds import crd_kind, is_crd
from core.sync.operation import OperationOptions, SyncOperation
from core.sync.state import NAMESPACES

if TYPE_CHECKING:
    from core.engine.clusters import ClusterRuntime, Spawn

log = logging.getLogger(__name__)

_STEP_FOR_STATE = {
    ResourceState.MISSING: SyncAction.CREATED,
    ResourceState.OUT_OF_SYNC: SyncAction.CONFIGURED,
    ResourceState.SYNCED: SyncAction.UNCHANGED,
}


def plan_steps(resources: Sequence[ResourceStatus], *, prune: bool,
               selected: Sequence[ResourceKey] = ()) -> tuple[PlanStep, ...]:
    """The steps a sync of these resources takes (predicted actions, in wave then key order)."""
    steps = []
    for r in resources:
        if not r.managed or (selected and r.key not in selected):
            continue
        if r.state is ResourceState.EXTRANEOUS:
            action = SyncAction.PRUNED if prune else SyncAction.PRUNE_SKIPPED
            steps.append(PlanStep(r.key, action, r.wave, "" if prune else "prune not enabled"))
        elif r.state in _STEP_FOR_STATE:
            steps.append(PlanStep(r.key, _STEP_FOR_STATE[r.state], r.wave, r.diff.message if r.state is
                                  ResourceState.OUT_OF_SYNC else ""))
        else:
            steps.append(PlanStep(r.key, SyncAction.FAILED, r.wave, f"{r.state.value}: {r.diff.message}"))
    return tuple(sorted(steps, key=lambda s: (s.wave, s.key)))


def with_hooks(steps: Sequence[PlanStep], desired: Desired) -> tuple[PlanStep, ...]:
    """``steps`` and the desired state's hook steps, in run order: phase, then wave (resource steps keep
    their order inside a wave)."""
    merged = [*steps, *hook_steps(desired.objects)]
    return tuple(sorted(merged, key=lambda s: (s.phase.rank, s.wave)))


def hooks_before_namespace(steps: Sequence[PlanStep], view: LiveView, *, created_first: str) -> tuple[str, ...]:
    """A warning per namespace that PreSync hooks need but that does not exist yet and is created only in the
    Sync phase (as in Argo CD, such a hook fails); the destination namespace is created before PreSync."""
    needed = sorted({s.key.namespace for s in steps
                     if s.hook and s.phase is SyncPhase.PRE_SYNC and s.action is SyncAction.CREATED})
    return tuple(
        f"PreSync hooks in namespace {ns} run before the Sync phase creates it: they will fail (make it the "
        "app's destination namespace, or create it first)"
        for ns in needed if ns and ns != created_first and view.get(ResourceKey("", "Namespace", "", ns)) is None)


def blocked_reason(row: AppStatus, desired: Desired, runtime: ClusterRuntime, *, prune: bool,
                   allow_empty: bool) -> str:
    """Why a plan must not run, or ``""``."""
    if desired.error:
        return f"the desired state does not render: {desired.error}"
    if not row.stale and not runtime.view.listed and (pending := runtime.cache.first_lists_pending):
        kinds = ", ".join(kind for _, kind in pending[:3]) + (" …" if len(pending) > 3 else "")
        return (f"cluster {row.cluster} is still listing ({kinds} not listed yet): its live state is not complete "
                "yet; try again once the header no longer says listing")
    if row.stale or not runtime.view.listed:
        return f"cluster {row.cluster} is {runtime.cache.state.value.lower()}: its live state is not current"
    invalid = [r for r in row.resources if r.managed and r.state is ResourceState.INVALID]
    if invalid:
        return f"{invalid[0].key.short} is rejected by the API server: {invalid[0].diff.message}"
    if prune and row.revision_stale:
        return "the config repo cannot be fetched: pruning from the last revision fetched is refused"
    if prune and not desired.objects and not allow_empty:
        return "the desired state is empty: pruning would delete every resource of the app (allow_empty is off)"
    return ""


FIRST_LISTS_WAIT = 10.0
"""Seconds a plan waits for a cluster's first lists still under way (a plan asked right after start) before it
is blocked with "still listing"."""

NOT_SERVED = "not served"
DESTINATION_NAMESPACE = "destination namespace"


def unserved_steps(steps: Sequence[PlanStep], desired: Desired, view: LiveView) -> tuple[PlanStep, ...]:
    """``steps`` with every apply of a kind the cluster does not serve (and no CRD of this sync defines)
    turned into a failed step saying so: such an object cannot be created, the plan must not say it will."""
    defined = {crd_kind(obj) for key, obj in desired.objects.items() if is_crd(key)}
    out = []
    for step in steps:
        key = step.key
        applies = step.action in (SyncAction.CREATED, SyncAction.CONFIGURED, SyncAction.UNCHANGED)
        if applies and not view.served(key.group, key.kind) and (key.group, key.kind) not in defined:
            reason = f"{NOT_SERVED}: the cluster does not serve kind {key.kind}.{key.group or 'core'} " \
                     "and no CRD in this sync defines it"
            step = replace(step, action=SyncAction.FAILED, reason=reason)
        out.append(step)
    return tuple(out)


@dataclass(frozen=True)
class FleetAccess:
    """What actions read of the fleet and tell it, as callables the engine passes in."""

    target: Callable[[str, str], Target]
    """The target of (app, cluster), or a ``FleetdeckError`` naming what exists."""
    targets: Callable[[], Iterable[Target]]
    """Every target of the fleet now."""
    desired: Callable[[Target], Desired | None]
    """The target's current desired state (None before its first render)."""
    evaluate: Callable[[Target], AppStatus]
    """The target's row, evaluated now from its desired state and the cache (no side effect)."""
    evaluate_at: Callable[[Target, Desired], AppStatus]
    """The target's row as it would be if ``desired`` were desired (a preview, never published)."""
    published_row: Callable[[Target], AppStatus | None]
    """The target's row in the last published snapshot."""
    render: Callable[[Target, str | None], Awaitable[Desired]]
    """Render the target at a revision (None: its pin, else the branch head, which is then stored)."""
    publish_operation: Callable[[Target, OperationState], None]
    """Show an operation's progress in the target's row at the next publish."""
    mark_dirty: Callable[[tuple[str, str]], None]
    """Re-evaluate one target at the next publish."""
    health_checks: Callable[[], ScriptedHealth | None]
    """The custom health scripts in force now (a sync's health waits use the same ones as the rows)."""
    applied: Callable[[Target, Desired, ResourceKey, Mapping[str, Any], Mapping[str, Any]], None] = \
        lambda target, desired, key, body, answer: None
    """A sync of ``desired`` applied ``body`` at ``key`` and the server answered ``answer`` (the live object now)."""


class Actions:
    """The acting half of the engine.

    Args:
        fleet: targets, rows and desired state, as the engine's callables.
        clusters: the cluster runtimes by name (filled when the engine starts).
        repo: the config repository (revisions to roll back to; its fetch warning).
        lineage: the engine's ancestry checks (force-push detection).
        journal: the operator journal; an action is refused when it cannot be written.
        settings: engine settings (sync).
        read_only: refuse every change.
        spawn: starts a task the engine owns (automation Leases, automated syncs).
        clock: the wall clock.
    """

    def __init__(self, fleet: FleetAccess, *, clusters: Mapping[str, ClusterRuntime], repo: ConfigRepo,
                 lineage: LineageChecks, journal: Journal, settings: EngineSettings, read_only: bool,
                 spawn: Spawn, clock: Callable[[], float] = time.time) -> None:
        self.fleet = fleet
        self.clusters = clusters
        self.repo = repo
        self.lineage = lineage
        self.journal = journal
        self.settings = settings
        self.read_only = read_only
        self.clock = clock
        self._spawn = spawn
        self._running: dict[tuple[str, str], SyncOperation] = {}
        self._last_auto: dict[tuple[str, str], LastOperation] = {}
        """The automated syncs this process ran, as they ended: the cluster's record of them reaches the cache
        a watch event later, and a round deciding in between must not sync the same revision again."""
        self._automating: dict[tuple[str, str], asyncio.Event] = {}
        """Automated syncs started and not yet ended, by target: set when each ends."""
        self._deciding = asyncio.Lock()
        """One automation round decides at a time (the engine's own loop and an explicit call never both
        start a sync of the same app)."""
        self.owned = OwnedActions(clusters=clusters, journal=journal, settings=settings, read_only=read_only,
                                  clock=clock)
        """The dispatch point: every verb asks it for the row's owner backend first (None: fleetdeck's own
        path below, unchanged)."""

    # ------------------------------------------------------------------------------------ plans

    def _row(self, target: Target) -> AppStatus:
        return self.fleet.evaluate(target)

    async def _first_lists(self, cluster: str) -> None:
        """Wait (at most ``FIRST_LISTS_WAIT``) while the cluster's first lists are under way: a row may show a
        verdict once its own kinds are listed, but a plan needs every kind (owners, prune, health)."""
        runtime = self.clusters[cluster]
        if runtime.view.listed or not runtime.cache.first_lists_pending:
            return
        with contextlib.suppress(TimeoutError):  # then the plan is blocked with "still listing", naming the kinds
            await runtime.watcher.wait_until(lambda: runtime.view.listed or not runtime.cache.first_lists_pending,
                                             timeout=FIRST_LISTS_WAIT)

    async def plan_sync(self, app: str, cluster: str, *, prune: bool = False, dry_run: bool = False,
                        resources: Sequence[ResourceKey] = (), force_replace: bool = False,
                        allow_non_descendant: bool = False, force_conflicts: bool = False,
                        sync_options: Sequence[str] = (), controller_dry_run: bool = False) -> SyncPlan:
        """What a sync of ``app`` on ``cluster`` would do, from the current evaluation.

        ``sync_options`` and ``controller_dry_run`` are the owning controller's (Argo CD's ``syncOptions``
        and ``dryRun``); a row that cannot take them (fleetdeck's own, Flux) gets a blocked plan saying so.

        When the revision does not descend from the one last synced on the cluster, ``non_descendant``
        says so and the plan runs only with ``allow_non_descendant`` (the operator's acknowledgement).
        Fields another field manager owns that the sync would set (``takeovers``) likewise need
        ``force_conflicts`` (``core.engine.takeover``)."""
        target = self.fleet.target(app, cluster)
        await self._first_lists(cluster)
        row = self._row(target)
        if (driver := self.owned.driver_for(row)) is not None:
            return await self.owned.plan_sync(row, driver, prune=prune, dry_run=dry_run, resources=resources,
                                              steps=plan_steps(row.resources, prune=prune, selected=resources),
                                              sync_options=sync_options, controller_dry_run=controller_dry_run)
        desired = self.fleet.desired(target) or Desired(None, error="not rendered yet")
        runtime = self.clusters[cluster]
        unknown = [k for k in resources if k not in {r.key for r in row.resources}]
        blocked = blocked_reason(row, desired, runtime, prune=prune, allow_empty=target.app.sync.allow_empty)
        if unknown:
            blocked = blocked or f"{unknown[0]} is not a resource of {app} on {cluster}"
        blocked = controller_options_refused(row, sync_options, controller_dry_run) or blocked
        if self.read_only or runtime.read_only:
            blocked = blocked or "read-only mode: fleetdeck refuses every change, dry runs included"
        steps = plan_steps(row.resources, prune=prune, selected=resources)
        if not resources:  # a selective sync runs no hooks (as in Argo CD)
            steps = with_hooks(steps, desired)
        steps = unserved_steps(steps, desired, runtime.view)
        unserved = [s for s in steps if s.action is SyncAction.FAILED and s.reason.startswith(NOT_SERVED)]
        if unserved:
            blocked = blocked or f"{unserved[0].key.short}: {unserved[0].reason}"
        if prune:
            steps = await self._prune_steps(steps, target, runtime)
        namespace = await self._namespace_step(target, desired, runtime)
        if namespace is not None and not resources:
            steps = (namespace, *steps)
        early = hooks_before_namespace(steps, runtime.view, created_first=namespace.key.name if namespace else "")
        revision = row.revision.sha if row.revision else ""
        lineage = await self._lineage(row, revision)
        non_descendant = describe(lineage, cluster) if lineage is not None else ""
        dropped = dropped_summary(lineage, cluster) if lineage is not None else ""
        taken = takeovers(steps, row.resources, field_manager=self.settings.sync.field_manager)
        return SyncPlan(
            app=AppName(app), cluster=ClusterName(cluster), revision=revision,
            steps=steps, prune=prune, dry_run=dry_run,
            selected=tuple(resources), force_replace=force_replace, blocked=blocked,
            warnings=self._warnings(row) + early + ((dropped,) if dropped else ()),
            synced_revision=row.synced_revision or "", non_descendant=non_descendant,
            non_descendant_allowed=allow_non_descendant and bool(non_descendant),
            takeovers=taken, takeovers_allowed=force_conflicts and bool(taken),
        )

    async def _lineage(self, row: AppStatus, revision: str) -> Lineage | None:
        """How ``revision`` relates to the revision last synced on the cluster; None when there is nothing to
        compare (never synced, the same revision, or the pin: a rollback is the operator's choice)."""
        synced = row.synced_revision
        if not revision or not synced or revision == synced or revision == row.control.pinned:
            return None
        return await self.lineage.check(synced, revision)

    async def _non_descendant(self, target: Target, row: AppStatus, revision: str) -> str:
        """Why syncing ``revision`` would replace history on the cluster, or ""."""
        lineage = await self._lineage(row, revision)
        return describe(lineage, target.cluster.name) if lineage is not None else ""

    async def _check_acknowledged(self, target: Target, runtime: ClusterRuntime, plan: SyncPlan) -> SyncPlan:
        """Refuse (journalled) a sync that replaces history unless the plan carries the operator's
        acknowledgement of exactly the situation found now; the plan as it will run."""
        if plan.kind != "sync" or plan.dry_run:
            return plan
        row = self._row(target)
        await self._check_takeovers(runtime, row, plan)
        current = await self._non_descendant(target, row, plan.revision)
        if not current:
            return replace(plan, non_descendant="", non_descendant_allowed=False)
        if plan.non_descendant_allowed and plan.non_descendant == current:
            return plan
        changed = plan.non_descendant_allowed and plan.non_descendant != current
        message = f"sync of {plan.app} on {plan.cluster} refused: {current}" + (
            "; this is not what was acknowledged (plan again)" if changed else
            "; syncing it needs an explicit acknowledgement")
        await self._record(runtime.identity, "sync", plan.app, plan.cluster, "refused", message,
                           {"revision": plan.revision, "dry_run": plan.dry_run, "prune": plan.prune,
                            "synced_revision": row.synced_revision, "non_descendant": current,
                            "acknowledged": False})
        raise NotAcknowledgedError(message)

    async def _check_takeovers(self, runtime: ClusterRuntime, row: AppStatus, plan: SyncPlan) -> None:
        """Refuse (journalled) a sync that takes fields over from another field manager, found again now,
        unless the plan carries the operator's confirmation (``--force-conflicts``)."""
        if plan.takeovers_allowed:
            return
        found = takeovers(plan.steps, row.resources, field_manager=self.settings.sync.field_manager)
        if not found:
            return
        summary = replace(plan, takeovers=found).takeover_summary
        first = found[0]
        message = (f"sync of {plan.app} on {plan.cluster} refused: it {summary} "
                   f"(e.g. {first.key.short} {first.display_path}); taking them over needs an explicit confirmation")
        await self._record(runtime.identity, "sync", plan.app, plan.cluster, "refused", message,
                           {"revision": plan.revision, "dry_run": plan.dry_run, "prune": plan.prune,
                            "takeovers": [str(t) for t in found],
                            "force_conflicts": False})
        raise FieldConflictError(message)

    def _warnings(self, row: AppStatus) -> tuple[str, ...]:
        """What the confirmation shows before a sync: render and credential warnings, objects another app
        tracks (a sync takes them over), and a force-pushed branch (the new head is not a descendant of
        the one fetched before)."""
        kinds = ("RenderWarning", "CredentialsCanWrite", "SharedResourceWarning")
        warnings = [c.message for c in row.conditions if c.type in kinds]
        repo_warning = self.repo.status.warning
        if repo_warning:
            warnings.append(repo_warning)
        return tuple(warnings)

    async def _prune_steps(self, steps: tuple[PlanStep, ...], target: Target,
                           runtime: ClusterRuntime) -> tuple[PlanStep, ...]:
        """Prune steps as the prune will decide them: an object the app may not delete (not in its
        inventory, tracking copied, ``Prune=false``…) is ``prune-skipped`` with the reason, not ``pruned``."""
        try:
            inventory = (await runtime.store.load(target.app.name)).inventory_keys
        except FleetdeckError:
            inventory = runtime.app_state(target.app.name).inventory_keys
        out = []
        for step in steps:
            live = runtime.view.get(step.key) if step.action is SyncAction.PRUNED else None
            if live is not None:
                allowed, why = prunable(live, app=target.app.name, inventory=inventory)
                if not allowed:
                    step = PlanStep(step.key, SyncAction.PRUNE_SKIPPED, step.wave, why)
            out.append(step)
        return tuple(out)

    async def _namespace_step(self, target: Target, desired: Desired, runtime: ClusterRuntime) -> PlanStep | None:
        """The destination namespace the sync creates (it is missing and no manifest defines it), if any."""
        name = target.app.namespace
        key = ResourceKey("", "Namespace", "", name)
        if not name or key in desired.objects:
            return None
        try:
            found = await runtime.api.get(NAMESPACES, name)
        except FleetdeckError:
            return None
        return None if found is not None else PlanStep(key, SyncAction.CREATED, 0, DESTINATION_NAMESPACE)

    async def plan_rollback(self, app: str, cluster: str, revision: str) -> SyncPlan:
        """What rolling ``app`` back to ``revision`` would do (the preview is the diff against live)."""
        target = self.fleet.target(app, cluster)
        await self._first_lists(cluster)
        row = self._row(target)
        if (driver := self.owned.driver_for(row)) is not None:
            return await self.owned.plan_rollback(row, driver, revision)
        runtime = self.clusters[cluster]
        try:
            sha = (await self.repo.resolve(revision)).sha
        except FleetdeckError as exc:
            raise FleetdeckError(f"cannot roll back {app} to {revision}: {exc}", title="Unknown revision",
                                 hint="pick one from `fleetdeck history APP`") from exc
        desired = await self.fleet.render(target, sha)
        row = self.fleet.evaluate_at(target, desired)
        blocked = blocked_reason(row, desired, runtime, prune=False, allow_empty=False)
        if self.read_only or runtime.read_only:
            blocked = blocked or "read-only mode: fleetdeck refuses every change"
        return SyncPlan(app=AppName(app), cluster=ClusterName(cluster), revision=sha,
                        steps=with_hooks(plan_steps(row.resources, prune=False), desired), kind="rollback",
                        blocked=blocked,
                        warnings=("the app will be pinned to this revision and paused, in one step",))

    # ------------------------------------------------------------------------------------ running

    async def execute_plan(self, plan: SyncPlan, *, automated: bool = False,
                           self_heal: bool = False) -> AsyncIterator[OperationState]:
        """Execute a confirmed sync or rollback plan, yielding its progress; the last state is the result.

        ``automated`` and ``self_heal`` say what started it (automation; automation undoing drift); its
        history entry records it.
        """
        target = self.fleet.target(plan.app, plan.cluster)
        runtime = self.clusters[plan.cluster]
        if plan.owner is not Owner.FLEETDECK:
            try:
                async for state in self.owned.execute(plan, self._row(target)):
                    self.fleet.publish_operation(target, state)
                    yield state
            finally:
                self.fleet.mark_dirty(target.id)
            return
        if plan.blocked:
            await self._journal(runtime, "sync" if plan.kind == "sync" else "rollback", plan, "refused",
                                plan.blocked)
            raise FleetdeckError(f"{plan.kind} of {plan.app} on {plan.cluster} refused: {plan.blocked}",
                                 title="Refused")
        plan = await self._check_acknowledged(target, runtime, plan)
        desired = self.fleet.desired(target)
        if plan.kind == "rollback" or desired is None or (desired.revision and desired.revision.sha != plan.revision):
            desired = await self.fleet.render(target, plan.revision)
        live = {k: v for k in list(desired.objects) if (v := runtime.view.get(k)) is not None}
        for obj in runtime.view.tracked_by(target.app.name):
            live.setdefault(ResourceKey.of(obj), obj)
        operation = SyncOperation(
            plan=plan, desired=desired.objects, live=live, api=runtime.api, store=runtime.store,
            journal=self.journal, identity=runtime.identity, settings=self.settings.sync,
            options=OperationOptions(create_namespace=target.app.namespace, allow_empty=target.app.sync.allow_empty,
                                     automated=automated, self_heal=automated and self_heal,
                                     reason=f"rollback to {plan.revision[:8]}"
                                     if plan.kind == "rollback" else "",
                                     respect_ignore=target.ignore_rules if target.app.sync.respect_ignore else (),
                                     health_checks=self.fleet.health_checks(),
                                     on_applied=lambda key, body, answer: self.fleet.applied(target, desired, key,
                                                                                            body, answer)),
            clock=self.clock,
        )
        self._running[target.id] = operation
        try:
            async for state in operation.execute():
                self.fleet.publish_operation(target, state)
                yield state
        finally:
            self._running.pop(target.id, None)
            self.fleet.mark_dirty(target.id)
            if plan.kind == "rollback":
                await self.fleet.render(target, None)

    # ------------------------------------------------------------------------------------ control

    def running(self, target_id: tuple[str, str]) -> bool:
        """Whether a fleetdeck sync or rollback of the target is running now."""
        return target_id in self._running

    async def pause(self, app: str, cluster: str, *, reason: str, expires_in: float | None = None) -> None:
        """Stop automated syncs of the app on the cluster (journalled first)."""
        target = self.fleet.target(app, cluster)
        row = self._row(target)
        if (driver := self.owned.driver_for(row)) is not None:
            await self.owned.control("pause", row, driver, reason=reason, expires_in=expires_in)
            self.fleet.mark_dirty(target.id)
            return
        runtime = self.clusters[cluster]
        details = {"reason": reason, "expires_in": expires_in}
        await self._guarded_control(runtime, "pause", target, details, lambda: runtime.store.pause(
            app, reason=reason, by=runtime.identity.by,
            expires_at=self.clock() + expires_in if expires_in else None))

    async def resume(self, app: str, cluster: str) -> None:
        """Clear the pause and any rollback pin (journalled first)."""
        target = self.fleet.target(app, cluster)
        row = self._row(target)
        if (driver := self.owned.driver_for(row)) is not None:
            await self.owned.control("resume", row, driver)
            self.fleet.mark_dirty(target.id)
            return
        runtime = self.clusters[cluster]
        await self._guarded_control(runtime, "resume", target, {}, lambda: runtime.store.resume(app))
        await self.fleet.render(target, None)

    async def refresh_owner(self, app: str, cluster: str) -> bool:
        """Ask the row's controller owner to look at its source again (Argo CD's refresh annotation); False
        for a fleetdeck-owned row (its refresh is the engine's own Git fetch) and in read-only mode, where a
        refresh stays a read."""
        row = self._row(self.fleet.target(app, cluster))
        driver = self.owned.driver_for(row)
        if driver is None or self.owned.read_only_for(row):
            return False
        await self.owned.control("refresh", row, driver)
        self.fleet.mark_dirty((app, cluster))
        return True

    async def _guarded_control(self, runtime: ClusterRuntime, action: str, target: Target,
                               details: dict[str, Any], write: Any) -> None:
        who = runtime.identity
        app, cluster = target.app.name, target.cluster.name
        if runtime.read_only:
            await self._record(who, action, app, cluster, "refused", "read-only mode", details)
            raise ReadOnlyError(f"{action} {app} on {cluster}")
        await self._record(who, action, app, cluster, "started", "", details)
        try:
            await write()
        except FleetdeckError as exc:
            await self._record(who, action, app, cluster, "failed", str(exc), details)
            raise
        await self._record(who, action, app, cluster, "succeeded", "", details)
        self.fleet.mark_dirty(target.id)

    async def _record(self, who: Any, action: str, app: str, cluster: str, result: Any, message: str,
                      details: dict[str, Any]) -> None:
        await self.journal.record(who=who, action=action, app=app, cluster=cluster, result=result,
                                         message=message, details=details)

    async def _journal(self, runtime: ClusterRuntime, action: str, plan: SyncPlan, result: Any, message: str) -> None:
        await self._record(runtime.identity, action, plan.app, plan.cluster, result, message,
                           {"revision": plan.revision, "dry_run": plan.dry_run, "prune": plan.prune})

    # ------------------------------------------------------------------------------------ automation

    async def automation_loop(self) -> None:
        """Hold each cluster's automation Lease when free, and sync automated apps that need it."""
        for name, runtime in self.clusters.items():
            if not runtime.read_only:
                self._spawn(runtime.automation.run(), f"automation-lease:{name}")
        while True:
            await asyncio.sleep(2.0)
            await self.sync_automated_apps()

    async def sync_automated_apps(self, *, wait: bool = False) -> None:
        """One round of automated-sync decisions over every automated target.

        Each sync decided is started as a task of the engine and this returns without waiting for it; with
        ``wait`` this returns when every automated sync of the fleet has ended, those started here and those
        an earlier round started (``agent --once``: a process that stops right after must not cancel them).
        Rounds decide one at a time, so the engine's own loop and a caller never start two syncs of one app."""
        started: list[asyncio.Event] = []
        async with self._deciding:
            await self._end_expired_owner_pauses()
            for target in self.fleet.targets():
                runtime = self.clusters[target.cluster.name]
                if not target.app.sync.automated or runtime.read_only:
                    continue
                if target.id in self._automating:  # an automated sync of it has not ended yet
                    started.append(self._automating[target.id])
                    continue
                if target.id in self._running:
                    continue
                if not runtime.automation.held:
                    await runtime.automation.tick()
                    if not runtime.automation.held:
                        continue
                decision = await self._automated_plan(target, runtime)
                if decision is None:
                    continue
                plan, self_heal = decision
                ended = self._automating[target.id] = asyncio.Event()
                started.append(ended)
                self._spawn(self._drain(plan, self_heal=self_heal, ended=ended),
                            f"auto-sync:{target.cluster.name}:{target.app.name}")
        if wait:
            await asyncio.gather(*(ended.wait() for ended in started))

    async def _end_expired_owner_pauses(self) -> None:
        """Resume controller-owned apps whose fleetdeck pause expired (restoring what the pause removed), where
        this process holds the cluster's automation Lease; journalled like an operator's resume."""
        for target in self.fleet.targets():
            row = self.fleet.published_row(target)
            runtime = self.clusters[target.cluster.name]
            if row is None or row.controller is None or self.owned.read_only_for(row):
                continue
            obj = self.owned.object_of(row.controller)  # judged now: a row is not re-evaluated as time passes
            if obj is None or not pause_expired(obj, now=self.clock()):
                continue
            if not runtime.automation.held:
                await runtime.automation.tick()
                if not runtime.automation.held:
                    continue
            driver = self.owned.driver_for(row)
            if driver is None:
                continue
            try:
                await self.owned.control("resume", row, driver)
            except FleetdeckError as exc:
                log.warning("expired pause of %s on %s not ended: %s", row.app, row.cluster, exc)
            self.fleet.mark_dirty(target.id)

    async def _automated_plan(self, target: Target, runtime: ClusterRuntime) -> tuple[SyncPlan, bool] | None:
        """The plan automation would sync now and whether it is a self-heal, or None (Argo CD's decision says
        no, or the plan is blocked or replaces history, which an operator decides)."""
        row = self.fleet.published_row(target)
        if row is None or row.stale or row.revision_stale or row.owner is not Owner.FLEETDECK:
            return None  # a controller-owned app is synced by its controller, never by fleetdeck's automation
        state = runtime.app_state(target.app.name)
        last_record = state.last_operation
        recorded = LastOperation(last_record.revision, last_record.phase, last_record.finished_at,
                                 last_record.message, last_record.self_heal_attempts) if last_record else None
        last = _newest(recorded, self._last_auto.get(target.id))
        policy = AutoSyncPolicy(enabled=True, prune=target.app.sync.prune, self_heal=target.app.sync.self_heal,
                                allow_empty=target.app.sync.allow_empty)
        decision = decide_auto_sync(app=AppInputs.of(row, suspended=target.app.suspended), policy=policy,
                                    last_operation=last, now=self.clock())
        if not decision.sync:
            return None
        plan = await self.plan_sync(target.app.name, target.cluster.name, prune=target.app.sync.prune,
                                    resources=decision.resources, force_conflicts=True)
        if plan.blocked or plan.needs_acknowledgement:  # history replaced: an operator decides
            return None
        return plan, decision.self_heal

    async def _drain(self, plan: SyncPlan, *, self_heal: bool = False, ended: asyncio.Event) -> None:
        target_id = (plan.app, plan.cluster)
        try:
            async for state in self.execute_plan(plan, automated=True, self_heal=self_heal):
                if state.phase.completed and state.phase is not OperationPhase.SUCCEEDED:
                    log.warning("automated sync of %s on %s: %s", plan.app, plan.cluster, state.message)
                if state.phase.completed:
                    before = self._last_auto.get(target_id)
                    attempts = (before.self_heal_attempts + 1 if before and before.revision == plan.revision
                                else 1) if self_heal else 0
                    self._last_auto[target_id] = LastOperation(plan.revision, state.phase, self.clock(),
                                                               state.message, attempts)
        except FleetdeckError as exc:
            log.warning("automated sync of %s on %s refused: %s", plan.app, plan.cluster, exc)
        finally:
            if self._automating.get((plan.app, plan.cluster)) is ended:
                del self._automating[(plan.app, plan.cluster)]
            ended.set()


def _newest(*operations: LastOperation | None) -> LastOperation | None:
    """The operation that ended last (one without an end time counts as the oldest)."""
    known = [op for op in operations if op is not None]
    return max(known, key=lambda op: op.finished_at or 0.0) if known else None
