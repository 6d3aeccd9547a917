"""A frozen API server (SIGSTOP) is noticed, bounded and recovered from, against a real kube-apiserver.

The server is a lone kube-apiserver started for this test in a private control plane (its own etcd), so
freezing it never touches the session's clusters. The frozen process keeps its listening socket: the
kernel still completes TCP handshakes and buffers the watches' connections, so nothing fails by itself;
only fleetdeck's heartbeat and deadlines can tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from core.engine import FleetEngine, make_engine
from core.errors import ClusterError
from core.journal import Journal
from core.live.api import APIResource
from core.live.cache import ClusterCache
from core.live.cluster import ClusterWatcher
from core.live.kube import KubeClient
from core.live.kubeconfig import load_kubeconfig
from core.model import ConnectionState, FleetSnapshot, ResourceKey
from core.settings import WatchSettings
from devcluster import ClusterInfo, ControlPlane
from devcluster.processes import ProcessRecord
from tests.cluster.conftest import commit
from tests.engine.conftest import git

pytestmark = pytest.mark.cluster

NAMESPACES = APIResource("", "v1", "Namespace", "namespaces", False, frozenset({"get", "list", "watch"}))
STALE_WITHIN = 10.0
"""Required bound: a frozen API server is marked stale within this many seconds."""
RECOVER_WITHIN = 5.0
"""Required bound: Connected again within this many seconds of SIGCONT."""


@pytest.fixture
def lone(private_plane_factory: Callable[[], ControlPlane]) -> Iterator[tuple[ClusterInfo, ProcessRecord]]:
    """A lone kube-apiserver in a private plane; always resumed (SIGCONT) before it is stopped."""
    plane = private_plane_factory()
    info, record = plane.start_lone_apiserver("fd-live")
    try:
        yield info, record
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, signal.SIGCONT)


def client(info: ClusterInfo, settings: WatchSettings) -> KubeClient:
    context = load_kubeconfig(info.kubeconfig).context(info.admin_context)
    return KubeClient(cluster=info.name, context=context, settings=settings)


async def test_frozen_apiserver_is_marked_stale_bounded_and_recovers(
    lone: tuple[ClusterInfo, ProcessRecord],
) -> None:
    """SIGSTOP: stale within 10 s with a message, requests end at their deadline; SIGCONT: Connected within 5 s."""
    info, record = lone
    settings = WatchSettings()  # the shipped defaults are what is measured
    api = client(info, settings)
    bounded = client(info, dataclasses.replace(settings, request_timeout=4.0))
    cache = ClusterCache(info.name, unreachable_after=settings.unreachable_after)
    watcher = ClusterWatcher(api, cache, kinds=[("", "ConfigMap"), ("", "Namespace")], settings=settings,
                             tick=0.2)
    figures: dict[str, float] = {}
    await watcher.start()
    try:
        await watcher.wait_until(lambda: cache.state is ConnectionState.CONNECTED, timeout=60)
        assert await bounded.get(NAMESPACES, "default") is not None

        os.killpg(record.pid, signal.SIGSTOP)
        frozen = time.monotonic()
        try:
            await watcher.wait_until(lambda: cache.state is not ConnectionState.CONNECTED, timeout=STALE_WITHIN)
            figures["stale_after"] = time.monotonic() - frozen
            assert cache.state is ConnectionState.DEGRADED
            assert cache.stale
            assert "API server of cluster" in cache.message and "not responding" in cache.message
            assert "GET /version" in cache.message
            assert cache.failure("", "ConfigMap") is not None  # every kind's objects are marked stale
            assert cache.get(ResourceKey("", "Namespace", "", "default")) is not None  # data is kept

            began = time.monotonic()
            with pytest.raises(ClusterError) as failed:
                await bounded.get(NAMESPACES, "default")
            figures["request_failed_after"] = time.monotonic() - began
            assert failed.value.status is None
            assert "timed out" in failed.value.message
            assert figures["request_failed_after"] < 4.0 + 6.0  # its own deadline, with generous slack
        finally:
            os.killpg(record.pid, signal.SIGCONT)
        resumed = time.monotonic()
        await watcher.wait_until(lambda: cache.state is ConnectionState.CONNECTED, timeout=RECOVER_WITHIN)
        figures["connected_after_sigcont"] = time.monotonic() - resumed
        assert cache.message == ""
        assert not cache.stale
        # streams silent through the freeze were resumed from their resourceVersion, not relisted
        assert watcher.restarted_watches >= 1
        configmaps = watcher.state_of("", "ConfigMap")
        assert configmaps is not None and configmaps.lists == 1

        # the watches still deliver after the freeze
        name = "after-freeze"
        info.rest().request("POST", "/api/v1/namespaces/default/configmaps",
                            body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
        key = ResourceKey("", "ConfigMap", "default", name)
        await watcher.wait_until(lambda: cache.get(key) is not None, timeout=30)
    finally:
        await watcher.stop()
        await api.close()
        await bounded.close()
    print(f"\nliveness figures: {', '.join(f'{k}={v:.2f}s' for k, v in figures.items())}")
    assert watcher.heartbeats > 0



async def test_engine_rows_go_stale_and_plans_block_while_the_apiserver_is_frozen(
    lone: tuple[ClusterInfo, ProcessRecord], tmp_path: Path,
) -> None:
    """The engine (shipped defaults): the app row is stale and a sync plan blocked while frozen; fresh after."""
    info, record = lone
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config"}, "data": {"a": "1"}}],
           "web 1.0")
    fleet = tmp_path / "fleetdeck.yaml"
    fleet.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main"},
        "clusters": [{"name": info.name, "kubeconfig": str(info.kubeconfig), "context": info.admin_context}],
        "apps": [{"name": "web", "path": "apps/web", "namespace": "default"}],
    }))
    engine = make_engine(fleet, read_only=False, journal=Journal(tmp_path / "journal.jsonl"), cache=tmp_path / "cache")
    await engine.start()
    try:
        snap = await engine.wait_ready(timeout=60)
        assert not snap.app("web", info.name).stale  # type: ignore[union-attr]
        os.killpg(record.pid, signal.SIGSTOP)
        frozen = time.monotonic()
        try:
            snap = await until(engine, lambda s: bool((row := s.app("web", info.name)) and row.stale), STALE_WITHIN)
            stale_after = time.monotonic() - frozen
            cluster = next(c for c in snap.clusters if c.name == info.name)
            assert cluster.connection is ConnectionState.DEGRADED
            assert "API server of cluster" in cluster.message and "not responding" in cluster.message
            stale_row = snap.app("web", info.name)
            assert stale_row is not None and any(c.type == "Stale" for c in stale_row.conditions)
            plan = await engine.plan_sync("web", info.name)
            assert "live state is not current" in plan.blocked
        finally:
            os.killpg(record.pid, signal.SIGCONT)
        resumed = time.monotonic()
        await until(engine, lambda s: bool((row := s.app("web", info.name)) and not row.stale), RECOVER_WITHIN)
        print(f"\nengine figures: stale_after={stale_after:.2f}s, fresh_after_sigcont={time.monotonic() - resumed:.2f}s")
    finally:
        await engine.stop()


async def until(engine: FleetEngine, predicate: Callable[[FleetSnapshot], bool], timeout: float) -> FleetSnapshot:
    """The first snapshot satisfying ``predicate`` within ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        async for snap in engine.snapshots():
            if predicate(snap):
                return snap
    raise AssertionError("unreachable")
