"""``FleetEngine``: owns every long-lived task and publishes immutable fleet snapshots.

Data flow: watchers apply events to each cluster's cache (the only mutable domain state) and wake
the publisher; Git fetches re-render targets; the publisher (``core.aio.Throttle``) runs at once when
nothing was published for ``publish_interval``, otherwise at the end of the interval (coalescing a
burst), re-evaluates only dirty targets, and publishes a new ``FleetSnapshot`` reusing every unchanged
``AppStatus``. Server-side apply dry runs refine local verdicts in the background and mark their
target dirty when they land. Actions (sync, rollback, pause) go through ``core.engine.actions``.

The engine's parts never see the engine: ``ClusterRuntime``, ``Actions`` and ``LineageChecks`` get the
callables they need (``spawn``, ``mark_dirty``, ``cluster_changed``, ``FleetAccess``…) when they are built
here. Every task the engine owns is started through ``FleetEngine.spawn`` and stopped by ``stop``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.aio import Latest, Throttle, create_guarded_task, stop_tasks
from core.desired.health_scripts import load_health_checks, with_configmap
from core.desired.helm_release import discover_releases
from core.desired.imported import discover_imported_apps, merge_apps
from core.desired.render import Renderer
from core.desired.repo import ConfigRepo
from core.desired.spec import AppSpec, FleetConfig
from core.engine.actions import Actions, FleetAccess
from core.engine.applied import predicted_from_apply
from core.engine.clusters import BASE_KINDS, ClusterRuntime
from core.engine.evaluate import Context, Memo, Predicted, evaluate
from core.engine.event_feeds import EventFeeds, fleet_namespaces
from core.engine.gcpolicy import GCPolicy
from core.engine.lineage import LineageChecks
from core.engine.memory_guard import MemoryGuard
from core.engine.owners import OwnerCandidates, touched_by_controllers
from core.engine.targets import Desired, Target, check_impersonation, digest, resolve_targets
from core.errors import FleetdeckError, GitError
from core.journal import Journal
from core.limits import connection_slots, open_file_limit, open_file_shortfall, os_error_text
from core.live.api import KubeAPI
from core.live.cache import DECODED_KEPT
from core.live.cluster import LIST_CONCURRENCY
from core.live.connection_budget import ConnectionBudget
from core.live.list_gate import FleetListLimit
from core.memory import MemoryBudget, budget_for
from core.model import (
    AppEvents,
    AppStatus,
    Condition,
    FleetSnapshot,
    OperationState,
    ResourceKey,
    ResourceStatus,
    Revision,
    Severity,
    SyncPlan,
)
from core.reconcile.flux_objects import WATCHED as FLUX_WATCHED
from core.reconcile.owners import OWNER_KINDS
from core.settings import EngineSettings
from core.sync.state import CONFIGMAPS

TYPICAL_APP_KINDS = 6
"""Kinds an app typically adds to the watched ones (Deployment, Service, ServiceAccount, Secret, Ingress, one
CRD), for the open-file estimate made before discovery."""

log = logging.getLogger(__name__)


class FleetEngine:
    """The reconciliation engine of one fleet.

    Args:
        fleet: the loaded fleet file.
        settings: engine settings.
        clients: injected cluster APIs by cluster name (the demo's simulated clusters, tests); any
            cluster not given gets a real client from its kubeconfig.
        journal: the operator journal; actions are refused when it cannot be written.
        cache_dir: where Git mirrors and rendered trees are kept.
        clock: the wall clock (injected in tests).
    """

    def __init__(
        self,
        fleet: FleetConfig,
        *,
        settings: EngineSettings,
        journal: Journal,
        cache_dir: Path,
        clients: Mapping[str, KubeAPI] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fleet = fleet
        self.settings = settings
        self.read_only = settings.read_only or fleet.read_only
        check_impersonation(self.read_only, settings.impersonate)
        self.journal = journal
        self.clock = clock
        self.repo = ConfigRepo(fleet.repo, cache_dir / "git")
        self.renderer = Renderer(settings.git)
        self.health_checks = load_health_checks(settings.health, fleet)
        """Custom health scripts (Argo CD health.lua): rows, sync health waits and previews all use these."""
        self.clusters: dict[str, ClusterRuntime] = {}
        self.fleet_lists = FleetListLimit(self.settings.watch.fleet_list_concurrency)
        """The fleet-wide cap on concurrent lists, shared by every cluster's watcher (K7)."""
        self.connections: ConnectionBudget | None = None
        """The connection budget every cluster shares when the open-file limit is too low (K17)."""
        self.owner_candidates = OwnerCandidates(self.clusters)
        """The controller objects (Argo CD, Flux) that deploy to each cluster: owner detection's input."""
        self._clients = dict(clients or {})
        self.targets: dict[tuple[str, str], Target] = {}
        self._by_cluster: tuple[dict[tuple[str, str], Target], dict[str, list[Target]]] = ({}, {})
        self.desired: dict[tuple[str, str], Desired] = {}
        self.predicted: dict[tuple[str, str], dict[ResourceKey, Predicted]] = {}
        self.verdicts: dict[tuple[str, str], Memo] = {}
        """Per target, local verdicts by (desired digest, live resourceVersion): unchanged pairs are not
        compared again."""
        self.operations: dict[tuple[str, str], OperationState] = {}
        self.behind: dict[tuple[str, str], int] = {}
        """Commits between a pinned revision and the branch head, per pinned target."""
        self._rows: dict[tuple[str, str], AppStatus] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()
        self._changed_since: float | None = None
        """When the first change not yet published was noticed (monotonic): the next snapshot's lag."""
        self._latest: Latest[FleetSnapshot] = Latest()
        self._generation = 0
        self._head: Revision | None = None
        self._repo_status = self.repo.status
        self._conditions: list[Condition] = []
        self._health_errors: list[Condition] = []
        self._config_errors: list[Condition] = []
        self._limits: list[Condition] = []
        """What the process's limits (open files) will not allow this fleet."""
        self._tasks: list[asyncio.Task[Any]] = []
        self._dry_runs: set[tuple[str, str, ResourceKey]] = set()
        self._dry_runs_started = 0
        self._rendering: set[tuple[str, str]] = set()
        self._renders_running = 0
        """Renders in flight, published as ``RepoStatus.rendering`` (progress on a commit touching many apps)."""
        self._dry_run_limit = asyncio.Semaphore(8)
        self._ready = asyncio.Event()
        self.gc = GCPolicy()
        self.lineage = LineageChecks(self.repo, self.spawn, self.mark_dirty)
        """Whether each desired revision descends from the revision last synced (force-push detection)."""
        self.actions = Actions(
            FleetAccess(target=self.target, targets=lambda: tuple(self.targets.values()),
                        desired=lambda t: self.desired.get(t.id), evaluate=self.evaluate_target,
                        evaluate_at=self.evaluate_at, published_row=lambda t: self._rows.get(t.id),
                        render=lambda t, revision: self.render_target(t, revision=revision),
                        publish_operation=self._publish_operation, mark_dirty=self.mark_dirty,
                        health_checks=lambda: self.health_checks, applied=self._learn_applied),
            clusters=self.clusters, repo=self.repo, lineage=self.lineage, journal=journal, settings=settings,
            read_only=self.read_only, spawn=self.spawn, clock=self.now,
        )
        self.events = EventFeeds(settings.watch, clock=clock)
        """Kubernetes Events per cluster, listed and watched from the first time an app's are asked for."""
        self.memory = MemoryGuard(MemoryBudget(budget_for(settings.memory_limit)), self._shed_memory)
        """fleetdeck's own memory budget (``core.memory``): checked at each publish and every second."""

    # ------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect clusters, fetch and render, start watchers and the publisher."""
        self.gc.start()
        self._set_targets(self.fleet.apps)
        self._check_limits()
        if self.memory.active:
            self.spawn(self._watch_memory(), "memory")
        for spec in self.fleet.clusters:
            runtime = ClusterRuntime.create(
                spec, client=self._clients.get(spec.name), read_only=self.read_only, settings=self.settings,
                journal=self.journal, lineage=self.lineage, spawn=self.spawn, on_change=self.cluster_changed,
                on_identity=self.mark_all_dirty, clock=self.now, fleet_lists=self.fleet_lists,
                connections=self.connections)
            self.clusters[spec.name] = runtime
        await asyncio.gather(*(c.start() for c in self.clusters.values()))
        await self._read_live_health_scripts()
        await self._fetch_and_render()
        self.spawn(self._publisher(), "publisher")
        if not self.settings.one_shot:  # a headless verb neither polls Git nor syncs anything by itself
            self.spawn(self._poll_git(), "git-poll")
            if not self.read_only:
                self.spawn(self.actions.automation_loop(), "automation")
        self.mark_all_dirty()

    def _check_limits(self) -> None:
        """A fleet condition when the open-file limit is below what this fleet's connections need."""
        per_cluster = LIST_CONCURRENCY if self.settings.one_shot else len(BASE_KINDS) + TYPICAL_APP_KINDS
        shortfall = open_file_shortfall(len(self.fleet.clusters), per_cluster)
        self._limits = [Condition("OpenFileLimit", shortfall, Severity.WARNING)] if shortfall else []
        # Too few files even at the hard limit: queue connections instead of failing clusters (K17).
        self.connections = ConnectionBudget(connection_slots(open_file_limit()[0])) if shortfall else None

    async def _watch_memory(self) -> None:
        """Check the memory budget every ``memory_check_interval`` seconds (renders and lists between two
        publishes grow memory too); publish when pressure begins or ends."""
        while True:
            if self.memory.check():
                self.wake()
            await asyncio.sleep(self.settings.memory_check_interval)

    def _shed_memory(self, pressed: bool) -> None:
        """Drop (``pressed``) or keep again what can be read again: cached renders, decoded live objects,
        comparison memos and event feeds. Never the compact live objects, desired states or verdicts."""
        self.renderer.keep_renders(not pressed)
        for runtime in self.clusters.values():
            runtime.cache.keep_decoded(0 if pressed else DECODED_KEPT)
        if pressed:
            self.verdicts.clear()
            for feed in self.events.shed():
                self.spawn(feed.stop(), "stop-event-feed")

    async def _read_live_health_scripts(self) -> None:
        """Add the health scripts of the argocd-cm the fleet file names, read once (GET) from its cluster."""
        ref = self.fleet.health.argocd_config_map
        runtime = self.clusters.get(ref.cluster) if ref is not None else None
        if ref is None or runtime is None:
            return
        where = f"{ref.namespace}/{ref.name} on {ref.cluster}"
        try:
            async with asyncio.timeout(self.settings.watch.connect_timeout):  # never hold up the start for long
                obj = await runtime.api.get(CONFIGMAPS, ref.name, ref.namespace)
            if obj is None:
                raise FleetdeckError(f"ConfigMap {where} not found")
            self.health_checks = with_configmap(self.health_checks, obj, f"argocd-cm {where}", self.settings.health)
        except (FleetdeckError, TimeoutError) as exc:
            reason = str(exc) or "no answer in time"
            self._health_errors = [Condition("HealthScripts", f"health scripts of {where} not loaded: {reason}",
                                             Severity.WARNING)]

    async def stop(self) -> None:
        """Stop every task and close every cluster connection."""
        await stop_tasks(self._tasks)
        await self.events.stop()
        await asyncio.gather(*(c.stop() for c in self.clusters.values()), return_exceptions=True)
        await self._latest.close()

    def _set_targets(self, apps: tuple[AppSpec, ...]) -> None:
        only = self.settings.only_apps
        if only is not None:
            apps = tuple(a for a in apps if a.name in only)
        targets, errors = resolve_targets(apps, self.fleet.clusters)
        self._config_errors = [Condition("ConfigError", e, Severity.ERROR) for e in errors]
        self.targets = {t.id: t for t in targets}
        for tid in set(self._rows) - set(self.targets):
            del self._rows[tid]

    async def _import_apps(self, head: Revision) -> None:
        """Add the apps that Argo CD Applications and Flux Kustomizations at ``head`` define."""
        imports = self.fleet.imports
        if not imports.any:
            return
        try:
            tree = await self.repo.materialize(head.sha)
            imported = await asyncio.to_thread(discover_imported_apps, tree, self.fleet.clusters,
                                               argocd=imports.argocd, flux=imports.flux,
                                               flux_strict=imports.flux_strict_substitutions)
            if imports.flux:
                imported = (*imported, *await self._helm_releases(head, imported))
        except FleetdeckError as exc:
            self._conditions = [Condition("ImportError", f"reading Argo CD/Flux apps at {head.short}: {exc}",
                                          Severity.ERROR)]  # those apps are not shown at all
            return
        self._conditions = []
        self._set_targets(merge_apps(self.fleet.apps, imported))

    async def _helm_releases(self, head: Revision, apps: tuple[AppSpec, ...]) -> tuple[AppSpec, ...]:
        """The Flux HelmReleases in the rendered output of the imported Flux Kustomizations, as apps (the
        renders are the ones the Kustomization apps use: same cache keys)."""
        async def objects(app: AppSpec, path: str) -> tuple[dict[str, Any], ...]:
            result = await self.renderer.render_app(self.repo, head.sha, path=path, namespace=app.namespace,
                                                    helm=app.helm_options(), flux=app.flux)
            return result.objects

        return await discover_releases(apps, self.fleet.clusters, objects)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Start a task the engine owns (a failure is logged, never lost); ``stop`` cancels it."""
        self._tasks.append(create_guarded_task(coro, name=name))

    def now(self) -> float:
        """The wall clock (``clock``, read at each call: tests move it)."""
        return self.clock()

    async def wait_ready(self, timeout: float = 30.0) -> FleetSnapshot:
        """Wait until every cluster has listed once (or is unreachable) and a snapshot is out."""
        deadline = asyncio.get_running_loop().time() + timeout
        for cluster in self.clusters.values():
            remaining = max(0.1, deadline - asyncio.get_running_loop().time())
            await cluster.wait_settled(remaining)
        await self._render_pinned()
        self.mark_all_dirty()
        await self._publish_now()
        if self.settings.one_shot:
            await self._settle_dry_runs(max(0.1, deadline - asyncio.get_running_loop().time()))
        return self.snapshot

    async def _render_pinned(self) -> None:
        """Render, now, every target whose pin (read from its cluster) differs from what was rendered."""
        stale = [t for t in self.targets.values()
                 if self._pin(t) and self._wanted(t) != _rendered_sha(self.desired.get(t.id))]
        await asyncio.gather(*(self.render_target(t) for t in stale))

    async def _settle_dry_runs(self, timeout: float) -> None:
        """Wait until every server-side dry run the last evaluation asked for has answered, then publish
        again, so a one-shot verb reports the server's verdict rather than the local approximation."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            while (self._dry_runs or self.lineage.pending) and loop.time() < deadline:
                await asyncio.sleep(0.02)
            started = self._dry_runs_started + self.lineage.started
            await self._publish_now()  # verdicts arrived: evaluate again (this may ask for more)
            if self._dry_runs_started + self.lineage.started == started:
                return

    @property
    def snapshot(self) -> FleetSnapshot:
        """The newest published snapshot."""
        value = self._latest.value
        if value is None:
            raise RuntimeError("no snapshot has been published yet")
        return value

    def snapshots(self) -> AsyncIterator[FleetSnapshot]:
        """The current snapshot, then each newer one."""
        return self._latest.subscribe()

    # ------------------------------------------------------------------------------------ git

    async def _poll_git(self) -> None:
        while True:
            await asyncio.sleep(self.fleet.repo.interval)
            await self._fetch_and_render()

    async def _fetch_and_render(self, *, hard: bool = False) -> None:
        try:
            head = await self.repo.fetch()
            self._repo_status = self.repo.status
            if self._head is None or head.sha != self._head.sha:
                await self._import_apps(head)
            self._head = head
        except GitError as exc:
            self._repo_status = self.repo.status
            self._head = self._head or self.repo.head  # the last head fetched, even by a previous process
            log.warning("fetch of %s failed: %s", self.repo.url, exc)
        if hard:
            self.renderer.clear()
        await asyncio.gather(*(self.render_target(t) for t in self.targets.values()))
        self.wake()

    async def render_target(self, target: Target, *, revision: str | None = None) -> Desired:
        """Render ``target`` at ``revision`` (default: its pin, else the branch head) and remember it."""
        runtime = self.clusters[target.cluster.name]
        sha = revision or self._wanted(target)
        if sha is None:
            desired = Desired(None, error=self._repo_status.error or "the config repo has no revision yet")
        else:
            desired = await self._render(target, sha)
        if revision is None:
            behind = await self._behind(sha)
            if self._wanted(target) != sha:  # the pin (or head) moved while this ran: the render of what is wanted now stores
                self.mark_dirty(target.id)  # its result (the next evaluation starts it if nothing has)
                return desired
            if behind is None:  # desired state and distance from the head change together, in one step
                self.behind.pop(target.id, None)
            else:
                self.behind[target.id] = behind
            self.desired[target.id] = desired
            await runtime.ensure_kinds(desired.objects.values())
            self.mark_dirty(target.id)
        return desired

    async def _behind(self, sha: str | None) -> int | None:
        """For a pinned revision: how many commits the branch head is ahead of it (None when not pinned)."""
        head = self._head
        if sha is None or head is None or sha == head.sha:
            return None
        try:
            return await self.repo.commits_between(sha, head.sha)
        except FleetdeckError:
            return None

    async def _render(self, target: Target, sha: str) -> Desired:
        self._renders_running += 1
        if self._renders_running == 1:
            self.wake()  # the first of possibly many: let the snapshot say that rendering has started
        try:
            return await self._render_now(target, sha)
        finally:
            self._renders_running -= 1

    async def _render_now(self, target: Target, sha: str) -> Desired:
        runtime = self.clusters[target.cluster.name]
        try:
            revision = await self.repo.resolve(sha)
            flux = target.app.flux
            result = await self.renderer.render_app(
                self.repo, revision.sha, path=target.path, namespace=target.app.namespace,
                helm=target.app.helm_options(), capabilities=runtime.capabilities, release=target.app.release,
                flux=flux,
                substitutions=(lambda: runtime.substitution_values(flux.namespace, flux.substitute_from))
                if flux is not None and flux.substitute_from else None)
        except FleetdeckError as exc:
            return Desired(self._head, error=str(exc))
        except OSError as exc:  # the system refused a file, pipe or process: this app cannot render now
            return Desired(self._head, error=f"cannot render at {sha[:12]}: {os_error_text(exc)}")
        objects = runtime.prepare(target, result.objects)
        digests = {key: digest(obj) for key, obj in objects.items()}
        return Desired(revision, objects=objects, warnings=tuple(result.warnings), digests=digests)

    # ------------------------------------------------------------------------------------ publishing

    def wake(self) -> None:
        """Ask the publisher to run soon."""
        if self._changed_since is None:
            self._changed_since = time.monotonic()
        self._wake.set()

    def mark_dirty(self, target_id: tuple[str, str]) -> None:
        """Re-evaluate one target at the next publish."""
        self._dirty.add(target_id)
        self.wake()

    def mark_all_dirty(self) -> None:
        """Re-evaluate every target at the next publish."""
        self._dirty.update(self.targets)
        self.wake()

    def cluster_changed(self, cluster: str, keys: set[ResourceKey]) -> None:
        """Called by a cluster runtime after watch events: mark the targets they touch.

        No keys means the connection state changed: every target of the cluster is re-evaluated, so
        rows are marked stale (or fresh) in the same snapshot as the cluster.
        """
        namespaces = {k.namespace for k in keys}
        if any((k.group, k.kind) in OWNER_KINDS for k in keys):  # an owner may change, on any cluster
            runtime = self.clusters.get(cluster)
            self._dirty |= touched_by_controllers(
                keys, cluster, targets=self.targets, rows=self._rows,
                desired_keys=lambda tid: (d.objects if (d := self.desired.get(tid)) is not None else ()),
                lookup=runtime.cache.get if runtime is not None else lambda key: None)
        sources = {k for k in keys if (k.group, k.kind) in FLUX_WATCHED and (k.group, k.kind) not in OWNER_KINDS}
        if sources:  # a Flux source whose status flux-owned rows of this cluster show
            self._dirty |= {tid for tid, row in self._rows.items()
                            if tid[1] == cluster and any(f.key in sources for f in row.flux)}
        for target in self._targets_of(cluster):
            desired = self.desired.get(target.id)
            if not keys or target.app.namespace in namespaces or "fleetdeck-system" in namespaces or (
                desired is not None and any(k in desired.objects for k in keys)
            ):
                self._dirty.add(target.id)
        self.wake()

    def _targets_of(self, cluster: str) -> list[Target]:
        """The targets on ``cluster`` (indexed once per ``self.targets``, which is replaced, never edited)."""
        if self._by_cluster[0] is not self.targets:
            by_cluster: dict[str, list[Target]] = {}
            for tid, target in self.targets.items():
                by_cluster.setdefault(tid[1], []).append(target)
            self._by_cluster = (self.targets, by_cluster)
        return self._by_cluster[1].get(cluster, [])

    async def _publisher(self) -> None:
        throttle = Throttle(self.settings.publish_interval)
        while True:
            await self._wake.wait()
            await throttle.turn()  # at once after a quiet interval, else at the end of the interval
            self._wake.clear()
            await self._publish_now()
            throttle.ran()

    async def _publish_now(self) -> None:
        dirty, self._dirty = self._dirty, set()
        since, self._changed_since = self._changed_since, None
        for tid in dirty:
            target = self.targets.get(tid)
            if target is not None:
                self._start_render_if_pin_moved(target)
                self._rows[tid] = self.evaluate_target(target)
                self._schedule_dry_runs(target)
        self.memory.check()
        self._generation += 1
        lag = time.monotonic() - since if since is not None else 0.0
        await self._latest.publish(self._build_snapshot(lag))
        self._ready.set()

    def _pin(self, target: Target) -> str | None:
        """The rollback pin of ``target``, as its cluster's shared state says."""
        return self.clusters[target.cluster.name].control(target.app.name).pinned

    def _wanted(self, target: Target) -> str | None:
        """The revision ``target`` should be rendered at: its pin, else the branch head."""
        return self._pin(target) or (self._head.sha if self._head else None)

    def _start_render_if_pin_moved(self, target: Target) -> None:
        """Start a re-render (a task) when the revision ``target`` should be rendered at is not the one its
        desired state was rendered from: the pin changed (a rollback or resume, by this or another operator)."""
        desired = self.desired.get(target.id)
        if desired is None or desired.error:
            return
        wanted = self._wanted(target)
        if wanted is None or wanted == _rendered_sha(desired) or target.id in self._rendering:
            return
        self._rendering.add(target.id)

        async def rerender() -> None:
            try:
                await self.render_target(target)
            finally:
                self._rendering.discard(target.id)

        self.spawn(rerender(), f"render:{target.cluster.name}:{target.app.name}")

    def evaluate_target(self, target: Target) -> AppStatus:
        """``target``'s row now, from its desired state, its cluster's cache and the dry-run verdicts.

        It starts no render (following a moved pin is ``_start_render_if_pin_moved``); what it may change is
        the local-verdict memo, and a revision pair never checked starts its ancestry check
        (``LineageChecks.known_or_start_check``), whose verdict marks the target dirty."""
        desired = self.desired.get(target.id) or Desired(None, error="not rendered yet")
        return evaluate(target, desired, self.clusters[target.cluster.name].view,
                        predicted=self.predicted.get(target.id, {}),
                        context=self._context(target, self.operations.get(target.id)),
                        memo=self.verdicts.setdefault(target.id, {}), scripts=self.health_checks)

    def _context(self, target: Target, operation: OperationState | None) -> Context:
        """The non-object inputs of ``target``'s row, from its cluster's shared state and the repo."""
        return self.clusters[target.cluster.name].context(
            target, operation, desired=self.desired.get(target.id), behind=self.behind.get(target.id, 0),
            revision_error=self.repo.status.error, candidates=self.owner_candidates.for_cluster(target.cluster.name))

    def _publish_operation(self, target: Target, state: OperationState) -> None:
        """Show ``state`` in ``target``'s row at the next publish."""
        self.operations[target.id] = state
        self.mark_dirty(target.id)

    def _build_snapshot(self, lag: float = 0.0) -> FleetSnapshot:
        rows = tuple(self._rows[tid] for tid in sorted(self._rows))
        return FleetSnapshot(
            generation=self._generation, taken_at=self.clock(), apps=rows,
            clusters=tuple(c.status() for c in self.clusters.values()),
            repo=replace(self._repo_status, rendering=self._renders_running), read_only=self.read_only,
            conditions=tuple(self._config_errors + self._conditions + self._health_errors + self._limits
                             + self.memory.conditions() + self._credential_warnings()),
            lag=lag,
        )

    def _credential_warnings(self) -> list[Condition]:
        """Read-only clusters whose credentials could write: one fleet-wide warning each (also on rows)."""
        return [Condition("CredentialsCanWrite", w, Severity.WARNING)
                for runtime in self.clusters.values() for w in runtime.warnings]

    # ------------------------------------------------------------------------------------ dry runs

    def _schedule_dry_runs(self, target: Target) -> None:
        runtime = self.clusters[target.cluster.name]
        if self.read_only or not runtime.can_dry_run:
            return
        desired = self.desired.get(target.id)
        if desired is None or not desired.ok or self.actions.running(target.id):
            return  # while a sync runs, a dry run would answer for a version it is replacing; after it, once
        known = self.predicted.setdefault(target.id, {})
        for key, obj in desired.objects.items():
            live = runtime.view.get(key)
            if live is None:
                continue
            version = str((live.get("metadata") or {}).get("resourceVersion", ""))
            pred = known.get(key)
            if pred is not None and pred.live_version == version and pred.desired_digest == desired.digest_of(key):
                continue
            job = (target.app.name, target.cluster.name, key)
            if job not in self._dry_runs:
                self._dry_runs.add(job)
                self._dry_runs_started += 1
                self.spawn(self._dry_run(target, key, obj, version), f"dry-run:{target.cluster.name}:{key}")

    async def _dry_run(self, target: Target, key: ResourceKey, obj: Mapping[str, Any], version: str) -> None:
        runtime = self.clusters[target.cluster.name]
        try:
            async with self._dry_run_limit:
                if self.actions.running(target.id):
                    return  # queued before the app's sync began (rescheduled when it ends)
                pred = await runtime.dry_run(key, obj, version)
            if pred is not None:
                self.predicted.setdefault(target.id, {})[key] = pred
                self.mark_dirty(target.id)
        finally:
            self._dry_runs.discard((target.app.name, target.cluster.name, key))

    def _learn_applied(self, target: Target, desired: Desired, key: ResourceKey, body: Mapping[str, Any],
                       answer: Mapping[str, Any]) -> None:
        """A sync applied ``body``: its answer stands for the dry run of the current desired object
        (``core.engine.applied``)."""
        if desired is not self.desired.get(target.id):
            return
        pred = predicted_from_apply(desired, key, body, answer)
        if pred is not None:
            self.predicted.setdefault(target.id, {})[key] = pred

    # ------------------------------------------------------------------------------------ API

    async def refresh(self, app: str | None = None, cluster: str | None = None, *, hard: bool = False) -> None:
        """Fetch Git now and re-render; ``hard`` also drops the render and dry-run caches. A row's refresh
        (``app`` and ``cluster``) of a controller-owned app also asks the controller to refresh (Argo CD's
        refresh annotation), journalled; in read-only mode it stays a read."""
        if hard:
            self.predicted.clear()
        await self._fetch_and_render(hard=hard)
        self.mark_all_dirty()
        if app is not None and cluster is not None and (app, cluster) in self.targets:
            await self.actions.refresh_owner(app, cluster)

    def target(self, app: str, cluster: str) -> Target:
        """The target, or a clear error naming what exists."""
        target = self.targets.get((app, cluster))
        if target is None:
            raise FleetdeckError(f"app {app!r} does not target cluster {cluster!r}", title="Unknown app",
                                 hint="see `fleetdeck status` for the apps and clusters of this fleet")
        return target

    async def plan_sync(self, app: str, cluster: str, *, prune: bool = False, dry_run: bool = False,
                        resources: Sequence[ResourceKey] = (), force_replace: bool = False,
                        allow_non_descendant: bool = False, force_conflicts: bool = False,
                        sync_options: Sequence[str] = (), controller_dry_run: bool = False) -> SyncPlan:
        """Forwarded to ``Actions.plan_sync``."""
        return await self.actions.plan_sync(app, cluster, prune=prune, dry_run=dry_run, resources=resources,
                                            force_replace=force_replace, allow_non_descendant=allow_non_descendant,
                                            force_conflicts=force_conflicts, sync_options=sync_options,
                                            controller_dry_run=controller_dry_run)

    async def plan_rollback(self, app: str, cluster: str, revision: str) -> SyncPlan:
        """Forwarded to ``Actions.plan_rollback``."""
        return await self.actions.plan_rollback(app, cluster, revision)

    def execute_plan(self, plan: SyncPlan) -> AsyncIterator[OperationState]:
        """Forwarded to ``Actions.execute_plan``."""
        return self.actions.execute_plan(plan)

    async def sync_automated_apps(self, *, wait: bool = False) -> None:
        """Forwarded to ``Actions.sync_automated_apps``."""
        await self.actions.sync_automated_apps(wait=wait)

    async def preview(self, app: str, cluster: str, revision: str) -> tuple[ResourceStatus, ...]:
        """The app's resources as they would compare if ``revision`` were desired."""
        target = self.target(app, cluster)
        desired = await self.render_target(target, revision=revision)
        if desired.error:
            raise FleetdeckError(f"{app} at {revision[:8]} does not render: {desired.error}", title="Render failed")
        return self.evaluate_at(target, desired).resources

    def evaluate_at(self, target: Target, desired: Desired) -> AppStatus:
        """``target``'s row as it would be if ``desired`` (another revision's render) were desired.

        Local comparison only and no memo: the result is a preview, never published.
        """
        return evaluate(target, desired, self.clusters[target.cluster.name].view, predicted={},
                        context=self._context(target, None), scripts=self.health_checks)

    async def revisions(self, app: str, cluster: str, *, limit: int = 50) -> tuple[Revision, ...]:
        """Git revisions that changed the app's rendered output on ``cluster``, newest first."""
        target = self.target(app, cluster)
        return await self.renderer.history(self.repo, target.path, namespace=target.app.namespace, limit=limit,
                                           helm=target.app.helm_options(), flux=target.app.flux)

    async def app_events(self, app: str, cluster: str) -> AppEvents:
        """The Kubernetes Events of the app's objects and their children on ``cluster`` (see
        ``core.engine.event_feeds``); a one-shot engine waits for the first list."""
        target = self.target(app, cluster)
        wait = self.settings.watch.request_timeout if self.settings.one_shot else 0.0
        return await self.events.app_events(
            target, self.clusters[cluster].api, self._rows.get(target.id), wait=wait,
            namespaces=lambda: fleet_namespaces(cluster, self.targets.values(), self.desired, self._rows))

    async def pause(self, app: str, cluster: str, *, reason: str, expires_in: float | None = None) -> None:
        """Forwarded to ``Actions.pause``."""
        await self.actions.pause(app, cluster, reason=reason, expires_in=expires_in)

    async def resume(self, app: str, cluster: str) -> None:
        """Forwarded to ``Actions.resume``."""
        await self.actions.resume(app, cluster)


def _rendered_sha(desired: Desired | None) -> str | None:
    """The revision a desired state was rendered from, if any."""
    return desired.revision.sha if desired is not None and desired.revision else None
