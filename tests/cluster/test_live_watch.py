"""Watching a real kube-apiserver: events into the cache, an apiserver restart, a connection cut with a
compacted resourceVersion (410 → relist → synthetic delete), and a TCP reset resumed without relist.

Network faults are injected with a small TCP proxy on 127.0.0.1 between the client and the apiserver
(the apiserver certificate is for 127.0.0.1, so TLS still verifies through it).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from core.live.api import APIResource
from core.live.cache import ClusterCache
from core.live.cluster import ClusterWatcher
from core.live.kube import KubeClient
from core.live.kubeconfig import ContextConfig, load_kubeconfig
from core.live.watch_events import Deleted, Upserted
from core.model import ConnectionState, ResourceKey
from core.settings import WatchSettings
from devcluster import ClusterInfo, ControlPlane

pytestmark = pytest.mark.cluster

CM_KIND = ("", "ConfigMap")
FAST = WatchSettings(backoff_initial=0.2, backoff_max=1.0, unreachable_after=1.0, connect_timeout=3.0,
                     read_timeout=60.0, watch_timeout=(30, 40))
WAIT = 60.0


class Proxy:
    """A TCP relay on 127.0.0.1 that can refuse connections, reset them, or go silent."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.silent = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stop listening (connection refused) and reset every open connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.reset()

    def reset(self) -> None:
        """Abort every relayed connection (TCP RST), keep listening."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        await self.cut()
        for task in list(self._tasks):
            task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await src.read(65536):
                while self.silent:
                    await asyncio.sleep(0.05)
                dst.write(data)
                await dst.drain()
        with contextlib.suppress(OSError, RuntimeError):
            dst.close()


@pytest.fixture
def admin_context(cluster: ClusterInfo) -> ContextConfig:
    return load_kubeconfig(cluster.kubeconfig).context(cluster.admin_context)


@pytest_asyncio.fixture
async def proxy(cluster: ClusterInfo) -> AsyncIterator[Proxy]:
    relay = Proxy(cluster.port)
    await relay.start()
    yield relay
    await relay.close()


class Harness:
    """A KubeClient → ClusterCache ← ClusterWatcher chain on one cluster, recording every change."""

    def __init__(self, name: str, context: ContextConfig, kinds: tuple[tuple[str, str], ...]) -> None:
        self.api = KubeClient(cluster=name, context=context, settings=FAST)
        self.cache = ClusterCache(name, unreachable_after=FAST.unreachable_after)
        self.changes: list[Upserted | Deleted] = []
        self.states: list[ConnectionState] = []
        self.watcher = ClusterWatcher(self.api, self.cache, kinds=kinds, settings=FAST, on_change=self._record,
                                      tick=0.1)

    def _record(self, changes: Any) -> None:
        self.changes.extend(changes)
        if not self.states or self.states[-1] is not self.cache.state:
            self.states.append(self.cache.state)

    async def until(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        try:
            await self.watcher.wait_until(predicate, timeout=timeout)
        except TimeoutError:
            pytest.fail(f"timed out waiting for {what}; state={self.cache.state} {self.cache.message!r}")

    def full_lists(self) -> int:
        state = self.watcher.state_of(*CM_KIND)
        return state.lists if state else 0


@pytest_asyncio.fixture
async def harness_factory() -> AsyncIterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(name: str, context: ContextConfig, kinds: tuple[tuple[str, str], ...] = (CM_KIND,)) -> Harness:
        harness = Harness(name, context, kinds)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.watcher.stop()
        await harness.api.close()


def cm_key(namespace: str, name: str) -> ResourceKey:
    return ResourceKey(group="", kind="ConfigMap", namespace=namespace, name=name)


def cm_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps/{name}"


async def put_cm(cluster: ClusterInfo, namespace: str, name: str, value: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"v": value}}
    await asyncio.to_thread(cluster.rest().apply, cm_path(namespace, name), body)


async def delete_cm(cluster: ClusterInfo, namespace: str, name: str) -> None:
    await asyncio.to_thread(cluster.rest().delete, cm_path(namespace, name))


def data_of(harness: Harness, key: ResourceKey) -> str | None:
    obj = harness.cache.get(key)
    return None if obj is None else str((obj.get("data") or {}).get("v"))


# ---------------------------------------------------------------------------------------------- tests


async def test_watch_sees_added_modified_deleted(cluster: ClusterInfo, namespace: str,
                                                 admin_context: ContextConfig,
                                                 harness_factory: Callable[..., Harness]) -> None:
    """Objects created, changed and deleted through the API show up in the cache, in order."""
    h = harness_factory(cluster.name, admin_context, (CM_KIND, ("apps", "Deployment")))
    await h.watcher.start()
    await h.until(lambda: h.cache.state is ConnectionState.CONNECTED, "connected")
    assert h.cache.listed("apps", "Deployment") and h.watcher.resource_for("apps", "Deployment") is not None
    key = cm_key(namespace, "w")
    await put_cm(cluster, namespace, "w", "1")
    await h.until(lambda: data_of(h, key) == "1", "ADDED")
    await put_cm(cluster, namespace, "w", "2")
    await h.until(lambda: data_of(h, key) == "2", "MODIFIED")
    await delete_cm(cluster, namespace, "w")
    await h.until(lambda: h.cache.get(key) is None, "DELETED")
    mine = [c for c in h.changes if c.obj["metadata"]["name"] == "w" and c.obj["metadata"].get("namespace") == namespace]
    assert [type(c).__name__ for c in mine] == ["Upserted", "Upserted", "Deleted"]
    assert not any(isinstance(c, Deleted) and c.synthetic for c in mine)
    assert key in h.cache.drain_dirty()
    assert h.full_lists() == 1, "no relist during normal watching"
    assert h.api.counters["watch"] >= 1


async def test_restart_while_cut_off_relists_after_410_with_synthetic_delete(
        cluster: ClusterInfo, namespace: str, control_plane: ControlPlane, admin_context: ContextConfig,
        proxy: Proxy, harness_factory: Callable[..., Harness]) -> None:
    """Cut off from the watcher, an object is deleted, etcd is compacted and the apiserver restarts.

    Meanwhile the cache is Unreachable and keeps every object. Once the apiserver is back the watch's old
    resourceVersion is gone (410): the kind is relisted exactly once, the vanished object becomes a
    synthetic delete (K6), and new events flow (Connected, fresh state). One restart covers both the
    restart and the compaction cases: without a restart the apiserver's watch cache still serves the old
    version, compaction or not (checked on 1.36), and each restart makes kube-controller-manager back off.
    """
    h = harness_factory(cluster.name, dataclasses.replace(admin_context, server=f"https://127.0.0.1:{proxy.port}"))
    victim, survivor = cm_key(namespace, "victim"), cm_key(namespace, "survivor")
    await put_cm(cluster, namespace, "victim", "1")
    await put_cm(cluster, namespace, "survivor", "1")
    await h.watcher.start()
    await h.until(lambda: h.cache.get(victim) is not None, "initial list")
    await proxy.cut()
    await h.until(lambda: h.cache.state is ConnectionState.UNREACHABLE, "unreachable while cut")
    assert h.cache.stale and "cluster" in h.cache.message
    await delete_cm(cluster, namespace, "victim")
    await put_cm(cluster, namespace, "survivor", "2")
    await asyncio.to_thread(control_plane.compact)
    await asyncio.to_thread(control_plane.stop_apiserver, cluster.name)
    try:
        await proxy.start()  # reachable again, but nobody is listening behind it
        await asyncio.sleep(2 * FAST.backoff_max)
        assert h.cache.state is ConnectionState.UNREACHABLE
        assert h.cache.get(victim) is not None and data_of(h, survivor) == "1", "last known objects are kept"
    finally:
        await asyncio.to_thread(control_plane.start_apiserver, cluster.name)
    await h.until(lambda: h.cache.get(victim) is None, "victim gone after relist")
    assert data_of(h, survivor) == "2"
    synthetic = [c for c in h.changes if isinstance(c, Deleted) and c.synthetic and c.obj["metadata"]["name"] == "victim"]
    assert len(synthetic) == 1
    assert h.full_lists() == 2, "exactly one relist"
    await h.until(lambda: h.cache.state is ConnectionState.CONNECTED, "connected again")
    await put_cm(cluster, namespace, "after", "new")
    await h.until(lambda: data_of(h, cm_key(namespace, "after")) == "new", "fresh events after the restart")
    assert h.states[-1] is ConnectionState.CONNECTED and ConnectionState.UNREACHABLE in h.states
    await asyncio.to_thread(_wait_controllers, cluster)


def _wait_controllers(cluster: ClusterInfo, timeout: float = 120.0) -> None:
    """Leave the shared plane as found: wait until kube-controller-manager serves a new namespace again
    (its informers back off after the restart, and the next test's namespace fixture needs them)."""
    rest = cluster.rest()
    name = f"t-recover-{int(time.time() * 1000) % 10**8}"
    rest.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": name}})
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            status, _ = rest.raw("GET", f"/api/v1/namespaces/{name}/serviceaccounts/default")
            if status == 200:
                return
            time.sleep(0.5)
        pytest.fail(f"kube-controller-manager did not recover within {timeout:g}s after the restart")
    finally:
        rest.delete(f"/api/v1/namespaces/{name}")


async def test_tcp_reset_resumes_from_the_last_version_without_relist(
        cluster: ClusterInfo, namespace: str, admin_context: ContextConfig, proxy: Proxy,
        harness_factory: Callable[..., Harness]) -> None:
    """A reset watch connection resumes from its resourceVersion within about a second (K5), no relist,
    and events that happened meanwhile arrive through the resumed watch."""
    h = harness_factory(cluster.name, dataclasses.replace(admin_context, server=f"https://127.0.0.1:{proxy.port}"))
    await h.watcher.start()
    await h.until(lambda: h.cache.state is ConnectionState.CONNECTED, "connected")
    watches = h.watcher.state_of(*CM_KIND).watches  # type: ignore[union-attr]
    await proxy.cut()
    await put_cm(cluster, namespace, "meanwhile", "x")
    loop = asyncio.get_running_loop()
    await proxy.start()
    started = loop.time()
    await h.until(lambda: data_of(h, cm_key(namespace, "meanwhile")) == "x", "missed event after resume")
    assert loop.time() - started < 5
    assert h.full_lists() == 1, "resumed from the resourceVersion, no relist"
    assert h.watcher.state_of(*CM_KIND).watches > watches  # type: ignore[union-attr]


async def test_silent_network_trips_the_read_timeout(cluster: ClusterInfo, admin_context: ContextConfig,
                                                     proxy: Proxy) -> None:
    """A watch whose connection goes silent (no RST, no FIN) ends with a transient error, not a hang."""
    settings = dataclasses.replace(FAST, read_timeout=2.0)
    api = KubeClient(cluster=cluster.name, context=dataclasses.replace(
        admin_context, server=f"https://127.0.0.1:{proxy.port}"), settings=settings)
    resource = APIResource(group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True)
    try:
        page = await api.list(resource, limit=1)
        proxy.silent = True
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(Exception) as caught:
            async for _ in api.watch(resource, resource_version=page["metadata"]["resourceVersion"],
                                     timeout_seconds=200):
                pass
        assert getattr(caught.value, "status", "missing") is None, caught.value
        assert loop.time() - started < 15
    finally:
        proxy.silent = False
        await api.close()


def widget_crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "properties": {"spec": {"type": "object",
                                                               "x-kubernetes-preserve-unknown-fields": True}}}}}]},
    }


async def test_crd_lifecycle_starts_and_drops_the_kind(cluster: ClusterInfo, namespace: str,
                                                       admin_context: ContextConfig,
                                                       harness_factory: Callable[..., Harness]) -> None:
    """A wanted kind whose CRD is missing waits; creating the CRD re-discovers and starts its watch;
    deleting the CRD stops the watch and drops the kind's objects (K13)."""
    group = f"{namespace}.fleetdeck.test"
    kind = (group, "Widget")
    h = harness_factory(cluster.name, admin_context)
    await h.watcher.start()
    await h.until(lambda: h.cache.state is ConnectionState.CONNECTED, "connected")
    await h.watcher.ensure_kinds([kind])
    assert kind in h.watcher.unserved and h.cache.state is ConnectionState.CONNECTED
    rest = cluster.rest()
    crd_path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}"
    await asyncio.to_thread(rest.apply, crd_path, widget_crd(group))
    try:
        await h.until(lambda: h.watcher.resource_for(*kind) is not None and h.cache.listed(*kind), "CRD discovered")
        widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": namespace},
                  "spec": {"size": 3}}
        await asyncio.to_thread(rest.apply, f"/apis/{group}/v1/namespaces/{namespace}/widgets/w1", widget)
        key = ResourceKey(group=group, kind="Widget", namespace=namespace, name="w1")
        await h.until(lambda: h.cache.get(key) is not None, "custom resource watched")
        assert h.watcher.discoveries >= 2
    finally:
        await asyncio.to_thread(rest.delete, crd_path)
    await h.until(lambda: h.cache.get(key) is None and not h.cache.listed(*kind), "kind dropped")
    await h.until(lambda: h.watcher.resource_for(*kind) is None, "re-discovered without the kind")
    assert h.cache.state is ConnectionState.CONNECTED, h.cache.message


async def test_crd_recreated_with_a_new_version_is_rediscovered(cluster: ClusterInfo, namespace: str,
                                                                admin_context: ContextConfig,
                                                                harness_factory: Callable[..., Harness]) -> None:
    """K13, the second half: the CRD is deleted and created again serving only ``v2`` with a different
    schema. The watcher re-discovers the kind at its new version, lists and watches it, and the cluster
    stays Connected throughout."""
    group = f"{namespace}.fleetdeck.test"
    kind = (group, "Widget")
    h = harness_factory(cluster.name, admin_context)
    await h.watcher.start()
    await h.until(lambda: h.cache.state is ConnectionState.CONNECTED, "connected")
    await h.watcher.ensure_kinds([kind])

    def served_version() -> str | None:
        resource = h.watcher.resource_for(*kind)
        return resource.version if resource is not None else None

    rest = cluster.rest()
    crd_path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}"
    await asyncio.to_thread(rest.apply, crd_path, widget_crd(group))
    await h.until(lambda: served_version() == "v1", "v1 discovered")
    await asyncio.to_thread(rest.delete, crd_path)
    await h.until(lambda: h.watcher.resource_for(*kind) is None, "kind dropped with its CRD")

    v2 = widget_crd(group)
    v2["spec"]["versions"] = [{"name": "v2", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
        "type": "object", "properties": {"spec": {"type": "object", "required": ["colour"], "properties": {
            "colour": {"type": "string"}}}}}}}]
    started = time.monotonic()
    for _ in range(60):  # the old CRD may still be terminating
        status, _body = await asyncio.to_thread(rest.raw, "GET", crd_path)
        if status == 404:
            break
        await asyncio.sleep(0.5)
    await asyncio.to_thread(rest.apply, crd_path, v2)
    try:
        await h.until(lambda: served_version() == "v2", "v2 discovered")
        widget = {"apiVersion": f"{group}/v2", "kind": "Widget", "metadata": {"name": "w2", "namespace": namespace},
                  "spec": {"colour": "blue"}}
        await asyncio.to_thread(rest.apply, f"/apis/{group}/v2/namespaces/{namespace}/widgets/w2", widget)
        key = ResourceKey(group=group, kind="Widget", namespace=namespace, name="w2")
        await h.until(lambda: h.cache.get(key) is not None, "v2 object watched")
        obj = h.cache.get(key)
        assert obj is not None and obj["apiVersion"] == f"{group}/v2" and obj["spec"] == {"colour": "blue"}
        assert h.cache.state is ConnectionState.CONNECTED, h.cache.message
        print(f"\nK13: re-created CRD served at v2 and its object watched {time.monotonic() - started:.2f}s after apply")
    finally:
        await asyncio.to_thread(rest.delete, crd_path)
