"""The preview is the effect: what plan and diff say is what a sync does, against a real kube-apiserver.

Each test syncs the realistic app (``tests.cluster.conftest.app_objects``) into a fresh namespace with the
engine, then changes the live Deployment the way operators and controllers do (server-side apply by another
field manager, a JSON patch reordering env) and checks plan, diff and the sync's real effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.engine import FleetEngine, make_engine
from core.journal import Journal
from core.live.api import APIResource
from core.live.kube import KubeClient
from core.model import ResourceKey, SyncAction, SyncPlan
from core.settings import EngineSettings, WatchSettings
from devcluster import ClusterInfo

pytestmark = pytest.mark.cluster

DEPLOY = APIResource(group="apps", version="v1", kind="Deployment", plural="deployments", namespaced=True)
StartEngine = Callable[[Path], Awaitable[FleetEngine]]


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[StartEngine]:
    """``await engines(fleet_file)`` is a started, ready engine (admin); all are stopped at the end."""
    started: list[FleetEngine] = []

    async def start(path: Path) -> FleetEngine:
        settings = EngineSettings(watch=WatchSettings(backoff_initial=0.2, backoff_max=1.0, unreachable_after=2.0),
                                  publish_interval=0.05)
        engine = make_engine(path, read_only=False, settings=settings,
                             journal=Journal(tmp_path / f"journal-{len(started)}.jsonl"),
                             cache=tmp_path / f"cache-{len(started)}")
        await engine.start()
        started.append(engine)
        await engine.wait_ready(timeout=60)
        return engine

    yield start
    for engine in started:
        await engine.stop()


def fleet(tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str, *, respect: bool | None = None,
          name: str = "fleetdeck.yaml") -> Path:
    """A fleet file for the app with the README's "replicas owned by an HPA" ignore rule."""
    app: dict[str, Any] = {"name": namespace, "path": "apps/web", "namespace": namespace,
                           "ignore": [{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]}
    if respect is not None:
        app["sync"] = {"respectIgnore": respect}
    path = tmp_path / name
    path.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": cluster.name, "kubeconfig": str(cluster.kubeconfig), "context": cluster.admin_context}],
        "apps": [app],
    }))
    return path


async def sync(engine: FleetEngine, app: str, cluster: ClusterInfo) -> SyncPlan:
    """Plan and run a sync; the plan it ran."""
    plan = await engine.plan_sync(app, cluster.name)
    assert not plan.blocked, plan.blocked
    result = [s async for s in engine.run(plan)][-1]
    assert result.phase.successful, result.message
    return plan


async def deployment(api: KubeClient, namespace: str) -> dict[str, Any]:
    found = await api.get(DEPLOY, "web", namespace)
    assert found is not None
    return found


async def seen(engine: FleetEngine, cluster: ClusterInfo, key: ResourceKey, version: str) -> None:
    """Wait until the engine's cache holds ``key`` at ``version`` or later (controllers write status too)."""
    async with asyncio.timeout(30):
        while True:
            live = engine.clusters[cluster.name].view.get(key)
            if live is not None and int(live["metadata"]["resourceVersion"]) >= int(version):
                return
            await asyncio.sleep(0.05)


async def scaled_by_other_manager(api: KubeClient, namespace: str, replicas: int) -> dict[str, Any]:
    """Server-side apply ``replicas`` with force as field manager ``hpa-test`` (what an autoscaler does)."""
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace},
            "spec": {"replicas": replicas}}
    return await api.apply(DEPLOY, body, field_manager="hpa-test", force=True)


async def test_ignored_field_owned_by_another_manager_is_not_taken_back(
        engines: StartEngine, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str, api: KubeClient) -> None:
    """Replicas owned by another manager and ignored: the plan changes nothing and the sync leaves them."""
    key = ResourceKey("apps", "Deployment", namespace, "web")
    engine = await engines(fleet(tmp_path, repo, cluster, namespace))
    await sync(engine, namespace, cluster)
    scaled = await scaled_by_other_manager(api, namespace, 5)
    await seen(engine, cluster, key, scaled["metadata"]["resourceVersion"])
    plan = await engine.plan_sync(namespace, cluster.name)
    step = next(s for s in plan.steps if s.key == key)
    assert step.action is SyncAction.UNCHANGED, step
    await sync(engine, namespace, cluster)
    after = await deployment(api, namespace)
    assert after["spec"]["replicas"] == 5
    assert after["metadata"]["generation"] == scaled["metadata"]["generation"]
    owners = {e["manager"] for e in after["metadata"]["managedFields"]
              if "f:replicas" in e["fieldsV1"].get("f:spec", {})}
    assert owners == {"hpa-test"}


async def test_opt_out_applies_ignored_fields_as_git_says(
        engines: StartEngine, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str, api: KubeClient) -> None:
    """``sync: {respectIgnore: false}``: the sync sets the other manager's replicas back to Git's."""
    key = ResourceKey("apps", "Deployment", namespace, "web")
    engine = await engines(fleet(tmp_path, repo, cluster, namespace, respect=False))
    await sync(engine, namespace, cluster)
    scaled = await scaled_by_other_manager(api, namespace, 5)
    await seen(engine, cluster, key, scaled["metadata"]["resourceVersion"])
    await sync(engine, namespace, cluster)
    assert (await deployment(api, namespace))["spec"]["replicas"] == 2
