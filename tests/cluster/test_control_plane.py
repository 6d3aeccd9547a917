"""The local control plane behaves like a real cluster: SSA, RBAC, isolation, watches, audit, teardown.

These tests pin down the facts fleetdeck's own cluster tests rely on (see docs/control-plane.md),
using ``kubernetes.aio`` exactly as fleetdeck does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes.aio import client, watch
from kubernetes.aio.client.exceptions import ApiException

from devcluster import ClusterInfo, ControlPlane, audit_events, mutating_events, reaper, wait_for_audit_event
from devcluster.ports import is_listening
from devcluster.processes import pid_alive

pytestmark = pytest.mark.cluster

APPLY = "application/apply-patch+yaml"
MANAGER = "fleetdeck-test"
VIEWER = "fleetdeck-viewer"
ADMIN = "fleetdeck-admin"
AVAILABLE_TIMEOUT = 120.0

T = TypeVar("T")


def present(value: T | None) -> T:
    """``value``, which the client models type as optional but the test expects the server to have set."""
    assert value is not None
    return value


def deployment(name: str, *, replicas: int = 2) -> dict[str, Any]:
    """A minimal Deployment manifest (kwok never pulls the image)."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]},
            },
        },
    }


def configmap(name: str, value: str = "1") -> dict[str, Any]:
    """A ConfigMap manifest."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": value}}


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float, what: str) -> None:
    """Poll ``check`` until it returns True; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.2)


async def apply_deployment(api_client: Any, namespace: str, manifest: dict[str, Any]) -> Any:
    """Server-side apply through the typed client (JSON is valid apply-patch+yaml)."""
    apps = client.AppsV1Api(api_client)
    return await apps.patch_namespaced_deployment(
        name=manifest["metadata"]["name"],
        namespace=namespace,
        body=manifest,
        field_manager=MANAGER,
        force=True,
        _content_type=APPLY,
    )


async def status_of(call: Awaitable[Any]) -> int:
    """HTTP status of an API call that is expected to fail (0 if it succeeded)."""
    try:
        await call
    except ApiException as exc:
        return int(exc.status)
    return 0


async def test_server_side_applied_deployment_becomes_available(admin_client: Any, namespace: str) -> None:
    """A Deployment applied with SSA gets Available=True with its pods Running on a kwok node."""
    applied = await apply_deployment(admin_client, namespace, deployment("web"))
    managers = {(f.manager, f.operation) for f in applied.metadata.managed_fields}
    assert (MANAGER, "Apply") in managers
    apps, core = client.AppsV1Api(admin_client), client.CoreV1Api(admin_client)

    async def available() -> bool:
        dep = await apps.read_namespaced_deployment("web", namespace)
        conditions = present(dep.status).conditions or []
        return any(c.type == "Available" and c.status == "True" for c in conditions)

    await eventually(available, timeout=AVAILABLE_TIMEOUT, what="Deployment web Available")
    pods = (await core.list_namespaced_pod(namespace, label_selector="app=web")).items
    assert len(pods) == 2
    assert {present(p.status).phase for p in pods} == {"Running"}
    assert all(present(present(p.spec).node_name).startswith("kwok-node-") for p in pods)


async def test_viewer_reads_but_cannot_mutate_or_read_secrets(
    admin_client: Any, viewer_client: Any, namespace: str, cluster: ClusterInfo
) -> None:
    """The viewer lists Deployments; create, patch, delete and Secrets are all 403, also in the audit log."""
    since = dt.datetime.now(dt.UTC)
    await apply_deployment(admin_client, namespace, deployment("seen", replicas=0))
    await client.CoreV1Api(admin_client).create_namespaced_secret(
        namespace, client.V1Secret.model_validate({"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    )
    apps, core = client.AppsV1Api(viewer_client), client.CoreV1Api(viewer_client)
    listed = await apps.list_namespaced_deployment(namespace)
    assert [present(d.metadata).name for d in listed.items] == ["seen"]
    denied = {
        "create": await status_of(apps.create_namespaced_deployment(namespace, client.V1Deployment.model_validate(deployment("nope")))),
        "patch": await status_of(apply_deployment(viewer_client, namespace, deployment("seen", replicas=3))),
        "delete": await status_of(apps.delete_namespaced_deployment("seen", namespace)),
        "get secret": await status_of(core.read_namespaced_secret("s", namespace)),
        "list secrets": await status_of(core.list_namespaced_secret(namespace)),
    }
    assert denied == dict.fromkeys(denied, 403)
    wait_for_audit_event(
        cluster, lambda e: e.get("verb") == "delete" and e["user"]["username"] == VIEWER, since=since
    )
    attempts = mutating_events(audit_events(cluster, since=since), user=VIEWER)
    assert sorted(e["verb"] for e in attempts) == ["create", "delete", "patch"]
    assert {e["responseStatus"]["code"] for e in attempts} == {403}


async def test_viewer_rbac_covers_cluster_scoped_reads(viewer_client: Any) -> None:
    """The viewer can list nodes, namespaces and CRDs, and configmaps/leases in fleetdeck-system."""
    core = client.CoreV1Api(viewer_client)
    assert (await core.list_node()).items
    assert any(present(ns.metadata).name == "default" for ns in (await core.list_namespace()).items)
    await client.ApiextensionsV1Api(viewer_client).list_custom_resource_definition()
    await core.list_namespaced_config_map("fleetdeck-system")
    await client.CoordinationV1Api(viewer_client).list_namespaced_lease("fleetdeck-system")
    assert await status_of(core.list_secret_for_all_namespaces()) == 403


async def test_clusters_are_isolated(
    clusters: list[ClusterInfo], kube_client_factory: Callable[..., Awaitable[Any]]
) -> None:
    """An object created in fd-a does not exist in fd-b (separate etcd prefixes)."""
    first, second = clusters[0], clusters[1]
    name = f"iso-{secrets.token_hex(3)}"
    a = client.CoreV1Api(await kube_client_factory(first))
    b = client.CoreV1Api(await kube_client_factory(second))
    await a.create_namespace(client.V1Namespace.model_validate({"metadata": {"name": name}}))
    try:
        await a.read_namespace(name)
        assert await status_of(b.read_namespace(name)) == 404
        assert name not in {present(ns.metadata).name for ns in (await b.list_namespace()).items}
    finally:
        await a.delete_namespace(name)


async def _watch_events(
    api_client: Any, namespace: str, resource_version: str, *, until: str, timeout: int = 30
) -> list[dict[str, Any]]:
    """Watch ConfigMap ``w`` from ``resource_version`` until its data v == ``until``.

    The field selector keeps out ``kube-root-ca.crt``, which kcm adds to new namespaces at any time.
    """
    core = client.CoreV1Api(api_client)
    seen: list[dict[str, Any]] = []
    async with watch.Watch() as stream:  # type: ignore[no-untyped-call]  # kubernetes.aio.watch is unannotated
        async for event in stream.stream(
            core.list_namespaced_config_map,
            namespace=namespace,
            resource_version=resource_version,
            field_selector="metadata.name=w",
            timeout_seconds=timeout,
        ):
            seen.append(event["raw_object"])
            if (event["raw_object"].get("data") or {}).get("v") == until:
                break
    return seen


async def _first_watch_status(api_client: Any, namespace: str, resource_version: str) -> int:
    """0 if a watch from ``resource_version`` opens and streams, else the ApiException status."""
    try:
        await asyncio.wait_for(
            _watch_events(api_client, namespace, resource_version, until="never", timeout=2), timeout=10
        )
    except ApiException as exc:
        return int(exc.status)
    return 0


async def _patch_cm(api_client: Any, namespace: str, name: str, value: str) -> str:
    patched = await client.CoreV1Api(api_client).patch_namespaced_config_map(
        name, namespace, {"data": {"v": value}}, _content_type="application/merge-patch+json"
    )
    return str(present(patched.metadata).resource_version)


async def test_watch_after_apiserver_restart_and_compaction_with_watch_cache(
    control_plane: ControlPlane,
    cluster: ClusterInfo,
    namespace: str,
    kube_client_factory: Callable[..., Awaitable[Any]],
) -> None:
    """Watch cache on: compaction alone keeps old RVs watchable; after a restart they are 410, a relist recovers."""
    api = await kube_client_factory(cluster)
    core = client.CoreV1Api(api)
    created = await core.create_namespaced_config_map(namespace, client.V1ConfigMap.model_validate(configmap("w", "1")))
    old_rv = str(present(created.metadata).resource_version)
    await _patch_cm(api, namespace, "w", "2")
    control_plane.compact()
    # still inside the watch cache's window: served from memory, etcd compaction is invisible
    events = await _watch_events(api, namespace, old_rv, until="2")
    assert [e["data"]["v"] for e in events] == ["2"]

    control_plane.restart_apiserver(cluster.name)
    api = await kube_client_factory(cluster)  # connections of the old client died with the apiserver
    assert await _first_watch_status(api, namespace, old_rv) == 410
    relisted = await client.CoreV1Api(api).list_namespaced_config_map(namespace)
    resumed = asyncio.create_task(
        _watch_events(api, namespace, present(present(relisted.metadata).resource_version), until="3")
    )
    await asyncio.sleep(0.5)
    await _patch_cm(api, namespace, "w", "3")
    events = await asyncio.wait_for(resumed, timeout=30)
    assert [e["data"]["v"] for e in events] == ["3"]


@pytest.fixture
def private_plane(tmp_path: Path, control_plane: ControlPlane) -> ControlPlane:
    """A separate 1-cluster plane without the watch cache (watches go straight to etcd)."""
    return ControlPlane(
        tmp_path / "plane",
        names=("fd-solo",),
        binaries=control_plane.binaries,
        apiserver_args=("--watch-cache=false",),
        progress=None,
    )


async def test_watch_resume_compaction_and_teardown_without_watch_cache(
    private_plane: ControlPlane,
    kube_client_factory: Callable[..., Awaitable[Any]],
) -> None:
    """Watch cache off: resume from the last RV survives a restart, compaction gives 410; nothing outlives stop."""
    plane = private_plane.start()
    watchdog = reaper.spawn(plane.state_dir)
    records = list(plane.records)
    try:
        solo = plane.cluster("fd-solo")
        api = await kube_client_factory(solo)
        await client.CoreV1Api(api).create_namespace(client.V1Namespace.model_validate({"metadata": {"name": "w"}}))
        created = await client.CoreV1Api(api).create_namespaced_config_map(
            "w", client.V1ConfigMap.model_validate(configmap("w", "1"))
        )
        last_rv = str(present(created.metadata).resource_version)

        plane.restart_apiserver(solo.name)
        api = await kube_client_factory(solo)
        resumed = asyncio.create_task(_watch_events(api, "w", last_rv, until="2"))
        await asyncio.sleep(0.5)
        await _patch_cm(api, "w", "w", "2")
        assert [e["data"]["v"] for e in await asyncio.wait_for(resumed, timeout=30)] == ["2"]

        plane.compact()
        assert await _first_watch_status(api, "w", last_rv) == 410
    finally:
        # the owner "dies": the watchdog must stop everything recorded in the state file
        assert watchdog.stdin is not None
        watchdog.stdin.close()
        watchdog.wait(timeout=60)
    assert not [r.role for r in records if pid_alive(r.pid)]
    assert not [r.port for r in records if r.port and is_listening(r.port)]
    assert not plane.state_file.exists()
    assert ControlPlane.load(plane.state_dir) is None


async def test_audit_log_shows_user_verb_and_dry_run(
    admin_client: Any, viewer_client: Any, namespace: str, cluster: ClusterInfo
) -> None:
    """Every request lands in the audit log with user, verb, objectRef and the full request URI; reviews are not mutations."""
    since = dt.datetime.now(dt.UTC)
    core = client.CoreV1Api(admin_client)
    await core.create_namespaced_config_map(namespace, client.V1ConfigMap.model_validate(configmap("audited")), dry_run="All")
    await core.create_namespaced_config_map(namespace, client.V1ConfigMap.model_validate(configmap("audited")))
    review = {
        "spec": {"resourceAttributes": {"verb": "list", "resource": "configmaps", "namespace": namespace}}
    }
    answer = await client.AuthorizationV1Api(viewer_client).create_self_subject_access_review(
        client.V1SelfSubjectAccessReview.model_validate(review)
    )
    assert present(answer.status).allowed
    await client.CoreV1Api(viewer_client).list_namespaced_config_map(namespace)

    def viewer_list(event: dict[str, Any]) -> bool:
        return bool(event["user"]["username"] == VIEWER and event["verb"] == "list")

    wait_for_audit_event(cluster, viewer_list, since=since)
    events = audit_events(cluster, since=since)
    creates = [e for e in mutating_events(events, user=ADMIN) if e["objectRef"].get("namespace") == namespace]
    assert [e["verb"] for e in creates] == ["create", "create"]
    assert ["dryRun=All" in e["requestURI"] for e in creates] == [True, False]
    assert {(e["objectRef"]["resource"], e["responseStatus"]["code"]) for e in creates} == {
        ("configmaps", 201)
    }
    assert mutating_events(events, user=VIEWER) == []  # an access review stores nothing
    reviews = mutating_events(events, user=VIEWER, include_reviews=True)
    assert [e["objectRef"]["resource"] for e in reviews] == ["selfsubjectaccessreviews"]
    listed = next(e for e in events if viewer_list(e))
    assert listed["objectRef"] == {"resource": "configmaps", "namespace": namespace, "apiVersion": "v1"}
