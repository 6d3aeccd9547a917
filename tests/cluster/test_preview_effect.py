"""The preview is the effect: what plan and diff say is what a sync does, against a real kube-apiserver.

Each test syncs the realistic app (``tests.cluster.conftest.app_objects``) into a fresh namespace with the
engine, then changes the live Deployment the way operators and controllers do (server-side apply by another
field manager, a JSON patch reordering env) and checks plan, diff and the sync's real effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.engine import FleetEngine
from core.live.api import APIResource
from core.live.kube import KubeClient
from core.model import AppStatus, OperationState, ResourceKey, ResourceState, ResourceStatus, SyncAction
from core.reconcile.diff import compare
from devcluster import ClusterInfo, ControlPlane
from tests.cluster.conftest import StartEngine, app_objects, commit, fleet_file
from tests.cluster.sync_support import unique
from tests.cluster.test_engine_observe import kubectl
from tests.engine.conftest import git
from tui.output import app_diff_text, resource_diff_text

pytestmark = pytest.mark.cluster

DEPLOY = APIResource(group="apps", version="v1", kind="Deployment", plural="deployments", namespaced=True)
CONFIGMAPS = APIResource(group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True)
SECRETS = APIResource(group="", version="v1", kind="Secret", plural="secrets", namespaced=True)
NAMESPACE_RESOURCE = APIResource(group="", version="v1", kind="Namespace", plural="namespaces", namespaced=False)


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


async def sync(engine: FleetEngine, app: str, cluster: ClusterInfo) -> OperationState:
    """Plan and run a sync; its result."""
    plan = await engine.plan_sync(app, cluster.name)
    assert not plan.blocked, plan.blocked
    result = [s async for s in engine.execute_plan(plan)][-1]
    assert result.phase.successful, result.message
    return result


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
    result = await sync(engine, namespace, cluster)
    entry = next(e for e in result.entries if e.key == key)
    assert entry.message == "left out spec.replicas (owned by hpa-test; ignored)"
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


def app_row(engine: FleetEngine, namespace: str, cluster: ClusterInfo) -> AppStatus:
    found = engine.snapshot.app(namespace, cluster.name)
    assert found is not None
    return found


async def until_row(engine: FleetEngine, namespace: str, cluster: ClusterInfo,
                    predicate: Callable[[AppStatus], bool], timeout: float = 60) -> AppStatus:
    """The first published row of the app satisfying ``predicate``."""
    async with asyncio.timeout(timeout):
        async for snap in engine.snapshots():
            found = snap.app(namespace, cluster.name)
            if found is not None and predicate(found):
                return found
    raise AssertionError("unreachable")


def web(app: AppStatus) -> ResourceStatus:
    return next(r for r in app.resources if r.key.kind == "Deployment" and r.key.name == "web")


def drifted(approximate: bool) -> Callable[[AppStatus], bool]:
    """The web Deployment is OutOfSync (by the server's dry run unless ``approximate`` is accepted)."""
    return lambda app: web(app).state is ResourceState.OUT_OF_SYNC and (approximate or not web(app).diff.approximate)


def env_names(obj: Mapping[str, Any]) -> list[str]:
    return [e["name"] for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]]


def local_diff(engine: FleetEngine, namespace: str, cluster: ClusterInfo, status: ResourceStatus) -> ResourceStatus:
    """``status`` compared by the local strategy (what a headless verb without a dry run shows)."""
    desired = engine.desired[(namespace, cluster.name)].objects[status.key]
    live = engine.clusters[cluster.name].view.get(status.key)
    return replace(status, diff=compare(desired, live, namespace_default=namespace))


async def test_env_reordered_live_is_a_change_and_the_sync_restores_gits_order(
        engines: StartEngine, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str, api: KubeClient,
        control_plane: ControlPlane) -> None:
    """Swapping two env entries live: plan and diff say "order differs"; the sync puts Git's order back."""
    key = ResourceKey("apps", "Deployment", namespace, "web")
    engine = await engines(fleet_file(tmp_path, repo, cluster, namespace))
    await sync(engine, namespace, cluster)
    before = await deployment(api, namespace)
    assert env_names(before) == ["MODE", "LOG"]
    swapped = [{"op": "replace", "path": "/spec/template/spec/containers/0/env",
                "value": [{"name": "LOG", "value": "info"}, {"name": "MODE", "value": "blue"}]}]
    kubectl(cluster, control_plane.binaries, "-n", namespace, "patch", "deployment", "web", "--type", "json",
            "-p", json.dumps(swapped), "--field-manager", "kubectl-edit")
    app = await until_row(engine, namespace, cluster, drifted(approximate=False))  # the server's dry run
    for status in (web(app), local_diff(engine, namespace, cluster, web(app))):
        assert "order differs" in status.diff.message, status.diff
        change = next(c for c in status.diff.changes if c.note == "order differs")
        assert change.display_path == "spec.template.spec.containers[0].env"
        assert (change.live, change.desired) == (("LOG", "MODE"), ("MODE", "LOG"))
    plan = await engine.plan_sync(namespace, cluster.name)
    step = next(s for s in plan.steps if s.key == key)
    assert step.action is SyncAction.CONFIGURED and "order differs" in step.reason
    assert "order differs" in app_diff_text(app_row(engine, namespace, cluster))
    await sync(engine, namespace, cluster)
    after = await deployment(api, namespace)
    assert env_names(after) == ["MODE", "LOG"]
    await until_row(engine, namespace, cluster, lambda a: web(a).state is ResourceState.SYNCED)


async def test_one_label_changed_live_gives_a_short_diff(
        engines: StartEngine, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str,
        control_plane: ControlPlane) -> None:
    """One label changed with kubectl: the diff shows that label, never server defaults, in a few lines."""
    engine = await engines(fleet_file(tmp_path, repo, cluster, namespace))
    await sync(engine, namespace, cluster)
    kubectl(cluster, control_plane.binaries, "-n", namespace, "label", "deployment", "web", "--overwrite",
            "app=web-canary")
    app = await until_row(engine, namespace, cluster, drifted(approximate=False))
    local = local_diff(engine, namespace, cluster, web(app))
    texts = [app_diff_text(app), resource_diff_text(local, cluster=cluster.name)]
    for text in texts:
        for noise in ("progressDeadlineSeconds", "revisionHistoryLimit", "imagePullPolicy", "clusterIP",
                      "terminationMessagePath", "managedFields"):
            assert noise not in text, text
        assert "web-canary" in text and len(text.splitlines()) <= 20, text
        assert "metadata.labels.app: changed by kubectl-label" in text, text
    change = next(c for c in local.diff.changes if c.path == "/metadata/labels/app")
    assert (change.live, change.desired, change.manager, change.note) == ("web-canary", "web", "kubectl-label", "")


async def test_git_change_is_attributed_to_git_not_to_a_live_edit(
        engines: StartEngine, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """Git changes a value fleetdeck applied (live untouched): the diff says "changed in Git"."""
    engine = await engines(fleet_file(tmp_path, repo, cluster, namespace))
    await sync(engine, namespace, cluster)
    commit(repo, app_objects(namespace, env={"MODE": "green", "LOG": "info"}), "web: green")
    await engine.refresh(hard=True)
    app = await until_row(engine, namespace, cluster, drifted(approximate=False))
    for status in (web(app), local_diff(engine, namespace, cluster, web(app))):
        change = next(c for c in status.diff.changes if c.path.endswith("/value"))
        assert (change.live, change.desired, change.note) == ("blue", "green", "changed in Git"), change
        text = resource_diff_text(status, cluster=cluster.name)
        assert "changed in Git" in text and "changed by fleetdeck" not in text, text


@pytest.fixture
def new_namespace(cluster: ClusterInfo) -> Iterator[str]:
    """A namespace name that does not exist yet (the sync creates it); deleted afterwards."""
    name = unique("preview-ns")
    yield name
    with contextlib.suppress(Exception):  # cleanup only: the apiserver may be gone
        cluster.rest().delete(f"/api/v1/namespaces/{name}")


async def test_plan_names_the_namespace_it_creates_and_every_prune(
        engines: StartEngine, tmp_path: Path, cluster: ClusterInfo, new_namespace: str, api: KubeClient) -> None:
    """The plan lists the destination namespace it will create, and each object a prune deletes or (opted
    out) skips, as the sync then does."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, app_objects(new_namespace), "web 1.0")
    engine = await engines(fleet_file(tmp_path, repo, cluster, new_namespace))
    plan = await engine.plan_sync(new_namespace, cluster.name)
    assert not plan.blocked, plan.blocked
    first = plan.steps[0]
    assert (first.key, first.action, first.reason) == (
        ResourceKey("", "Namespace", "", new_namespace), SyncAction.CREATED, "destination namespace")
    result = [s async for s in engine.execute_plan(plan)][-1]
    assert result.phase.successful, result.message
    assert await api.get(NAMESPACE_RESOURCE, new_namespace) is not None
    again = await engine.plan_sync(new_namespace, cluster.name)
    assert all(s.key.kind != "Namespace" for s in again.steps)
    keep = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "web-config", "namespace": new_namespace, "annotations": {"fleetdeck.io/sync-options": "Prune=false"}}}
    await api.apply(CONFIGMAPS, keep, field_manager="operator", force=True)
    commit(repo, [o for o in app_objects(new_namespace) if o["kind"] not in ("ConfigMap", "Secret")], "drop config")
    await engine.refresh(hard=True)
    await until_row(engine, new_namespace, cluster, lambda a: sum(r.state is ResourceState.EXTRANEOUS
                                                                   for r in a.resources) == 2)
    async with asyncio.timeout(30):  # the annotation reaches the cache
        while "Prune=false" not in str(engine.clusters[cluster.name].view.get(
                ResourceKey("", "ConfigMap", new_namespace, "web-config"))):
            await asyncio.sleep(0.05)
    prune = await engine.plan_sync(new_namespace, cluster.name, prune=True)
    planned = {(s.key.kind, s.key.name): (s.action, s.reason) for s in prune.steps
               if s.action in (SyncAction.PRUNED, SyncAction.PRUNE_SKIPPED)}
    assert planned == {("Secret", "web-secret"): (SyncAction.PRUNED, ""),
                       ("ConfigMap", "web-config"): (SyncAction.PRUNE_SKIPPED, "Prune=false")}
    result = [s async for s in engine.execute_plan(prune)][-1]
    assert result.phase.successful, result.message
    done = {(e.key.kind, e.key.name): e.action for e in result.entries
            if e.action in (SyncAction.PRUNED, SyncAction.PRUNE_SKIPPED)}
    assert done == {k: action for k, (action, _) in planned.items()}
    assert await api.get(CONFIGMAPS, "web-config", new_namespace) is not None
    assert await api.get(SECRETS, "web-secret", new_namespace) is None


async def test_kind_the_cluster_does_not_serve_blocks_the_plan(
        engines: StartEngine, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """A manifest of a kind the cluster lacks (no CRD in the sync) is "not served" and blocks, never "created"."""
    widget = {"apiVersion": "preview.fleetdeck.test/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    commit(repo, [*app_objects(namespace), widget], "web with a widget")
    engine = await engines(fleet_file(tmp_path, repo, cluster, namespace))
    key = ResourceKey("preview.fleetdeck.test", "Widget", namespace, "w")
    async with asyncio.timeout(30):
        while True:
            plan = await engine.plan_sync(namespace, cluster.name)
            step = next(s for s in plan.steps if s.key == key)
            if step.action is not SyncAction.CREATED:
                break
            await asyncio.sleep(0.1)
    assert step.action is SyncAction.FAILED and step.reason.startswith("not served"), step
    assert "not served" in plan.blocked, plan.blocked


async def test_env_item_added_by_another_manager_is_not_an_order_change(
        engines: StartEngine, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str, api: KubeClient) -> None:
    """Another manager inserts an env item between Git's two: Git's items keep their order, so the apply
    changes nothing; the plan says so and the sync leaves the generation alone."""
    key = ResourceKey("apps", "Deployment", namespace, "web")
    engine = await engines(fleet_file(tmp_path, repo, cluster, namespace))
    await sync(engine, namespace, cluster)
    env = [{"name": "MODE", "value": "blue"}, {"name": "INJECTED", "value": "1"}, {"name": "LOG", "value": "info"}]
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "env": env}]}}}}
    injected = await api.apply(DEPLOY, body, field_manager="injector", force=True)
    await seen(engine, cluster, key, injected["metadata"]["resourceVersion"])
    app = await until_row(engine, namespace, cluster, lambda a: not web(a).diff.approximate
                          and "INJECTED" in str(web(a).diff.live))  # compared by the dry run, after the insert
    assert web(app).state is ResourceState.SYNCED, web(app).diff
    plan = await engine.plan_sync(namespace, cluster.name)
    assert next(s for s in plan.steps if s.key == key).action is SyncAction.UNCHANGED
    await sync(engine, namespace, cluster)
    after = await deployment(api, namespace)
    assert env_names(after) == ["MODE", "INJECTED", "LOG"]
    assert after["metadata"]["generation"] == injected["metadata"]["generation"]
