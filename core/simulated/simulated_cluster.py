"""``SimulatedCluster``: an in-process Kubernetes API implementing ``KubeAPI``, for the demo and fast tests.

Role: the API surface (discovery, list with pagination and label selectors, watch from a
resourceVersion with bookmarks and 410 after compaction, get, server-side apply with dry run,
create, delete, access reviews) over ``ObjectStore``, plus a controller loop
(``core.simulated.controllers``) that gives workloads children and status, and fault knobs for
tests and the demo: reachability, latency, the user's permissions, compaction, and writes by other
field managers (``update_as("kubectl-edit", …)``).

Constraint: one event loop; it must not import ``core.desired``, ``core.sync`` or ``core.engine``. The
controller loop is an owned, guarded task started on first use (or ``start()``) and stopped by
``close()``; tests drive it deterministically with ``settle()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.aio import create_guarded_task, raise_if_cancelling, stop_tasks
from core.errors import ClusterError
from core.live.api import JSON, APIResource
from core.model import ResourceKey
from core.simulated.controllers import Controllers
from core.simulated.discovery import plural_label
from core.simulated.jsoncopy import json_copy
from core.simulated.pods import SimulationTiming
from core.simulated.selectors import Selector, parse_selector
from core.simulated.store import ObjectStore, StoredEvent
from core.simulated.watch import WatchQueue, backlog, status_object, stream

__all__ = ["ADMIN", "VIEWER", "SimulatedCluster", "SimulatedUser", "SimulationTiming"]

log = logging.getLogger(__name__)
_WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
IDLE_TICKS = 4
"""The controller loop of a cluster where nothing happens waits up to this many ticks between passes."""


@dataclass(frozen=True, slots=True)
class SimulatedUser:
    """Who the simulated cluster thinks is calling, and what RBAC lets them do."""

    name: str = "admin"
    read_only: bool = False
    """May only get, list and watch (every write, dry runs included, is 403)."""
    denied: frozenset[tuple[str, str]] = frozenset()
    """``(group, kind)`` pairs this user may not touch at all (403 on every verb)."""

    def allows(self, verb: str, resource: APIResource) -> bool:
        """Whether this user may ``verb`` the kind."""
        if resource.group_kind in self.denied:
            return False
        return not (self.read_only and verb in _WRITE_VERBS)


ADMIN = SimulatedUser()
"""May do everything (the default)."""
VIEWER = SimulatedUser(name="viewer", read_only=True)
"""May only read."""


class SimulatedCluster:
    """An in-process cluster: the ``KubeAPI`` protocol plus simulation controls.

    Args:
        name: the cluster's name in the fleet.
        server: the URL shown for it.
        timing: delays of the simulation (``SimulationTiming.instant()`` in tests).
        user: the caller's identity and permissions.
        clock: wall clock for timestamps and delays (injected in tests).
        nodes: how many nodes DaemonSets run on.
        controllers: run the controller loop in the background (tests may rely on ``settle()`` only).
    """

    create_manager = "fleetdeck"
    """The field manager recorded for ``create`` (the real client sends fleetdeck's)."""

    def __init__(
        self,
        name: str,
        *,
        server: str = "",
        timing: SimulationTiming | None = None,
        user: SimulatedUser = ADMIN,
        clock: Callable[[], float] = time.time,  # injected in tests
        nodes: int = 3,
        controllers: bool = True,
    ) -> None:
        self.cluster = name
        self.server = server or f"https://{name}.simulated.invalid:6443"
        self.timing = timing or SimulationTiming()
        self.store = ObjectStore(name, clock=clock)
        self.controllers = Controllers(self.store, timing=self.timing, nodes=nodes)
        self.requests: deque[tuple[str, str]] = deque(maxlen=10_000)
        """Every API call as ``(verb, what)``, newest last: lets tests assert that nothing was written."""
        self._run_controllers = controllers
        self._user = user
        self._reachable = True
        self._latency = self.timing.latency
        self._task: asyncio.Task[Any] | None = None
        self._wake: asyncio.Event | None = None
        self._watchers: set[WatchQueue] = set()
        self.store.subscribe(self._on_event)

    # ------------------------------------------------------------------------------------ KubeAPI: reads

    async def discover(self) -> tuple[APIResource, ...]:
        """Every kind served (built-ins and applied CRDs)."""
        await self._enter("discover", None)
        return self.store.discovery.resources()

    async def list(
        self,
        resource: APIResource,
        *,
        label_selector: str = "",
        limit: int = 500,
        continue_token: str = "",
    ) -> JSON:
        """One page of a cluster-wide list, sorted by namespace and name."""
        await self._enter("list", resource)
        self._require_served(resource)
        return self.store.list_page(resource, selector=self._selector(label_selector), limit=limit,
                                    continue_token=continue_token)

    async def watch(
        self,
        resource: APIResource,
        *,
        resource_version: str,
        timeout_seconds: int,
        label_selector: str = "",
    ) -> AsyncIterator[JSON]:
        """Events after ``resource_version`` (``""``/``"0"``: synthetic ADDED for every object first).

        Bookmarks are sent every ``timing.bookmark_interval`` of quiet. The stream ends after
        ``timeout_seconds``, on ``close()`` and when the cluster becomes unreachable; a compacted
        ``resource_version`` yields one ``ERROR`` event with code 410 and ends.
        """
        await self._enter("watch", resource)
        self._require_served(resource)
        selector = self._selector(label_selector)
        queue: WatchQueue = asyncio.Queue()
        self._watchers.add(queue)
        try:
            try:
                events = backlog(self.store, resource, resource_version, selector)
            except ClusterError as exc:
                if not exc.gone:
                    raise
                yield {"type": "ERROR", "object": status_object(exc)}
                return
            for event in events:
                yield event
            async for event in stream(queue, self.store, resource, selector, timeout_seconds=timeout_seconds,
                                      bookmark_interval=self.timing.bookmark_interval):
                yield event
        finally:
            self._watchers.discard(queue)

    async def ping(self, timeout: float) -> None:
        """Heartbeat: answers after the simulated latency unless unreachable (not counted in ``requests``)."""
        if self._latency > 0:
            await asyncio.sleep(min(self._latency, timeout))
        if not self._reachable:
            raise ClusterError("GET /version: connection refused", cluster=self.cluster, status=None,
                               reason="ConnectionRefused")
        if self._latency > timeout:
            raise ClusterError(f"GET /version: no answer within {timeout:g}s", cluster=self.cluster,
                               status=None, reason="Timeout")

    async def get(self, resource: APIResource, name: str, namespace: str = "") -> JSON | None:
        """The object, or None when it does not exist."""
        await self._enter("get", resource, namespace, name)
        self._require_served(resource)
        return self.store.get(_key(resource, name, namespace))

    # ------------------------------------------------------------------------------------ KubeAPI: writes

    async def apply(
        self,
        resource: APIResource,
        obj: Mapping[str, Any],
        *,
        field_manager: str,
        dry_run: bool = False,
        force: bool = True,
    ) -> JSON:
        """Server-side apply with strict field validation; the (predicted, when ``dry_run``) object."""
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        await self._enter("patch", resource, namespace, name)
        if self.store.peek(_key(resource, name, namespace)) is None:
            self._authorize("create", resource, namespace, name)
        return self.store.apply(resource, obj, manager=field_manager, force=force, dry_run=dry_run)

    async def delete(
        self,
        resource: APIResource,
        name: str,
        namespace: str = "",
        *,
        propagation: str = "Foreground",
        uid: str | None = None,
        dry_run: bool = False,
    ) -> None:
        """Delete the object and (unless ``Orphan``) its dependents; a missing object is not an error."""
        await self._enter("delete", resource, namespace, name)
        self._require_served(resource)
        self.store.delete(_key(resource, name, namespace), uid=uid, propagation=propagation, dry_run=dry_run)

    async def create(self, resource: APIResource, obj: Mapping[str, Any], *, dry_run: bool = False) -> JSON:
        """Create an object (409 AlreadyExists when it exists)."""
        meta = obj.get("metadata") or {}
        await self._enter("create", resource, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        return self.store.create(resource, obj, manager=self.create_manager, dry_run=dry_run)

    async def patch(self, resource: APIResource, name: str, namespace: str, patch: Mapping[str, Any], *,
                    dry_run: bool = False) -> JSON:
        """A merge patch (``None`` removes a field) of an existing object; 404 when it does not exist."""
        await self._enter("patch", resource, namespace, name)
        self._require_served(resource)
        key = _key(resource, name, namespace)
        if dry_run:
            live = self.store.get(key)
            if live is None:
                raise self.store.error(404, "NotFound", f'{resource.kind} "{name}" not found')
            return live
        return self.store.update(key, patch, manager=self.create_manager)

    async def can_i(self, verb: str, resource: APIResource, namespace: str = "") -> bool:
        """Whether the simulated user may ``verb`` the kind."""
        await self._enter("create", None, what="selfsubjectaccessreviews")
        return self._user.allows(verb, resource)

    def server_time(self) -> float:
        """The simulated server's clock (the one it stamps objects with)."""
        return self.store.clock()

    async def whoami(self) -> str:
        """The simulated user's name."""
        await self._enter("create", None, what="selfsubjectreviews")
        return self._user.name

    async def close(self) -> None:
        """Stop the controller loop and end every open watch; later calls start it again."""
        self._end_watches()
        task, self._task = self._task, None
        if task is not None:
            await stop_tasks([task])

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the controller loop now (it also starts on the first API call)."""
        self._ensure_started(required=True)

    async def settle(self, *, max_passes: int = 100) -> int:
        """Run controller passes until one writes nothing; the number of passes that wrote."""
        for passes in range(max_passes):
            if self.controllers.reconcile() == 0:
                return passes
            await asyncio.sleep(0)
        return max_passes

    def settle_now(self, *, max_passes: int = 100) -> int:
        """``settle`` without an event loop (for seeding before anything runs)."""
        for passes in range(max_passes):
            if self.controllers.reconcile() == 0:
                return passes
        return max_passes

    def fast_forward(self, seconds: float) -> int:
        """Settle, then age every pod and rollout by ``seconds`` and settle again (no event loop needed).

        Pre-seeded clusters use this to start in their steady state: pods Ready, crash-looping pods
        restarted many times, stuck rollouts past their progress deadline. Returns the passes that wrote.
        """
        passes = self.settle_now()
        self.controllers.backdate(seconds)
        return passes + self.settle_now()

    # ------------------------------------------------------------------------------------ fault knobs

    @property
    def reachable(self) -> bool:
        """Whether API calls currently reach the server."""
        return self._reachable

    def set_reachable(self, reachable: bool) -> None:
        """Cut or restore the network: while cut, every call raises ``ClusterError`` (status None).

        Cutting also ends every open watch. The cluster itself keeps running (controllers, other
        managers' writes), as a real one behind a partition does.
        """
        self._reachable = reachable
        if not reachable:
            self._end_watches()

    def set_latency(self, seconds: float) -> None:
        """Make every API call wait ``seconds`` before answering."""
        self._latency = seconds

    def set_user(self, user: SimulatedUser) -> None:
        """Change who the caller is (``VIEWER`` to simulate read-only credentials)."""
        self._user = user

    def compact(self) -> int:
        """Compact the event log: watches from an older resourceVersion get 410; the compaction point."""
        return self.store.compact()

    def update_as(self, manager: str, key: ResourceKey, patch: Mapping[str, Any]) -> JSON:
        """Change an object as another field manager would (``kubectl-edit``, an HPA, a person).

        Args:
            manager: the field manager recorded (operation ``Update``).
            key: the object.
            patch: object-shaped changes; maps and keyed lists merge, ``None`` removes a field.

        Returns:
            The updated object.

        Raises:
            ClusterError: 404 when the object does not exist, 422 for an immutable field.
        """
        self.requests.append(("update_as", f"{manager} {key}"))
        return self.store.update(key, patch, manager=manager)

    def delete_as(self, manager: str, key: ResourceKey, *, propagation: str = "Background") -> bool:
        """Delete an object as someone else would (``kubectl delete``); False when it did not exist."""
        self.requests.append(("delete_as", f"{manager} {key}"))
        return self.store.delete(key, propagation=propagation)

    def restart_pod(self, key: ResourceKey) -> None:
        """Make a pod's containers restart once (its ``restartCount`` grows on the next pass)."""
        self.controllers.restart(key)
        self._poke()

    def seed_apply(self, obj: Mapping[str, Any], *, field_manager: str = "fleetdeck",
                   create_namespace: bool = True) -> JSON:
        """Apply ``obj`` directly (no latency, reachability or RBAC): pre-seeds clusters for the demo.

        Args:
            obj: a manifest with ``apiVersion``, ``kind`` and ``metadata``.
            field_manager: who applies it.
            create_namespace: create the object's namespace first if it is missing.

        Raises:
            ClusterError: as ``apply`` would (404 for a kind that is not served).
        """
        resource = self.resource_for(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if resource is None:
            raise self.store.error(404, "NotFound", f"no kind {obj.get('kind')} in {obj.get('apiVersion')}")
        namespace = str((obj.get("metadata") or {}).get("namespace") or "")
        if create_namespace and resource.namespaced and namespace:
            self.ensure_namespace(namespace, field_manager=field_manager)
        return self.store.apply(resource, obj, manager=field_manager, force=True, dry_run=False)

    def ensure_namespace(self, name: str, *, field_manager: str = "fleetdeck") -> None:
        """Create namespace ``name`` unless it exists."""
        if self.store.peek(ResourceKey("", "Namespace", "", name)) is None:
            self.seed_apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                            field_manager=field_manager)

    def resource_for(self, api_version: str, kind: str) -> APIResource | None:
        """The served kind for ``apiVersion`` and ``kind``, if any."""
        return self.store.discovery.for_api_version(api_version, kind)

    def get_object(self, key: ResourceKey) -> JSON | None:
        """A copy of the object (no latency, reachability or RBAC), for tests and the demo."""
        return self.store.get(key)

    def objects(self, group: str, kind: str, namespace: str | None = None) -> tuple[JSON, ...]:
        """Copies of every object of a kind, sorted by namespace and name."""
        return tuple(json_copy(o) for o in self.store.objects((group, kind), namespace))

    # ------------------------------------------------------------------------------------ internals

    async def _enter(self, verb: str, resource: APIResource | None, namespace: str = "", name: str = "",
                     *, what: str = "") -> None:
        label = what or (f"{plural_label(resource)} {namespace}/{name}".rstrip("/ ") if resource else "/apis")
        self.requests.append((verb, label))
        self._ensure_started()
        if self._latency > 0:
            await asyncio.sleep(self._latency)
        if not self._reachable:
            raise ClusterError(f"{verb} {label}: connection refused", cluster=self.cluster, status=None,
                               reason="ConnectionRefused")
        if resource is not None:
            self._authorize(verb, resource, namespace, name)

    def _authorize(self, verb: str, resource: APIResource, namespace: str, name: str) -> None:
        if self._user.allows(verb, resource):
            return
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        target = f'{plural_label(resource)} "{name}"' if name else plural_label(resource)
        raise ClusterError(
            f'{target} is forbidden: User "{self._user.name}" cannot {verb} resource "{resource.plural}" in API '
            f'group "{resource.group}" {scope}',
            cluster=self.cluster, status=403, reason="Forbidden",
        )

    def _require_served(self, resource: APIResource) -> None:
        served = self.store.discovery.lookup(*resource.group_kind)
        if served is None or served.version != resource.version:
            raise self.store.error(404, "NotFound", "the server could not find the requested resource")

    def _selector(self, text: str) -> Selector:
        try:
            return parse_selector(text)
        except ValueError as exc:
            raise self.store.error(400, "BadRequest", f"unable to parse requirement: {exc}") from None

    def _on_event(self, event: StoredEvent) -> None:
        for queue in list(self._watchers):
            queue.put_nowait(event)
        self._poke()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _end_watches(self) -> None:
        for queue in list(self._watchers):
            queue.put_nowait(None)

    def _ensure_started(self, *, required: bool = False) -> None:
        if not self._run_controllers:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if required:
                raise
            return
        if self._task is not None and not self._task.done() and self._task.get_loop() is loop:
            return
        self._wake = asyncio.Event()
        self._task = create_guarded_task(self._run(self._wake), name=f"simulated-controllers:{self.cluster}")

    async def _run(self, wake: asyncio.Event) -> None:
        period = self.timing.tick
        while True:
            wrote = 0
            try:
                wrote = self.controllers.reconcile()
            except Exception:  # a controller bug must not stop the simulated cluster
                log.exception("simulated cluster %s: controller pass failed", self.cluster)
            # A pass that wrote nothing doubles the wait, up to IDLE_TICKS ticks: an idle cluster costs a pass
            # every 2 s, not 2 a second (time-driven transitions then come up to that much later; a change
            # to the cluster wakes the loop at once, and a pass that writes goes back to the tick).
            period = self.timing.tick if wrote else min(period * 2, self.timing.tick * IDLE_TICKS)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period):
                    await wake.wait()
            raise_if_cancelling()
            wake.clear()


def _key(resource: APIResource, name: str, namespace: str) -> ResourceKey:
    return ResourceKey(resource.group, resource.kind, namespace if resource.namespaced else "", name)
