"""``ClusterWatcher``: keeps one cluster's ``ClusterCache`` current with one reflector task per kind.

Role: discover the cluster's kinds, run ``infinite_watch`` for every kind the apps need (one guarded task
each, named ``watch:<cluster>:<group>/<kind>``), cap concurrent lists per cluster, watch
CustomResourceDefinitions to re-discover when kinds appear, change version or vanish, age the connection
state (Degraded → Unreachable) on a ticker, and tell the engine after every applied batch.

Liveness: a watch on a frozen API server is just silence, and silence is also what a quiet healthy cluster
sends. So a heartbeat task asks ``KubeAPI.ping`` (``GET /version``) every ``heartbeat_interval`` seconds
with a ``heartbeat_timeout`` deadline; no answer marks the whole cluster stale (``ClusterCache.heartbeat_failed``:
Degraded, then Unreachable after ``unreachable_after``), the first answer after that clears it and wakes every
backoff sleep of this cluster (watches and discovery retry at once instead of after up to ``backoff_max``).
Watch streams that heard nothing since the outage began are restarted then too (resuming from their
resourceVersion, no relist): after a network outage their connections may be half-open, and waiting for the
idle timeout (``read_timeout``) would show a Connected cluster whose events do not arrive.

Constraint: reads only. The watcher never writes to the cluster; it owns its tasks and nothing else (the
``KubeAPI`` is closed by whoever created it, the cache outlives the watcher).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from core.aio import create_guarded_task, stop_tasks
from core.errors import ClusterError
from core.live.api import APIResource, KubeAPI
from core.live.cache import ClusterCache, GroupKind
from core.live.list_gate import FleetListLimit, ListGate
from core.live.watch_events import Deleted, Listed, Upserted, WatchForbidden
from core.live.watching import Backoff, WatchState, infinite_watch
from core.settings import WatchSettings

log = logging.getLogger(__name__)

CRD_KIND: GroupKind = ("apiextensions.k8s.io", "CustomResourceDefinition")
CRD_RESOURCE = APIResource(group="apiextensions.k8s.io", version="v1", kind="CustomResourceDefinition",
                           plural="customresourcedefinitions", namespaced=False,
                           verbs=frozenset({"get", "list", "watch"}))
LIST_CONCURRENCY = 4
"""Concurrent lists per cluster (fault K7 in docs/reliability.md: a 410 storm must not relist everything at once)."""

OnChange = Callable[[Sequence[Upserted | Deleted]], None]


class ClusterWatcher:
    """Watches the kinds the apps need on one cluster and feeds its cache.

    Args:
        api: the cluster (usually ``guard(KubeClient(...))``).
        cache: the cluster's store; kept across watcher restarts.
        kinds: ``(group, kind)`` pairs to watch from the start.
        settings: timeouts, backoff, resync.
        on_change: called after each applied batch with its effective changes (``()`` when only the
            connection state changed); the engine coalesces from there.
        label_selectors: optional server-side selector per kind.
        list_concurrency: concurrent lists on this cluster.
        fleet_lists: the fleet-wide cap on concurrent lists, shared by every cluster's watcher (K7).
        tick: seconds between connection-state refreshes.
        discovery_debounce: seconds to wait after a CRD event before discovering again.
    """

    def __init__(
        self,
        api: KubeAPI,
        cache: ClusterCache,
        *,
        kinds: Iterable[GroupKind] = (),
        settings: WatchSettings | None = None,
        on_change: OnChange | None = None,
        label_selectors: Mapping[GroupKind, str] | None = None,
        list_concurrency: int = LIST_CONCURRENCY,
        fleet_lists: FleetListLimit | None = None,
        tick: float = 1.0,
        discovery_debounce: float = 0.5,
    ) -> None:
        self.api = api
        self.cache = cache
        self.settings = settings or WatchSettings()
        self.resources: dict[GroupKind, APIResource] = {}
        """Served kinds from the last discovery."""
        self.discoveries = 0
        self._wanted: set[GroupKind] = set(kinds)
        self._selectors = dict(label_selectors or {})
        self._on_change = on_change
        self._gate = ListGate(list_concurrency, fleet_lists)
        self._tick = tick
        self._debounce = discovery_debounce
        self._watches: dict[GroupKind, tuple[APIResource, asyncio.Task[Any]]] = {}
        self._states: dict[GroupKind, WatchState] = {}
        self._service: list[asyncio.Task[Any]] = []
        self._rediscover = asyncio.Event()
        self._changed = asyncio.Event()
        self._answered_again = asyncio.Event()
        """Set (then replaced) when the heartbeat is answered again after failing: ends backoff sleeps."""
        self.heartbeats = 0
        """Heartbeats sent (for tests and metrics)."""
        self.restarted_watches = 0
        """Watch streams restarted because they stayed silent through an outage."""

    # ----- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start discovery, the CRD watch and the ticker; returns at once (an unreachable cluster
        must not hold up the others)."""
        for gk in self._wanted:
            self.cache.track(gk)
        name = self.api.cluster
        self._service = [
            create_guarded_task(self._discovery_loop(), name=f"discover:{name}"),
            create_guarded_task(self._ticker(), name=f"tick:{name}"),
            create_guarded_task(self._heartbeat(), name=f"heartbeat:{name}"),
        ]

    async def stop(self) -> None:
        """Cancel every task of this watcher; the cache keeps its data."""
        tasks = [task for _, task in self._watches.values()] + self._service
        self._watches.clear()
        self._service = []
        await stop_tasks(tasks)

    async def ensure_kinds(self, kinds: Iterable[GroupKind]) -> None:
        """Watch these kinds too (as soon as discovery says they are served)."""
        new = set(kinds) - self._wanted
        if not new:
            return
        self._wanted |= new
        for gk in new:
            if gk in self.resources or not self.discoveries:
                self.cache.track(gk)
        self._reconcile_watches()

    def resource_for(self, group: str, kind: str) -> APIResource | None:
        """The served resource of a kind (for ``get``/``apply``/``dry_run_apply``), if any."""
        return self.resources.get((group, kind))

    def request_discovery(self) -> None:
        """Discover again soon (e.g. after a "kind not found" during a render or a sync)."""
        self._rediscover.set()

    def state_of(self, group: str, kind: str) -> WatchState | None:
        """The watch progress of a kind (lists and watches done, current resourceVersion)."""
        return self._states.get((group, kind))

    @property
    def unserved(self) -> frozenset[GroupKind]:
        """Wanted kinds the cluster does not serve (a CRD not installed yet)."""
        if not self.discoveries:
            return frozenset()
        return frozenset(gk for gk in self._wanted if gk not in self.resources)

    def serves(self, gk: GroupKind) -> bool:
        """Whether ``gk`` is not ``unserved`` (without building that set: asked once per object evaluated)."""
        return not self.discoveries or gk not in self._wanted or gk in self.resources

    async def wait_until(self, predicate: Callable[[], bool], *, timeout: float) -> None:
        """Wait until ``predicate()`` holds, re-checking after every change.

        Raises:
            TimeoutError: it did not hold within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    # ----- discovery --------------------------------------------------------------------------

    async def _discovery_loop(self) -> None:
        backoff = Backoff(self.settings.backoff_initial, self.settings.backoff_max)
        while True:
            try:
                served = await self.api.discover()
            except ClusterError as exc:
                log.warning("cluster %s: discovery failed: %s", self.api.cluster, exc.message)
                self._fail_wanted(exc)
                await self._pause(backoff.next())
                continue
            backoff.reset()
            self._apply_discovery(served)
            await self._rediscover.wait()
            self._rediscover.clear()
            await asyncio.sleep(self._debounce)

    def _fail_wanted(self, exc: ClusterError) -> None:
        changed = False
        for gk in self._wanted:
            if gk not in self._watches:
                changed = self.cache.kind_failed(gk, exc) or changed
        if changed:
            self._notify(())

    def _apply_discovery(self, served: Iterable[APIResource]) -> None:
        self.resources = {r.group_kind: r for r in served if r.watchable}
        self.discoveries += 1
        for gk in self._wanted - set(self.resources):
            self.cache.untrack(gk)  # not served: nothing to wait for, nothing failing
        self._reconcile_watches()
        if CRD_KIND not in self._watches and CRD_KIND in self.resources:
            self._start_watch(self.resources[CRD_KIND])
        self._notify(())

    def _reconcile_watches(self) -> None:
        """Start watches for wanted, served kinds; restart those whose served version changed."""
        for gk in self._wanted:
            resource = self.resources.get(gk)
            if resource is None:
                continue
            running = self._watches.get(gk)
            if running is not None and running[0] == resource and not running[1].done():
                continue
            if running is not None:
                running[1].cancel()
                self._states.pop(gk, None)
            self.cache.track(gk)
            self._start_watch(resource)

    def _start_watch(self, resource: APIResource) -> None:
        name = f"watch:{self.api.cluster}:{resource.group}/{resource.kind}"
        task = create_guarded_task(self._run_kind(resource), name=name)
        self._watches[resource.group_kind] = (resource, task)

    # ----- one kind ---------------------------------------------------------------------------

    async def _run_kind(self, resource: APIResource) -> None:
        gk = resource.group_kind
        state = self._states.setdefault(gk, WatchState())
        events = infinite_watch(
            self.api, resource, settings=self.settings, state=state,
            label_selector=self._selectors.get(gk, ""), list_gate=self._gate,
            on_error=lambda exc: self._kind_failed(gk, exc), on_healthy=lambda: self._kind_healthy(gk),
            sleep=self._pause, rng=random.Random(), on_list_progress=lambda n: self._list_progress(gk, n),
        )
        async for event in events:
            before = self.cache.state
            changes = self.cache.apply(event)
            if gk == CRD_KIND and changes:
                self._rediscover.set()  # a CRD appeared, changed (versions, Established) or vanished
            if changes or isinstance(event, Listed) or self.cache.state is not before:
                self._notify(changes)
            # Not kept while waiting for the next event: a list's items (and the changes built from
            # them) would stay alive as dicts until the kind's next event, which may be hours away.
            del event, changes
        log.info("cluster %s: %s/%s is no longer served; dropping it", self.api.cluster, *gk)
        if self._watches.get(gk, (None, None))[1] is asyncio.current_task():
            self._watches.pop(gk, None)
            self._states.pop(gk, None)
        self._notify(self.cache.drop_kind(resource))
        self._rediscover.set()

    def _kind_failed(self, gk: GroupKind, exc: ClusterError) -> None:
        if gk not in self._wanted:
            return  # the internal CRD watch: best effort, not part of the cluster's health
        if isinstance(exc, WatchForbidden):
            log.warning("cluster %s: no permission to list/watch %s/%s: %s", self.api.cluster, *gk, exc.message)
        if self.cache.kind_failed(gk, exc):
            self._notify(())

    def _list_progress(self, gk: GroupKind, listed: int) -> None:
        if gk in self._wanted and self.cache.list_progress(gk, listed):
            self._notify(())

    def _kind_healthy(self, gk: GroupKind) -> None:
        if self.cache.kind_healthy(gk):
            self._notify(())

    # ----- liveness ---------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Ping the API server forever; its answers (or their absence) drive ``cache.responsive``.

        Pings start ``heartbeat_interval`` apart; one that timed out is followed by the next at once, so
        while a server is frozen a ping is always waiting and the first moment it answers is noticed.
        """
        interval, timeout = self.settings.heartbeat_interval, self.settings.heartbeat_timeout
        outage_began: float | None = None
        while True:
            began = time.monotonic()
            self.heartbeats += 1
            try:
                await self.api.ping(timeout)
            except ClusterError as exc:
                # No HTTP answer at all. Any status proves the server is alive, and credentials that
                # cannot be obtained are the watches' to report (the server was never asked).
                if exc.status is None and exc.reason != "CredentialsFailed":
                    outage_began = began if outage_began is None else outage_began
                    if self.cache.heartbeat_failed(exc):
                        log.warning("cluster %s: %s", self.api.cluster, self.cache.message)
                        self._notify(())
                    await asyncio.sleep(max(0.0, interval - (time.monotonic() - began)))
                    continue
            if self.cache.heartbeat_ok():
                log.info("cluster %s: API server answers again", self.api.cluster)
                if outage_began is not None:
                    self._restart_silent_watches(outage_began)
                self._wake_backoffs()
                self._notify(())
            outage_began = None
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - began)))

    def _restart_silent_watches(self, since: float) -> None:
        """Restart the watch streams that heard nothing since ``since`` (monotonic); they resume, no relist."""
        for gk, (resource, task) in list(self._watches.items()):
            state = self._states.get(gk)
            if task.done() or state is None or not state.resource_version:
                continue  # finished, or still listing (a list has its own deadline)
            if state.heard_at is not None and state.heard_at >= since:
                continue
            log.info("cluster %s: %s/%s heard nothing during the outage; resuming its watch", self.api.cluster, *gk)
            task.cancel()
            self.restarted_watches += 1
            self._start_watch(resource)

    def _wake_backoffs(self) -> None:
        event, self._answered_again = self._answered_again, asyncio.Event()
        event.set()

    async def _pause(self, delay: float) -> None:
        """A backoff sleep that ends early when the server answers again after an outage."""
        event = self._answered_again
        try:
            async with asyncio.timeout(delay):
                await event.wait()
        except TimeoutError:
            pass

    # ----- notifications ----------------------------------------------------------------------

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            if self.cache.refresh_state():
                self._notify(())

    def _notify(self, changes: Sequence[Upserted | Deleted]) -> None:
        self._changed.set()
        if self._on_change is not None:
            try:
                self._on_change(changes)
            except Exception:
                log.exception("cluster %s: on_change callback failed", self.api.cluster)

