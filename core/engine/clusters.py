"""``ClusterRuntime``: everything the engine keeps per cluster.

One guarded client (the read-only chokepoint), one cache, one watcher, the shared-state store and
the automation lease of one cluster, plus the read-side view evaluation uses (``CacheView``) with
per-version indexes by owner label and by owner UID, so evaluating N targets costs one pass over the
cache rather than N.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Container, Coroutine, Iterable, Mapping, Sequence
from typing import Any

from core.desired.flux import SubstitutionValues, load_substitutions
from core.desired.helm import Capabilities
from core.desired.spec import ClusterSpec, SubstituteRef
from core.engine.evaluate import Context, Predicted
from core.engine.lineage import LineageChecks, describe
from core.engine.targets import Desired, Target, digest
from core.errors import ConfigError, FleetdeckError, JournalError
from core.journal import Journal, OperatorIdentity, current_identity
from core.live.access_review import write_powers
from core.live.api import APIResource, KubeAPI
from core.live.cache import ClusterCache
from core.live.cluster import ClusterWatcher
from core.live.compact import CompactObject
from core.live.connection_budget import ConnectionBudget
from core.live.drift import DryRunVerdict, dry_run_apply
from core.live.guard import GuardedAPI, RefusedRequest, guard
from core.live.kubeconfig import ContextConfig, load_kubeconfig
from core.live.list_gate import FleetListLimit
from core.model import (
    AppControl,
    ClusterStatus,
    Condition,
    ConnectionState,
    OperationState,
    Owner,
    ResourceKey,
    ResourceState,
    Severity,
)
from core.reconcile.flux_objects import WATCHED as FLUX_WATCHED
from core.reconcile.flux_objects import flux_conditions, flux_statuses
from core.reconcile.owners import (
    OWNER_KINDS,
    Candidate,
    argocd_history,
    argocd_status,
    control_of,
    detect,
    pause_expired,
    resolve,
)
from core.reconcile.tracking import APP_LABEL, add_tracking, app_label_value
from core.settings import EngineSettings
from core.sync.lease import AutomationLease, LeaseRecord
from core.sync.state import NAMESPACE, AppState, AppStateStore, decode, state_name

log = logging.getLogger(__name__)

BASE_KINDS = (("", "ConfigMap"), ("apps", "ReplicaSet"), ("", "Pod"), ("", "Namespace"))
"""Always watched: ConfigMaps carry fleetdeck's shared state; ReplicaSets and Pods feed the resource tree."""

CLUSTER_SCOPED = frozenset({
    ("", "Namespace"), ("", "Node"), ("", "PersistentVolume"), ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"), ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("storage.k8s.io", "StorageClass"), ("networking.k8s.io", "IngressClass"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"), ("apiregistration.k8s.io", "APIService"),
    ("scheduling.k8s.io", "PriorityClass"),
})
"""Scope of well-known kinds, used until discovery answers."""


REWOUND_SHOWN = 3600.0
"""Seconds a cluster's rows warn that its state went back in time (an etcd restore)."""


class CacheView:
    """The read side of a ``ClusterCache`` for evaluation, with indexes rebuilt once per cache version."""

    def __init__(self, cache: ClusterCache, watcher: ClusterWatcher) -> None:
        self.cache = cache
        self.watcher = watcher
        self._version = -1
        self._by_app: dict[str, list[ResourceKey]] = {}
        self._by_owner: dict[tuple[str, str, str], list[ResourceKey]] = {}
        self._controllers: list[ResourceKey] = []

    @property
    def listed(self) -> bool:
        """Whether the cache holds a complete list of every tracked kind (or did before going stale)."""
        return self.cache.all_listed

    def get(self, key: ResourceKey) -> Mapping[str, Any] | None:
        """The live object at ``key``."""
        return self.cache.get(key)

    def compact(self, key: ResourceKey) -> CompactObject | None:
        """The object at ``key`` in the cache's compact form (what ``get`` decodes)."""
        return self.cache.compact(key)

    def unknown_reason(self, group: str, kind: str) -> str | None:
        """Why this kind's objects cannot be compared now, or None when its list is known."""
        failure = self.cache.failure(group, kind)
        if not self.cache.listed(group, kind):
            if failure is not None:
                return f"cannot list {kind}: {failure.message}"
            return f"{kind} not listed yet"
        if failure is not None and ("403" in failure.message or "forbidden" in failure.message.lower()):
            return f"no permission to watch {kind}: {failure.message}"
        return None

    def served(self, group: str, kind: str) -> bool:
        """False when discovery ran and the cluster does not serve the kind (CRD not installed)."""
        return self.watcher.serves((group, kind))

    def _index(self) -> None:
        if self._version == self.cache.version:
            return
        by_app: dict[str, list[ResourceKey]] = defaultdict(list)
        by_owner: dict[tuple[str, str, str], list[ResourceKey]] = defaultdict(list)
        controllers: list[ResourceKey] = []
        for key, labels, owners in self.cache.entries():  # the cache's projection: nothing is decoded
            if (key.group, key.kind) in OWNER_KINDS:
                controllers.append(key)
            label = labels.get(APP_LABEL)
            if label:
                by_app[label].append(key)
            for uid in owners:
                by_owner[(uid, key.group, key.kind)].append(key)
        self._by_app, self._by_owner, self._version = dict(by_app), dict(by_owner), self.cache.version
        self._controllers = sorted(controllers)

    def _objects(self, keys: Iterable[ResourceKey]) -> list[Mapping[str, Any]]:
        return [obj for key in keys if (obj := self.cache.get(key)) is not None]

    def tracked_by(self, app: str, *, excluding: Container[ResourceKey] = ()) -> Iterable[Mapping[str, Any]]:
        """Live objects labelled as owned by ``app``, but those at a key in ``excluding`` (never decoded)."""
        self._index()
        return self._objects(k for k in self._by_app.get(app_label_value(app), ()) if k not in excluding)

    def owned_by(self, uid: str, group: str, kind: str) -> Iterable[Mapping[str, Any]]:
        """Live objects of ``group/kind`` whose ownerReferences name ``uid``."""
        self._index()
        return self._objects(self._by_owner.get((uid, group, kind), ()))

    def controllers(self) -> list[Mapping[str, Any]]:
        """Argo CD Applications/ApplicationSets and Flux Kustomizations/HelmReleases in this cluster."""
        self._index()
        return self._objects(self._controllers)


Spawn = Callable[[Coroutine[Any, Any, None], str], None]
"""Starts a long-lived task owned (and stopped) by the engine: ``spawn(coroutine, name)``."""


class ClusterRuntime:
    """Client, cache, watcher and shared state of one cluster.

    It never sees the engine: what it needs is passed in.

    Args:
        spec: the cluster in the fleet file.
        api: the cluster's client (wrapped here in the read-only guard).
        read_only: refuse every change to this cluster.
        settings: engine settings (watch and sync).
        journal: the operator journal (lock takeovers and requests the guard refused).
        lineage: the engine's ancestry checks (force-push detection in each row).
        spawn: starts a task the engine owns (the identity check).
        on_change: called with (cluster name, changed keys) after watch events; no keys means the
            connection state changed.
        on_identity: called once the identity check has learnt who we are and whether we could write.
        clock: the wall clock.
    """

    def __init__(self, spec: ClusterSpec, api: KubeAPI, *, read_only: bool, settings: EngineSettings,
                 journal: Journal, lineage: LineageChecks, spawn: Spawn,
                 on_change: Callable[[str, set[ResourceKey]], None], on_identity: Callable[[], None],
                 clock: Callable[[], float] = time.time, fleet_lists: FleetListLimit | None = None) -> None:
        self.spec = spec
        self.settings = settings
        self.journal = journal
        self.lineage = lineage
        self.clock = clock
        self._spawn = spawn
        self._on_change = on_change
        self._on_identity = on_identity
        self.read_only = read_only
        self.raw = api
        self.api: GuardedAPI = guard(api, read_only=read_only, on_refused=self._refused)
        self.cache = ClusterCache(spec.name, unreachable_after=settings.watch.unreachable_after,
                                  clock=clock)
        self.watcher = ClusterWatcher(self.api, self.cache, kinds=BASE_KINDS + OWNER_KINDS + FLUX_WATCHED,
                                      settings=settings.watch, on_change=self._changed, fleet_lists=fleet_lists)
        self.view = CacheView(self.cache, self.watcher)
        self.store = AppStateStore(self.api, settings=settings.sync, clock=clock)
        self.identity: OperatorIdentity = current_identity()
        self.automation = AutomationLease(self.api, identity=self.identity, settings=settings.sync,
                                          on_takeover=self._journal_takeover)  # on the API server's clock
        self.warnings: list[str] = []
        self._identity_checked = asyncio.Event()
        self.may_write = False
        """SelfSubjectAccessReview said these credentials may patch in the cluster."""
        self._capabilities_waited = False

    @classmethod
    def create(cls, spec: ClusterSpec, *, client: KubeAPI | None, read_only: bool, settings: EngineSettings,
               journal: Journal, lineage: LineageChecks, spawn: Spawn,
               on_change: Callable[[str, set[ResourceKey]], None], on_identity: Callable[[], None],
               clock: Callable[[], float] = time.time, fleet_lists: FleetListLimit | None = None,
               connections: ConnectionBudget | None = None) -> ClusterRuntime:
        """A runtime for ``spec``, with ``client`` or a real ``KubeClient`` from its kubeconfig; read-only
        when the fleet (``read_only``) or the cluster's own spec says so."""
        if client is None:
            # aiohttp is imported only for a real cluster, never for the demo's simulated ones
            from core.live.kube import KubeClient

            try:
                context = load_kubeconfig(spec.kubeconfig).context(spec.context)
                if settings.impersonate is not None:
                    context = dataclasses.replace(context, impersonate_user=settings.impersonate.user,
                                                  impersonate_groups=settings.impersonate.groups)
                client = KubeClient(cluster=spec.name, context=context, settings=settings.watch,
                                    connections=connections)
            except ConfigError as exc:
                client = _Unconfigured(spec.name, str(exc))
        return cls(spec, client, read_only=read_only or spec.read_only, settings=settings, journal=journal,
                   lineage=lineage, spawn=spawn, on_change=on_change, on_identity=on_identity, clock=clock,
                   fleet_lists=fleet_lists)

    # ------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start watching; learn who we are and whether we could write (never blocks on a dead cluster)."""
        await self.watcher.start()
        self._spawn(self._check_identity(), f"whoami:{self.spec.name}")

    async def stop(self) -> None:
        """Stop watching, release the automation lease, close the connection."""
        await self.watcher.stop()
        if self.automation.held and not self.read_only:
            with contextlib.suppress(FleetdeckError, TimeoutError):
                await asyncio.wait_for(self.automation.release(), 5)
        await self.api.close()

    async def _check_identity(self) -> None:
        try:
            await self._review_identity()
        finally:
            self._identity_checked.set()

    async def _review_identity(self) -> None:
        try:
            user = await self.api.whoami()
            if self.read_only:
                if not self._server_version():
                    # Which questions to ask depends on the server's version (exec over WebSocket is a
                    # `get` before 1.35): read it now rather than race the heartbeat's first GET /version.
                    with contextlib.suppress(FleetdeckError):
                        await self.api.ping(self.settings.watch.request_timeout)
                powers = await write_powers(self.api, self._server_version())
                self.may_write = powers.may_write
            else:
                configmaps = APIResource("", "v1", "ConfigMap", "configmaps", True, frozenset({"patch"}))
                self.may_write = await self.api.can_i("patch", configmaps, NAMESPACE)
        except FleetdeckError as exc:
            log.info("cluster %s: identity check failed: %s", self.spec.name, exc)
            return
        self.identity = self.identity.with_kube_user(user)
        if self.read_only and self.may_write:
            self.warnings.append(f"read-only, but the credentials for {self.spec.name} "
                                 f"({user or 'unknown user'}) could {powers.describe()}: fleetdeck refuses "
                                 "every change, but a read-only context should not be able to")
        self._on_identity()

    async def capabilities(self, timeout: float = 10.0) -> Capabilities:
        """What a Helm chart sees of this cluster: the API server's version (from the heartbeat's
        ``GET /version``) and the group/versions discovery serves. The first call waits up to ``timeout`` s
        for discovery (or the cluster known unreachable); after that, whatever is known is returned at once."""
        if not self._capabilities_waited:
            self._capabilities_waited = True
            watcher = self.watcher
            with contextlib.suppress(TimeoutError):
                await watcher.wait_until(
                    lambda: watcher.discoveries > 0 or self.cache.state is ConnectionState.UNREACHABLE,
                    timeout=timeout)
                deadline = time.monotonic() + 3.0
                while watcher.discoveries and not self._server_version() and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
        served = tuple(sorted({v for r in self.watcher.resources.values()
                               for v in (r.api_version, f"{r.api_version}/{r.kind}")}))
        return Capabilities(self._server_version(), served)

    async def substitution_values(self, namespace: str, refs: Sequence[SubstituteRef]) -> SubstitutionValues:
        """A Flux Kustomization's ``postBuild.substituteFrom`` values, read from this cluster now (GET each
        ConfigMap or Secret in the Kustomization's namespace), as kustomize-controller reads them.

        Raises:
            RenderError: a non-optional source is missing or cannot be read (names it, never its data).
        """
        async def get(kind: str, name: str, ns: str) -> Mapping[str, Any] | None:
            plural = "secrets" if kind == "Secret" else "configmaps"
            resource = APIResource("", "v1", kind, plural, True, frozenset({"get"}))
            return await self.api.get(resource, name, ns)

        return await load_substitutions(refs, namespace, get)

    def _server_version(self) -> str:
        version = getattr(self.raw, "server_version", "")
        return version if isinstance(version, str) else ""

    async def wait_settled(self, timeout: float) -> None:
        """Wait until every watched kind has listed once, or the cluster is known unreachable."""
        def settled() -> bool:
            return self.cache.all_listed or self.cache.state is ConnectionState.UNREACHABLE
        started = time.monotonic()
        try:
            await self.watcher.wait_until(settled, timeout=timeout)
        except TimeoutError:
            log.info("cluster %s not settled after %.0fs", self.spec.name, timeout)
            return
        if self.read_only and self.cache.state is not ConnectionState.UNREACHABLE:
            # A read-only verb reports whether the credentials could write: wait for that answer too.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._identity_checked.wait(),
                                       max(0.1, timeout - (time.monotonic() - started)))

    def _changed(self, changes: Sequence[Any]) -> None:
        self._on_change(self.spec.name, set(self.cache.drain_dirty()))

    async def _journal_takeover(self, dead: LeaseRecord) -> None:
        pid = dead.process.pid if dead.process is not None else 0
        message = f"released lock of dead process {pid} ({dead.holder}, {dead.what or dead.name})"
        try:
            await self.journal.record(who=self.identity, action="lock-takeover", cluster=self.spec.name,
                                             result="succeeded", message=message, details={"lease": dead.name})
        except JournalError as exc:
            log.warning("cluster %s: %s; could not journal it: %s", self.spec.name, message, exc)

    def _refused(self, request: RefusedRequest) -> None:
        """Journal a request the read-only guard refused (called synchronously by the guard)."""
        try:
            self.journal.append(who=self.identity, action="refused-request", cluster=self.spec.name,
                                result="refused", message=str(request), details={"dry_run": request.dry_run})
        except JournalError as exc:
            log.warning("could not journal a refused request: %s", exc)

    # ------------------------------------------------------------------------------------ desired

    def scope(self, group: str, kind: str) -> bool | None:
        """True when the kind is namespaced, False when cluster-scoped, None when unknown."""
        resource = self.watcher.resource_for(group, kind)
        if resource is not None:
            return resource.namespaced
        return False if (group, kind) in CLUSTER_SCOPED else None

    def prepare(self, target: Target, objects: Sequence[Mapping[str, Any]]) -> dict[ResourceKey, Mapping[str, Any]]:
        """Resolve scope (N4) and add fleetdeck's tracking to each rendered object."""
        prepared: dict[ResourceKey, Mapping[str, Any]] = {}
        for obj in objects:
            resolved = dict(obj)
            meta = dict(resolved.get("metadata") or {})
            key = ResourceKey.of(resolved)
            namespaced = self.scope(key.group, key.kind)
            if namespaced is False:
                meta.pop("namespace", None)
            elif not meta.get("namespace"):
                meta["namespace"] = target.app.namespace
            resolved["metadata"] = meta
            key = ResourceKey.of(resolved)
            prepared[key] = add_tracking(resolved, app=target.app.name, key=key)
        return prepared

    async def ensure_kinds(self, objects: Iterable[Mapping[str, Any]]) -> None:
        """Watch the kinds of these objects."""
        kinds = {(ResourceKey.of(o).group, ResourceKey.of(o).kind) for o in objects}
        await self.watcher.ensure_kinds(kinds)

    # ------------------------------------------------------------------------------------ state

    def app_state(self, app: str) -> AppState:
        """The app's shared state as the cache last saw it."""
        key = ResourceKey("", "ConfigMap", NAMESPACE, state_name(app))
        return decode(app, self.cache.get(key), now=self.clock())

    def control(self, app: str) -> AppControl:
        """The app's pause and pin."""
        return self.app_state(app).control

    def context(self, target: Target, operation: OperationState | None, *, desired: Desired | None,
                behind: int, revision_error: str, candidates: Sequence[Candidate] = ()) -> Context:
        """The non-object inputs of the target's row: ``desired`` is the target's current desired state
        (force-push detection), ``behind`` how many commits a pin is behind the branch head, and
        ``revision_error`` why the config repo cannot be fetched ("" when it can). A (synced, desired) pair
        never checked starts its ancestry check (``LineageChecks.known_or_start_check``)."""
        state = self.app_state(target.app.name)
        stale = self.cache.state is ConnectionState.UNREACHABLE or (
            self.cache.state in (ConnectionState.DEGRADED, ConnectionState.THROTTLED) and self.cache.stale)
        conditions = [Condition("CredentialsCanWrite", w, Severity.WARNING) for w in self.warnings]
        rewound = self.cache.rewound
        if rewound is not None and self.clock() - rewound[0] < REWOUND_SHOWN:
            conditions.append(Condition("StateRewound", rewound[1], Severity.WARNING))
        if state.interrupted and (operation is None or operation.phase.completed):
            conditions.append(Condition("OperationInterrupted", state.interrupted, Severity.WARNING))
        last = state.last_operation
        synced = next((h.revision for h in reversed(state.history) if h.result == "Succeeded"), None)
        behind = behind if state.control.pinned else 0
        shown = "showing the last known state" if self.view.listed else "its state has never been seen"
        message = f"cluster {self.spec.name} {self.cache.state.value.lower()} since " \
                  f"{time.strftime('%H:%M:%S', time.localtime(self.cache.since))}: {shown}"
        if last is not None and last.phase.value == "Failed" and last.automated:
            conditions.append(Condition("SyncError", f"automated sync of {last.revision[:8]} failed: {last.message}",
                                        Severity.ERROR))
        detected = detect(target.app.name, desired.objects if desired is not None else (), candidates,
                          live=self.cache.get)
        override, where = target.app.owner_override(target.cluster)
        owner, controller, warning = resolve(detected, override, where)
        if warning:
            conditions.append(Condition("OwnerOverride", warning, Severity.WARNING))
        control, history, controller_status = state.control, state.history, None
        found = next((c.obj for c in candidates if controller is not None and c.cluster == controller.cluster
                      and c.key == controller.key), None)
        if found is not None and controller is not None and controller.owner is Owner.ARGOCD:
            # the controller's own record replaces fleetdeck's: it is what applies the app here
            control, history = control_of(found, now=self.clock()), argocd_history(found)
            controller_status = dataclasses.replace(argocd_status(found), pause_expired=pause_expired(found, now=self.clock()))
            synced = next((h.revision for h in reversed(history)), None)
            conditions.extend(controller_status.conditions)
        flux = flux_statuses(controller, self.cache.get) if owner is Owner.FLUX else ()
        if flux and found is not None:
            control = control_of(found, now=self.clock())  # fleetdeck's pause/pin recorded on the Flux object
        conditions.extend(flux_conditions(flux))
        return Context(control=control, history=history, synced_revision=synced, operation=operation,
                       owner=owner, controller=controller, controller_status=controller_status, flux=flux,
                       stale=stale, stale_message=message, behind=behind, conditions=tuple(conditions),
                       revision_error="" if state.control.pinned else revision_error,
                       non_descendant=self._non_descendant(target, desired, synced,
                                                           pinned=bool(state.control.pinned)))

    def _non_descendant(self, target: Target, desired: Desired | None, synced: str | None, *, pinned: bool) -> str:
        """Why the desired revision (the branch head; a pin is the operator's choice) does not descend from
        the revision last synced here, or "" (also while the check is still running)."""
        wanted = desired.revision.sha if desired is not None and desired.revision is not None else None
        if pinned or not synced or not wanted or wanted == synced:
            return ""
        lineage = self.lineage.known_or_start_check(synced, wanted, target.id)
        return describe(lineage, self.spec.name) if lineage is not None else ""

    # ------------------------------------------------------------------------------------ dry run

    @property
    def can_dry_run(self) -> bool:
        """Whether dry runs may be sent now (not read-only; connected)."""
        return not self.read_only and self.cache.state is ConnectionState.CONNECTED

    async def dry_run(self, key: ResourceKey, obj: Mapping[str, Any], version: str) -> Predicted | None:
        """The server-side apply dry run of ``obj``; None when the local comparison must stand."""
        resource = self.watcher.resource_for(key.group, key.kind)
        if resource is None:
            return None
        result = await dry_run_apply(self.api, resource, obj, field_manager=self.settings.sync.field_manager)
        pred_digest = digest(obj)
        if result.verdict is DryRunVerdict.PREDICTED:
            return Predicted(pred_digest, version, predicted=result.predicted)
        if result.verdict in (DryRunVerdict.INVALID, DryRunVerdict.REQUIRES_REPLACE):
            prefix = "immutable field changed (needs --force-replace): " if \
                result.verdict is DryRunVerdict.REQUIRES_REPLACE else ""
            return Predicted(pred_digest, version, state=ResourceState.INVALID, message=prefix + result.message)
        return None

    def status(self) -> ClusterStatus:
        """The cluster's row in the snapshot."""
        return self.cache.status(server=self.api.server, labels=self.spec.labels, read_only=self.read_only,
                                 impersonating=self.impersonating)

    @property
    def impersonating(self) -> str:
        """Who this cluster's requests are sent as (``"alice (groups ops)"``), ``""`` for the credentials'
        own identity."""
        context = getattr(self.raw, "context", None)
        return context.impersonation if isinstance(context, ContextConfig) else ""


class _Unconfigured:
    """A stand-in client for a cluster whose kubeconfig cannot be loaded: every call says why."""

    def __init__(self, cluster: str, message: str) -> None:
        self.cluster = cluster
        self.server = ""
        self.message = message

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        from core.errors import ClusterError

        raise ClusterError(self.message, cluster=self.cluster, status=None,
                           hint="fix the cluster's kubeconfig or context in the fleet file")

    async def discover(self) -> tuple[APIResource, ...]:
        return self._fail()  # type: ignore[no-any-return]

    async def list(self, *args: Any, **kwargs: Any) -> Any:
        return self._fail()

    def watch(self, *args: Any, **kwargs: Any) -> Any:
        return self._fail()

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return self._fail()

    async def ping(self, timeout: float) -> None:
        return None  # nothing to ping: the watches report why the cluster cannot be reached

    async def apply(self, *args: Any, **kwargs: Any) -> Any:
        return self._fail()

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        self._fail()

    async def create(self, *args: Any, **kwargs: Any) -> Any:
        return self._fail()

    async def patch(self, *args: Any, **kwargs: Any) -> Any:
        return self._fail()

    async def can_i(self, *args: Any, **kwargs: Any) -> bool:
        return False

    async def whoami(self) -> str:
        return ""

    def server_time(self) -> float:
        return time.time()

    async def close(self) -> None:
        return None
