"""A 410 storm (row K7): every watched kind of a cluster loses its resourceVersion at once (etcd compacted
while the cluster was cut off). Each kind is relisted exactly once, and never more than
``LIST_CONCURRENCY`` lists run on the cluster at the same time; the objects are kept meanwhile. (The
watcher's own CustomResourceDefinition watch, used for discovery, is left out of the counts.)"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from core.live.api import JSON, APIResource
from core.live.cache import ClusterCache
from core.live.cluster import LIST_CONCURRENCY, ClusterWatcher
from core.model import ConnectionState, ResourceKey
from core.settings import WatchSettings
from core.simulated.simulated_cluster import SimulatedCluster, SimulationTiming

KINDS = 12


class CountingAPI:
    """Delegates to a simulated cluster; every list is slowed down and counted (in flight, peak, per kind)."""

    def __init__(self, inner: SimulatedCluster, list_latency: float) -> None:
        self._inner = inner
        self._latency = list_latency
        self.in_flight = 0
        self.peak = 0
        self.lists: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def list(self, resource: APIResource, **kwargs: Any) -> JSON:
        if kwargs.get("limit") == 1:  # a resume probe, not a list of the kind
            return await self._inner.list(resource, **kwargs)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self._latency)
            page = await self._inner.list(resource, **kwargs)
        finally:
            self.in_flight -= 1
        self.lists[resource.kind] = self.lists.get(resource.kind, 0) + 1
        return page


async def test_410_on_every_kind_relists_each_once_with_capped_concurrency() -> None:
    timing = dataclasses.replace(SimulationTiming.instant(), bookmark_interval=3600.0)
    sim = SimulatedCluster("c", timing=timing)
    served = [r for r in await sim.discover() if {"list", "watch"} <= r.verbs]
    kinds = [(r.group, r.kind) for r in served if r.kind != "CustomResourceDefinition"][:KINDS]
    assert len(kinds) == KINDS, [r.kind for r in served]
    sim.ensure_namespace("shop")
    sim.seed_apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept", "namespace": "shop"}})
    api = CountingAPI(sim, list_latency=0.05)
    cache = ClusterCache("c", unreachable_after=30.0)
    settings = WatchSettings(heartbeat_interval=0.05, heartbeat_timeout=0.2, backoff_initial=0.05, backoff_max=0.2)
    watcher = ClusterWatcher(api, cache, kinds=kinds, settings=settings, tick=0.05)  # type: ignore[arg-type]
    await watcher.start()
    try:
        await watcher.wait_until(lambda: cache.state is ConnectionState.CONNECTED, timeout=20)
        assert {k: api.lists.get(k) for _, k in kinds} == {k: 1 for _, k in kinds}
        assert api.peak <= LIST_CONCURRENCY
        api.peak = 0

        sim.set_reachable(False)  # every watch ends; meanwhile etcd moves on and is compacted
        sim.seed_apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new", "namespace": "shop"}})
        sim.compact()
        await asyncio.sleep(0.3)
        assert cache.get(ResourceKey("", "ConfigMap", "shop", "kept")) is not None, "objects kept while cut off"
        sim.set_reachable(True)

        loop = asyncio.get_running_loop()
        began = loop.time()
        await watcher.wait_until(lambda: all(api.lists.get(k, 0) >= 2 for _, k in kinds), timeout=20)
        await watcher.wait_until(lambda: cache.get(ResourceKey("", "ConfigMap", "shop", "new")) is not None,
                                 timeout=20)
        took = loop.time() - began
        await asyncio.sleep(0.5)  # nothing else relists afterwards
        assert {k: api.lists.get(k) for _, k in kinds} == {k: 2 for _, k in kinds}, api.lists
        assert api.peak == LIST_CONCURRENCY, "the storm ran lists in parallel, up to the cap and no further"
        assert cache.get(ResourceKey("", "ConfigMap", "shop", "kept")) is not None
        print(f"\nK7: {KINDS} kinds relisted after a 410 storm in {took:.2f}s, peak {api.peak} concurrent lists")
    finally:
        await watcher.stop()
        await sim.close()


class FleetCounter:
    """Lists in flight over every cluster together (the fleet-wide peak)."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0


class SharedCountingAPI(CountingAPI):
    """A ``CountingAPI`` that also counts into a ``FleetCounter`` shared by every cluster."""

    def __init__(self, inner: SimulatedCluster, list_latency: float, fleet: FleetCounter) -> None:
        super().__init__(inner, list_latency)
        self.fleet = fleet

    async def list(self, resource: APIResource, **kwargs: Any) -> JSON:
        if kwargs.get("limit") == 1:
            return await self._inner.list(resource, **kwargs)
        self.fleet.in_flight += 1
        self.fleet.peak = max(self.fleet.peak, self.fleet.in_flight)
        try:
            return await super().list(resource, **kwargs)
        finally:
            self.fleet.in_flight -= 1


CLUSTERS = 40


def connected(cache: ClusterCache) -> Callable[[], bool]:
    return lambda: cache.state is ConnectionState.CONNECTED


def relisted(api: CountingAPI, kinds: list[tuple[str, str]]) -> Callable[[], bool]:
    return lambda: all(api.lists.get(k, 0) >= 2 for _, k in kinds)

FLEET_CAP = 8


async def test_a_storm_over_many_clusters_is_held_to_the_fleet_wide_cap_exactly() -> None:
    """K7 fleet-wide: 40 clusters × 12 kinds lose their resourceVersions at once. With a fleet cap of 8,
    exactly 8 lists run at the peak in the whole process (never 9; 40 × 4 = 160 without it), each cluster
    still at most ``LIST_CONCURRENCY``, and every kind of every cluster is relisted exactly once."""
    from core.live.list_gate import FleetListLimit

    timing = dataclasses.replace(SimulationTiming.instant(), bookmark_interval=3600.0)
    settings = WatchSettings(heartbeat_interval=0.05, heartbeat_timeout=0.2, backoff_initial=0.05, backoff_max=0.2)
    limit = FleetListLimit(FLEET_CAP)
    counter = FleetCounter()
    sims = [SimulatedCluster(f"c{i:02d}", timing=timing) for i in range(CLUSTERS)]
    served = [r for r in await sims[0].discover() if {"list", "watch"} <= r.verbs]
    kinds = [(r.group, r.kind) for r in served if r.kind != "CustomResourceDefinition"][:KINDS]
    apis = [SharedCountingAPI(sim, list_latency=0.02, fleet=counter) for sim in sims]
    caches = [ClusterCache(f"c{i:02d}", unreachable_after=30.0) for i in range(CLUSTERS)]
    watchers = [ClusterWatcher(api, cache, kinds=kinds, settings=settings, tick=0.05,  # type: ignore[arg-type]
                               fleet_lists=limit) for api, cache in zip(apis, caches, strict=True)]
    for watcher in watchers:
        await watcher.start()
    try:
        for watcher, cache in zip(watchers, caches, strict=True):
            await watcher.wait_until(connected(cache), timeout=60)
        assert counter.peak == FLEET_CAP == limit.peak, (counter.peak, limit.peak)
        assert all(api.peak <= LIST_CONCURRENCY for api in apis)
        counter.peak = limit.peak = 0
        for api in apis:
            api.peak = 0

        for sim in sims:
            sim.set_reachable(False)
            sim.seed_apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "moved-on"}})
            sim.compact()
        await asyncio.sleep(0.3)
        for sim in sims:
            sim.set_reachable(True)
        loop = asyncio.get_running_loop()
        began = loop.time()
        for watcher, api in zip(watchers, apis, strict=True):
            await watcher.wait_until(relisted(api, kinds), timeout=60)
        took = loop.time() - began
        await asyncio.sleep(0.3)
        assert all({k: api.lists.get(k) for _, k in kinds} == {k: 2 for _, k in kinds} for api in apis)
        assert counter.peak == FLEET_CAP == limit.peak, (counter.peak, limit.peak)
        assert max(api.peak for api in apis) <= LIST_CONCURRENCY
        assert limit.in_flight == 0 and limit.waiting == 0
        print(f"\nK7: {CLUSTERS} clusters × {KINDS} kinds relisted in {took:.2f}s with 20 ms lists, "
              f"fleet-wide peak {counter.peak} (cap {FLEET_CAP})")
    finally:
        for watcher in watchers:
            await watcher.stop()
        for sim in sims:
            await sim.close()
