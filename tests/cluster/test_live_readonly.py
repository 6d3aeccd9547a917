"""Read-only mode against a real apiserver, checked in its audit log: the viewer lists and watches, the
guard refuses every write before it is sent, and the server sends back 403 when the guard is off."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from core.errors import ClusterError, ReadOnlyError
from core.live.api import APIResource
from core.live.cache import ClusterCache
from core.live.cluster import ClusterWatcher
from core.live.drift import DryRunVerdict, dry_run_apply
from core.live.guard import RefusedRequest, guard
from core.live.kube import KubeClient
from core.live.kubeconfig import load_kubeconfig
from core.model import ConnectionState
from core.settings import WatchSettings
from devcluster import ClusterInfo, audit_events, mutating_events, wait_for_audit_event

pytestmark = pytest.mark.cluster

CM = APIResource(group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True,
                 verbs=frozenset({"list", "watch"}))
VIEWER = "fleetdeck-viewer"


def configmap(name: str, namespace: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"k": "v"}}


@pytest_asyncio.fixture
async def viewer(cluster: ClusterInfo) -> AsyncIterator[KubeClient]:
    client = KubeClient(cluster=cluster.name,
                        context=load_kubeconfig(cluster.kubeconfig).context(cluster.viewer_context))
    yield client
    await client.close()


async def test_read_only_viewer_sends_no_mutating_request(cluster: ClusterInfo, namespace: str,
                                                          viewer: KubeClient) -> None:
    """Lists and watches work; apply, dry-run apply, delete and create are refused and journaled; the
    audit log shows not a single mutating request from the viewer (dry runs included)."""
    since = dt.datetime.now(dt.UTC)
    refused: list[RefusedRequest] = []
    api = guard(viewer, read_only=True, on_refused=refused.append)
    cache = ClusterCache(cluster.name)
    watcher = ClusterWatcher(api, cache, kinds=[("", "ConfigMap"), ("apps", "Deployment")],
                             settings=WatchSettings())
    await watcher.start()
    try:
        await watcher.wait_until(lambda: cache.state is ConnectionState.CONNECTED, timeout=60)
        page = await api.list(CM, limit=5)
        assert "items" in page
        with pytest.raises(ReadOnlyError):
            await api.apply(CM, configmap("ro", namespace), field_manager="fleetdeck")
        result = await dry_run_apply(api, CM, configmap("ro", namespace), field_manager="fleetdeck")
        assert result.verdict is DryRunVerdict.REFUSED and result.local_fallback
        with pytest.raises(ReadOnlyError):
            await api.delete(CM, "ro", namespace)
        with pytest.raises(ReadOnlyError):
            await api.create(CM, configmap("ro", namespace), dry_run=True)
        assert [(r.verb, r.dry_run) for r in refused] == [("apply", False), ("apply", True), ("delete", False),
                                                          ("create", True)]
        assert viewer.counters["apply"] == viewer.counters["dry_run"] == 0
        assert viewer.counters["delete"] == viewer.counters["create"] == 0
        marker = await api.get(CM, "audit-marker", namespace)  # the last request: wait for it in the log
        assert marker is None
    finally:
        await watcher.stop()
    await asyncio.to_thread(
        wait_for_audit_event, cluster,
        lambda e: e.get("verb") == "get" and (e.get("objectRef") or {}).get("name") == "audit-marker",
        since=since, timeout=20)
    events = audit_events(cluster, since=since)
    viewer_events = [e for e in events if e.get("user", {}).get("username") == VIEWER]
    assert {e["verb"] for e in viewer_events} >= {"list", "watch", "get"}
    writes = mutating_events(events, user=VIEWER)
    assert writes == [], [(e.get("verb"), e.get("requestURI"), e.get("userAgent"), e.get("sourceIPs")) for e in writes]


async def test_without_the_guard_the_server_refuses_the_viewer(cluster: ClusterInfo, namespace: str,
                                                               viewer: KubeClient) -> None:
    """Defence in depth: the viewer's credentials cannot write either; the server answers 403."""
    since = dt.datetime.now(dt.UTC)
    api = guard(viewer, read_only=False)
    with pytest.raises(ClusterError) as caught:
        await api.apply(CM, configmap("rw", namespace), field_manager="fleetdeck", dry_run=True)
    assert caught.value.forbidden and caught.value.reason == "Forbidden"
    assert VIEWER in caught.value.message
    event = await asyncio.to_thread(
        wait_for_audit_event, cluster,
        lambda e: e.get("verb") == "patch" and e.get("user", {}).get("username") == VIEWER, since=since, timeout=20)
    assert event["responseStatus"]["code"] == 403 and "dryRun=All" in event["requestURI"]
