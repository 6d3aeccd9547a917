"""The observing engine against real kube-apiservers: sync state, drift with managers, recovery, read-only.

Each test gets a fresh namespace on cluster ``fd-a`` and a Git config repo of its own; the engine runs
with the real ``KubeClient`` (admin, or the viewer in read-only mode) and the real ``kubectl kustomize``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from core.engine import FleetEngine
from core.live.kube import KubeClient
from core.model import (
    AppStatus,
    ClusterStatus,
    ConnectionState,
    FleetSnapshot,
    HealthStatus,
    ResourceKey,
    ResourceState,
    SyncStatus,
)
from core.offline import drift_report
from devcluster import ClusterInfo, ControlPlane
from devcluster.audit import audit_events, mutating_events
from devcluster.binaries import Binaries
from tests.cluster.conftest import StartEngine, app_objects, commit, fleet_file

pytestmark = pytest.mark.cluster



async def until(engine: FleetEngine, predicate: Callable[[FleetSnapshot], bool], timeout: float = 60) -> FleetSnapshot:
    """The first snapshot satisfying ``predicate``."""
    async with asyncio.timeout(timeout):
        async for snap in engine.snapshots():
            if predicate(snap):
                return snap
    raise AssertionError("unreachable")


def row(snap: FleetSnapshot, cluster: ClusterInfo) -> AppStatus:
    found = next((a for a in snap.apps if a.cluster == cluster.name), None)
    assert found is not None
    return found


def cluster_status(snap: FleetSnapshot, cluster: ClusterInfo) -> ClusterStatus:
    """The status the test expects ``snap`` to have for ``cluster``."""
    status = snap.cluster(cluster.name)
    assert status is not None
    return status


def kubectl(cluster: ClusterInfo, binaries: Binaries, *args: str) -> str:
    """Run the control plane's kubectl as admin."""
    result = subprocess.run([str(binaries.kubectl), "--kubeconfig", str(cluster.kubeconfig), "--context",
                             cluster.admin_context, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def synced_app(engines: StartEngine, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str
                     ) -> FleetEngine:
    """An engine whose app has been synced and shows Synced and Healthy by the server's dry run."""
    engine = await engines(fleet_file(tmp_path, repo, cluster, namespace))
    plan = await engine.plan_sync(namespace, cluster.name)
    assert not plan.blocked, plan.blocked
    result = [s async for s in engine.execute_plan(plan)][-1]
    assert result.phase.successful, result.message
    await until(engine, lambda s: row(s, cluster).sync is SyncStatus.SYNCED
                and row(s, cluster).health.status is HealthStatus.HEALTHY and not row(s, cluster).approximate)
    return engine


async def test_realistic_app_synced_and_healthy(engines: StartEngine, tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                                namespace: str) -> None:
    """After a sync, server defaults cause no phantom drift: Synced, Healthy, compared by the dry run."""
    engine = await synced_app(engines, tmp_path, repo, cluster, namespace)
    app = row(engine.snapshot, cluster)
    managed = [r for r in app.resources if r.managed]
    assert {r.state for r in managed} == {ResourceState.SYNCED}
    assert {r.diff.strategy for r in managed} == {"ssa-dry-run"}
    pods = [r for r in app.resources if r.key.kind == "Pod"]
    assert pods and all(p.health is not None and p.health.status is HealthStatus.HEALTHY for p in pods)


async def test_edit_shows_field_and_manager(engines: StartEngine, tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                            namespace: str, control_plane: ControlPlane) -> None:
    """A field changed with kubectl is OutOfSync with that field, its value and the manager that wrote it."""
    engine = await synced_app(engines, tmp_path, repo, cluster, namespace)
    kubectl(cluster, control_plane.binaries, "-n", namespace, "patch", "deployment", "web", "--type", "merge",
            "-p", '{"spec":{"replicas":4}}', "--field-manager", "kubectl-edit")
    snap = await until(engine, lambda s: row(s, cluster).sync is SyncStatus.OUT_OF_SYNC)
    web = next(r for r in row(snap, cluster).resources if r.key == ResourceKey("apps", "Deployment", namespace, "web"))
    change = next(c for c in web.diff.changes if c.path == "/spec/replicas")
    assert (change.desired, change.live, change.manager) == (2, 4, "kubectl-edit")
    assert change.time


async def test_field_removed_from_git_is_drift(engines: StartEngine, tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                               namespace: str) -> None:
    """Removing an env var from Git (a field fleetdeck applied) shows the Deployment OutOfSync."""
    engine = await synced_app(engines, tmp_path, repo, cluster, namespace)
    commit(repo, app_objects(namespace, env={"MODE": "blue"}), "drop LOG")
    await engine.refresh()
    snap = await until(engine, lambda s: row(s, cluster).sync is SyncStatus.OUT_OF_SYNC)
    drifted = [r for r in row(snap, cluster).resources if r.managed and r.state.drifted]
    assert [r.key.kind for r in drifted] == ["Deployment"]


async def test_deleted_object_is_missing(engines: StartEngine, tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                         namespace: str, control_plane: ControlPlane) -> None:
    """Deleting an object in the cluster shows it Missing."""
    engine = await synced_app(engines, tmp_path, repo, cluster, namespace)
    kubectl(cluster, control_plane.binaries, "-n", namespace, "delete", "configmap", "web-config")
    snap = await until(engine, lambda s: any(r.key.name == "web-config" and r.state is ResourceState.MISSING
                                             for r in row(s, cluster).resources))
    assert row(snap, cluster).sync is SyncStatus.OUT_OF_SYNC


async def test_apiserver_restart_recovers_without_stale_verdicts(engines: StartEngine, tmp_path: Path, repo: Path,
                                                                 cluster: ClusterInfo, namespace: str,
                                                                 control_plane: ControlPlane) -> None:
    """While the apiserver is down the row is marked stale; after it returns (410 → relist), a change made
    meanwhile is seen and the row is fresh again."""
    engine = await synced_app(engines, tmp_path, repo, cluster, namespace)
    client = engine.clusters[cluster.name].raw
    assert isinstance(client, KubeClient)  # a real cluster: the engine made a KubeClient for it
    lists_before = client.counters["list"]
    control_plane.stop_apiserver(cluster.name)
    try:
        snap = await until(engine, lambda s: row(s, cluster).stale, timeout=90)
        assert cluster_status(snap, cluster).connection in (ConnectionState.UNREACHABLE, ConnectionState.DEGRADED)
        assert row(snap, cluster).sync is SyncStatus.SYNCED  # the last known state stays visible, marked stale
    finally:
        control_plane.bump_revision()
        control_plane.start_apiserver(cluster.name)
    kubectl(cluster, control_plane.binaries, "-n", namespace, "patch", "configmap", "web-config", "--type",
            "merge", "-p", '{"data":{"a":"2"}}', "--field-manager", "kubectl-edit")
    snap = await until(engine, lambda s: not row(s, cluster).stale and row(s, cluster).sync is SyncStatus.OUT_OF_SYNC,
                       timeout=120)
    assert cluster_status(snap, cluster).connection is ConnectionState.CONNECTED
    assert client.counters["list"] > lists_before  # relisted after the watch's resourceVersion expired


async def test_viewer_read_only_observes_and_writes_nothing(engines: StartEngine, tmp_path: Path, repo: Path,
                                                            cluster: ClusterInfo, namespace: str) -> None:
    """With the viewer context in read-only mode the app's state is seen (compared locally, approximate)
    and the apiserver's audit log shows no mutating request from the viewer, dry runs included."""
    await synced_app(engines, tmp_path, repo, cluster, namespace)
    since = dt.datetime.now(dt.UTC)
    viewer = await engines(fleet_file(tmp_path, repo, cluster, namespace, viewer=True), read_only=True)
    snap = await until(viewer, lambda s: all(r.state is ResourceState.SYNCED for r in row(s, cluster).resources
                                             if r.managed and r.key.kind != "Secret"))
    app = row(snap, cluster)
    assert app.approximate
    secret = next(r for r in app.resources if r.key.kind == "Secret")
    assert secret.state is ResourceState.UNKNOWN and "forbidden" in secret.diff.message.lower()
    assert app.sync is SyncStatus.UNKNOWN  # one resource cannot be compared: never reported as Synced
    plan = await viewer.plan_sync(namespace, cluster.name)
    assert plan.blocked
    with pytest.raises(Exception, match="read-only"):
        await viewer.pause(namespace, cluster.name, reason="audit")
    await asyncio.sleep(1.5)  # the audit log is written asynchronously by the apiserver
    reviews = ("selfsubjectaccessreviews", "selfsubjectreviews")
    writes = [e for e in mutating_events(audit_events(cluster, since=since), user="fleetdeck-viewer")
              if (e.get("objectRef") or {}).get("resource") not in reviews]
    assert writes == []


async def test_offline_drift_agrees_with_dry_run(engines: StartEngine, tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                                 namespace: str, control_plane: ControlPlane) -> None:
    """`fleetdeck drift` on the desired manifest and `kubectl get -o yaml` agrees with the engine's dry run."""
    engine = await synced_app(engines, tmp_path, repo, cluster, namespace)
    desired = yaml.safe_dump(app_objects(namespace)[4])
    def live_yaml() -> str:
        return kubectl(cluster, control_plane.binaries, "-n", namespace, "get", "deployment", "web", "-o", "yaml",
                       "--show-managed-fields")
    assert drift_report(desired, live_yaml(), namespace=namespace, desired_name="d", live_name="l")["in_sync"]
    kubectl(cluster, control_plane.binaries, "-n", namespace, "set", "image", "deployment/web",
            "web=registry.example/web:1.1")
    snap = await until(engine, lambda s: row(s, cluster).sync is SyncStatus.OUT_OF_SYNC
                       and not row(s, cluster).approximate)
    report = drift_report(desired, live_yaml(), namespace=namespace, desired_name="d", live_name="l")
    assert not report["in_sync"]
    web = next(r for r in row(snap, cluster).resources if r.key.kind == "Deployment")
    assert {c["path"] for c in report["changes"]} == {c.path for c in web.diff.changes}
