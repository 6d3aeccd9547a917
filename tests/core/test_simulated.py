"""The simulated cluster behaves like an apiserver where the engine relies on it."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.errors import ClusterError
from core.live.api import JSON, APIResource
from core.model import ResourceKey
from core.simulated.simulated_cluster import VIEWER, SimulatedCluster, SimulatedUser, SimulationTiming

WEB = ResourceKey("apps", "Deployment", "shop", "web")


def deployment(*, replicas: int = 2, image: str = "registry.example.com/web:1.0", labels: dict[str, str] | None = None,
               env: list[dict[str, str]] | None = None) -> JSON:
    """A small Deployment manifest in namespace ``shop``."""
    container: JSON = {"name": "web", "image": image, "ports": [{"containerPort": 8080}]}
    if env is not None:
        container["env"] = env
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": labels or {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}},
        },
    }


@pytest.fixture
async def cluster() -> AsyncIterator[SimulatedCluster]:
    """An instant cluster with namespace ``shop`` and no background controller loop."""
    sim = SimulatedCluster("test", timing=SimulationTiming.instant(), controllers=False, clock=lambda: 1_767_600_000.0)
    sim.ensure_namespace("shop")
    yield sim
    await sim.close()


async def resource(sim: SimulatedCluster, group: str, kind: str) -> APIResource:
    """The served kind ``(group, kind)``."""
    return next(r for r in await sim.discover() if r.group_kind == (group, kind))


def container(obj: JSON) -> JSON:
    """The first container of a Deployment."""
    first: JSON = obj["spec"]["template"]["spec"]["containers"][0]
    return first


def entry(obj: JSON, manager: str) -> JSON:
    """The managedFields entry of ``manager``."""
    found: JSON = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == manager)
    return found


# ---------------------------------------------------------------------------------------------- apply


async def test_apply_creates_with_server_defaults(cluster: SimulatedCluster) -> None:
    """A first apply stores the object with uid, resourceVersion, generation 1 and the server's defaults."""
    deployments = await resource(cluster, "apps", "Deployment")
    live = await cluster.apply(deployments, deployment(), field_manager="fleetdeck")
    meta = live["metadata"]
    assert meta["uid"] and meta["resourceVersion"] and meta["generation"] == 1
    assert meta["creationTimestamp"] == "2026-01-05T08:00:00Z"
    assert live["spec"]["strategy"]["type"] == "RollingUpdate"
    assert live["spec"]["revisionHistoryLimit"] == 10
    assert live["spec"]["progressDeadlineSeconds"] == 600
    assert container(live)["terminationMessagePath"] == "/dev/termination-log"
    assert container(live)["imagePullPolicy"] == "IfNotPresent"
    assert container(live)["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]


async def test_service_gets_cluster_ip_and_defaults(cluster: SimulatedCluster) -> None:
    """A Service gets a clusterIP, ``type: ClusterIP``, ``sessionAffinity: None`` and TCP ports."""
    services = await resource(cluster, "", "Service")
    live = await cluster.apply(services, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }, field_manager="fleetdeck")
    spec = live["spec"]
    assert spec["clusterIP"].startswith("10.96.")
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ports"][0]["protocol"] == "TCP"


async def test_apply_merges_maps_and_keyed_lists(cluster: SimulatedCluster) -> None:
    """Applying more fields merges them: labels by key, containers and env by name."""
    deployments = await resource(cluster, "apps", "Deployment")
    await cluster.apply(deployments, deployment(env=[{"name": "A", "value": "1"}]), field_manager="fleetdeck")
    cluster.update_as("kubectl-edit", WEB, {"metadata": {"labels": {"team": "blue"}}})
    live = await cluster.apply(deployments, deployment(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]),
                               field_manager="fleetdeck")
    assert live["metadata"]["labels"] == {"app": "web", "team": "blue"}
    assert container(live)["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert container(live)["terminationMessagePath"] == "/dev/termination-log"


async def test_apply_puts_a_list_map_in_the_applied_order(cluster: SimulatedCluster) -> None:
    """Like kube-apiserver 1.36: applying env in another order reorders live; an item only another manager
    has stays right before the live item it preceded."""
    deployments = await resource(cluster, "apps", "Deployment")
    a, b, x = ({"name": n, "value": "1"} for n in ("A", "B", "X"))
    await cluster.apply(deployments, deployment(env=[a, b]), field_manager="fleetdeck")
    cluster.update_as("kubectl-edit", WEB, {
        "spec": {"template": {"spec": {"containers": [{"name": "web", "env": [a, x, b]}]}}},
    })
    live = await cluster.apply(deployments, deployment(env=[b, a]), field_manager="fleetdeck")
    assert [e["name"] for e in container(live)["env"]] == ["X", "B", "A"]
    live = await cluster.apply(deployments, deployment(env=[a, b]), field_manager="fleetdeck")
    assert [e["name"] for e in container(live)["env"]] == ["A", "X", "B"]


async def test_apply_removes_fields_dropped_from_the_config(cluster: SimulatedCluster) -> None:
    """Fields only this manager applied before and no longer applies are removed."""
    deployments = await resource(cluster, "apps", "Deployment")
    await cluster.apply(deployments, deployment(labels={"app": "web", "tier": "front"},
                                                env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]),
                        field_manager="fleetdeck")
    live = await cluster.apply(deployments, deployment(env=[{"name": "A", "value": "1"}]), field_manager="fleetdeck")
    assert live["metadata"]["labels"] == {"app": "web"}
    assert container(live)["env"] == [{"name": "A", "value": "1"}]


async def test_apply_keeps_fields_of_other_managers(cluster: SimulatedCluster) -> None:
    """A field another manager wrote survives an apply that does not mention it, even when co-owned."""
    deployments = await resource(cluster, "apps", "Deployment")
    await cluster.apply(deployments, deployment(labels={"app": "web", "tier": "front"}), field_manager="fleetdeck")
    cluster.update_as("kubectl-edit", WEB, {
        "spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "DEBUG", "value": "1"}]}]}}},
    })
    await cluster.apply(deployments, {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "metadata": {"name": "web", "namespace": "shop", "labels": {"tier": "front"}}},
                        field_manager="platform")
    live = await cluster.apply(deployments, deployment(), field_manager="fleetdeck")
    assert container(live)["env"] == [{"name": "DEBUG", "value": "1"}]
    assert live["metadata"]["labels"]["tier"] == "front"


async def test_an_empty_map_that_gains_keys_is_kept(cluster: SimulatedCluster) -> None:
    """Applying ``resources: {}`` and then ``resources.limits`` keeps the limits (the empty map is not dropped)."""
    deployments = await resource(cluster, "apps", "Deployment")
    empty = deployment()
    container(empty)["resources"] = {}
    await cluster.apply(deployments, empty, field_manager="fleetdeck")
    limited = deployment()
    container(limited)["resources"] = {"limits": {"cpu": "1"}}
    live = await cluster.apply(deployments, limited, field_manager="fleetdeck")
    assert container(live)["resources"] == {"limits": {"cpu": "1"}}


async def test_managed_fields_use_the_real_format(cluster: SimulatedCluster) -> None:
    """managedFields hold one Apply entry for fleetdeck and one Update entry per other manager, in fieldsV1."""
    deployments = await resource(cluster, "apps", "Deployment")
    await cluster.apply(deployments, deployment(env=[{"name": "A", "value": "1"}]), field_manager="fleetdeck")
    live = cluster.update_as("kubectl-edit", WEB, {"spec": {"replicas": 5}})
    applied = entry(live, "fleetdeck")
    assert (applied["operation"], applied["apiVersion"], applied["fieldsType"]) == ("Apply", "apps/v1", "FieldsV1")
    assert applied["time"] == "2026-01-05T08:00:00Z"
    fields = applied["fieldsV1"]
    assert "f:replicas" not in fields["f:spec"]
    assert fields["f:spec"]["f:selector"] == {}
    web = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert web["."] == {} and web["f:image"] == {}
    assert web["f:env"]['k:{"name":"A"}'] == {".": {}, "f:name": {}, "f:value": {}}
    assert web["f:ports"]['k:{"containerPort":8080,"protocol":"TCP"}'] == {".": {}, "f:containerPort": {}}
    edit = entry(live, "kubectl-edit")
    assert edit["operation"] == "Update" and edit["fieldsV1"] == {"f:spec": {"f:replicas": {}}}


async def test_dry_run_predicts_and_stores_nothing(cluster: SimulatedCluster) -> None:
    """A dry-run apply returns the predicted object (generation bumped) and changes nothing."""
    deployments = await resource(cluster, "apps", "Deployment")
    before = await cluster.apply(deployments, deployment(), field_manager="fleetdeck")
    version = cluster.store.resource_version
    predicted = await cluster.apply(deployments, deployment(replicas=7), field_manager="fleetdeck", dry_run=True)
    assert predicted["spec"]["replicas"] == 7 and predicted["metadata"]["generation"] == 2
    assert cluster.store.resource_version == version
    assert await cluster.get(deployments, "web", "shop") == before
    created = await cluster.apply(deployments, {**deployment(), "metadata": {"name": "new", "namespace": "shop"}},
                                  field_manager="fleetdeck", dry_run=True)
    assert created["metadata"]["resourceVersion"] == "" and await cluster.get(deployments, "new", "shop") is None


async def test_unchanged_apply_keeps_the_resource_version(cluster: SimulatedCluster) -> None:
    """Re-applying the same config is a no-op: no new resourceVersion, no watch event."""
    deployments = await resource(cluster, "apps", "Deployment")
    first = await cluster.apply(deployments, deployment(), field_manager="fleetdeck")
    again = await cluster.apply(deployments, deployment(), field_manager="fleetdeck")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


async def test_resource_version_is_a_precondition(cluster: SimulatedCluster) -> None:
    """An apply carrying a stale resourceVersion fails with 409 Conflict; the current one succeeds."""
    config_maps = await resource(cluster, "", "ConfigMap")
    state: JSON = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "state", "namespace": "shop"},
             "data": {"paused": "false"}}
    live = await cluster.apply(config_maps, state, field_manager="fleetdeck")
    current = live["metadata"]["resourceVersion"]
    cluster.update_as("other-operator", ResourceKey("", "ConfigMap", "shop", "state"), {"data": {"paused": "true"}})
    stale = copy.deepcopy(state)
    stale["metadata"]["resourceVersion"] = current
    with pytest.raises(ClusterError) as caught:
        await cluster.apply(config_maps, stale, field_manager="fleetdeck")
    assert caught.value.conflict and "the object has been modified" in caught.value.message
    fresh = await cluster.get(config_maps, "state", "shop")
    assert fresh is not None
    stale["metadata"]["resourceVersion"] = fresh["metadata"]["resourceVersion"]
    assert (await cluster.apply(config_maps, stale, field_manager="fleetdeck"))["data"] == {"paused": "false"}


async def test_strict_validation_rejects_unknown_fields(cluster: SimulatedCluster) -> None:
    """A misspelt field is 422 Invalid naming its path, in spec and in containers."""
    deployments = await resource(cluster, "apps", "Deployment")
    typo = deployment()
    typo["spec"]["replicass"] = 3
    with pytest.raises(ClusterError) as caught:
        await cluster.apply(deployments, typo, field_manager="fleetdeck", dry_run=True)
    assert caught.value.status == 422 and caught.value.reason == "Invalid"
    assert ".spec.replicass: field not declared in schema" in caught.value.message
    typo = deployment()
    container(typo)["imagee"] = "x"
    with pytest.raises(ClusterError, match=r'containers\[name="web"\]\.imagee: field not declared'):
        await cluster.apply(deployments, typo, field_manager="fleetdeck")


async def test_changing_a_selector_is_immutable(cluster: SimulatedCluster) -> None:
    """Changing a Deployment's selector is 422 ``field is immutable`` (dry run too)."""
    deployments = await resource(cluster, "apps", "Deployment")
    await cluster.apply(deployments, deployment(), field_manager="fleetdeck")
    changed = deployment()
    changed["spec"]["selector"] = {"matchLabels": {"app": "web", "track": "canary"}}
    with pytest.raises(ClusterError) as caught:
        await cluster.apply(deployments, changed, field_manager="fleetdeck", dry_run=True)
    assert caught.value.status == 422 and "spec.selector" in caught.value.message
    assert "field is immutable" in caught.value.message


async def test_job_template_is_immutable(cluster: SimulatedCluster) -> None:
    """Changing a Job's pod template is 422 ``field is immutable``."""
    jobs = await resource(cluster, "batch", "Job")
    job: JSON = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "shop"},
                 "spec": {"template": {"spec": {"restartPolicy": "Never",
                                                "containers": [{"name": "m", "image": "migrate:1"}]}}}}
    await cluster.apply(jobs, job, field_manager="fleetdeck")
    job["spec"]["template"]["spec"]["containers"][0]["image"] = "migrate:2"
    with pytest.raises(ClusterError, match=r"spec\.template: Invalid value: .*field is immutable"):
        await cluster.apply(jobs, job, field_manager="fleetdeck")


async def test_conflicts_need_force(cluster: SimulatedCluster) -> None:
    """Applying a field another manager changed is 409 without force; force takes ownership."""
    deployments = await resource(cluster, "apps", "Deployment")
    await cluster.apply(deployments, deployment(), field_manager="fleetdeck")
    cluster.update_as("kubectl-edit", WEB, {"spec": {"replicas": 5}})
    with pytest.raises(ClusterError, match=r'conflict with "kubectl-edit" using apps/v1: \.spec\.replicas'):
        await cluster.apply(deployments, deployment(), field_manager="fleetdeck", force=False)
    live = await cluster.apply(deployments, deployment(), field_manager="fleetdeck", force=True)
    assert live["spec"]["replicas"] == 2
    assert all(e["manager"] != "kubectl-edit" for e in live["metadata"]["managedFields"])
    assert "f:replicas" in entry(live, "fleetdeck")["fieldsV1"]["f:spec"]


async def test_missing_namespace_and_unknown_kind(cluster: SimulatedCluster) -> None:
    """A namespace that does not exist and a kind that is not served are 404."""
    deployments = await resource(cluster, "apps", "Deployment")
    elsewhere = deployment()
    elsewhere["metadata"]["namespace"] = "nowhere"
    with pytest.raises(ClusterError, match='namespaces "nowhere" not found') as caught:
        await cluster.apply(deployments, elsewhere, field_manager="fleetdeck")
    assert caught.value.not_found
    widgets = APIResource("example.com", "v1", "Widget", "widgets", True, frozenset({"list"}))
    with pytest.raises(ClusterError) as caught:
        await cluster.list(widgets)
    assert caught.value.not_found


async def test_applied_crd_is_served(cluster: SimulatedCluster) -> None:
    """Applying a CRD adds its kind to discovery (Established); deleting it removes the kind again."""
    crds = await resource(cluster, "apiextensions.k8s.io", "CustomResourceDefinition")
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True}]}}
    await cluster.apply(crds, crd, field_manager="fleetdeck")
    widgets = await resource(cluster, "example.com", "Widget")
    assert widgets.namespaced and widgets.watchable
    stored = await cluster.get(crds, "widgets.example.com")
    assert stored is not None and any(c["type"] == "Established" for c in stored["status"]["conditions"])
    await cluster.apply(widgets, {"apiVersion": "example.com/v1", "kind": "Widget",
                                  "metadata": {"name": "w", "namespace": "shop"}, "spec": {"anything": 1}},
                        field_manager="fleetdeck")
    await cluster.delete(crds, "widgets.example.com")
    assert all(r.kind != "Widget" for r in await cluster.discover())


# ---------------------------------------------------------------------------------------------- create, delete


async def test_create_refuses_an_existing_object(cluster: SimulatedCluster) -> None:
    """``create`` is 409 AlreadyExists for an existing name."""
    config_maps = await resource(cluster, "", "ConfigMap")
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}, "data": {}}
    created = await cluster.create(config_maps, obj)
    assert entry(created, "fleetdeck")["operation"] == "Update"
    with pytest.raises(ClusterError) as caught:
        await cluster.create(config_maps, obj)
    assert caught.value.conflict and caught.value.reason == "AlreadyExists"


async def test_delete_checks_uid_and_cascades(cluster: SimulatedCluster) -> None:
    """Delete honours a UID precondition; Foreground deletes the ReplicaSets and Pods it owns."""
    deployments = await resource(cluster, "apps", "Deployment")
    live = await cluster.apply(deployments, deployment(), field_manager="fleetdeck")
    await cluster.settle()
    assert cluster.objects("", "Pod", "shop")
    with pytest.raises(ClusterError) as caught:
        await cluster.delete(deployments, "web", "shop", uid="not-the-uid")
    assert caught.value.conflict
    await cluster.delete(deployments, "web", "shop", uid=live["metadata"]["uid"])
    assert await cluster.get(deployments, "web", "shop") is None
    assert cluster.objects("apps", "ReplicaSet") == () and cluster.objects("", "Pod") == ()
    await cluster.delete(deployments, "web", "shop")


async def test_orphan_keeps_children_and_namespace_deletion_cascades(cluster: SimulatedCluster) -> None:
    """Orphan deletion strips ownerReferences from the children; deleting a namespace deletes its objects."""
    deployments = await resource(cluster, "apps", "Deployment")
    await cluster.apply(deployments, deployment(), field_manager="fleetdeck")
    await cluster.settle()
    await cluster.delete(deployments, "web", "shop", propagation="Orphan")
    (replicaset,) = cluster.objects("apps", "ReplicaSet", "shop")
    assert "ownerReferences" not in replicaset["metadata"]
    await cluster.delete(await resource(cluster, "", "Namespace"), "shop")
    assert cluster.objects("apps", "ReplicaSet") == () and cluster.objects("", "Pod") == ()


async def test_generation_counts_spec_changes_only(cluster: SimulatedCluster) -> None:
    """A label change keeps ``metadata.generation``; a spec change bumps it."""
    deployments = await resource(cluster, "apps", "Deployment")
    await cluster.apply(deployments, deployment(), field_manager="fleetdeck")
    labelled = cluster.update_as("kubectl-label", WEB, {"metadata": {"labels": {"extra": "1"}}})
    assert labelled["metadata"]["generation"] == 1
    scaled = cluster.update_as("kubectl-scale", WEB, {"spec": {"replicas": 4}})
    assert scaled["metadata"]["generation"] == 2
    with pytest.raises(ClusterError) as caught:
        cluster.update_as("kubectl-edit", ResourceKey("apps", "Deployment", "shop", "missing"), {"spec": {}})
    assert caught.value.not_found


# ---------------------------------------------------------------------------------------------- list


async def test_list_pages_and_filters_by_labels(cluster: SimulatedCluster) -> None:
    """``limit``/``continue`` page through a sorted list; selectors support =, !=, exists and in."""
    config_maps = await resource(cluster, "", "ConfigMap")
    for index in range(5):
        labels = {"app": "a" if index % 2 else "b", **({"tier": "x"} if index < 2 else {})}
        await cluster.apply(config_maps, {"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": f"cm-{index}", "namespace": "shop", "labels": labels}},
                            field_manager="fleetdeck")
    first = await cluster.list(config_maps, limit=2)
    second = await cluster.list(config_maps, limit=2, continue_token=first["metadata"]["continue"])
    third = await cluster.list(config_maps, limit=2, continue_token=second["metadata"]["continue"])
    names = [i["metadata"]["name"] for page in (first, second, third) for i in page["items"]]
    assert names == [f"cm-{i}" for i in range(5)]
    assert "continue" not in third["metadata"]
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]

    async def selected(selector: str) -> list[str]:
        page = await cluster.list(config_maps, label_selector=selector)
        return [i["metadata"]["name"] for i in page["items"]]

    assert await selected("app=a") == ["cm-1", "cm-3"]
    assert await selected("app=b,tier!=x") == ["cm-2", "cm-4"]
    assert await selected("tier") == ["cm-0", "cm-1"]
    assert await selected("!tier,app in (a)") == ["cm-3"]
    with pytest.raises(ClusterError) as caught:
        await selected("app=a,==")
    assert caught.value.status == 400


async def test_expired_continue_token_is_gone(cluster: SimulatedCluster) -> None:
    """A continue token older than the compaction point is 410 Gone."""
    config_maps = await resource(cluster, "", "ConfigMap")
    for index in range(3):
        await cluster.apply(config_maps, {"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": f"cm-{index}", "namespace": "shop"}},
                            field_manager="fleetdeck")
    first = await cluster.list(config_maps, limit=1)
    cluster.update_as("someone", ResourceKey("", "ConfigMap", "shop", "cm-0"), {"data": {"a": "b"}})
    cluster.compact()
    with pytest.raises(ClusterError) as caught:
        await cluster.list(config_maps, limit=1, continue_token=first["metadata"]["continue"])
    assert caught.value.gone


# ---------------------------------------------------------------------------------------------- watch


async def take(stream: AsyncIterator[JSON], count: int, *, until_bookmark: bool = False) -> list[JSON]:
    """The next ``count`` non-bookmark events (or everything up to the first bookmark)."""
    events: list[JSON] = []
    async for event in stream:
        if event["type"] == "BOOKMARK":
            if until_bookmark:
                events.append(event)
                return events
            continue
        events.append(event)
        if len(events) == count and not until_bookmark:
            return events
    return events


async def test_watch_replays_from_a_resource_version_then_streams(cluster: SimulatedCluster) -> None:
    """A watch from a list's resourceVersion sees later changes in order, then live ones."""
    config_maps = await resource(cluster, "", "ConfigMap")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}, "data": {"k": "1"}}
    await cluster.apply(config_maps, cm, field_manager="fleetdeck")
    listed = await cluster.list(config_maps)
    await cluster.apply(config_maps, {**cm, "data": {"k": "2"}}, field_manager="fleetdeck")
    stream = cluster.watch(config_maps, resource_version=listed["metadata"]["resourceVersion"], timeout_seconds=30)
    replayed = await take(stream, 1)
    assert [(e["type"], e["object"]["data"]["k"]) for e in replayed] == [("MODIFIED", "2")]
    await cluster.delete(config_maps, "c", "shop")
    assert [e["type"] for e in await take(stream, 1)] == ["DELETED"]
    await stream.aclose()  # type: ignore[attr-defined]


async def test_watch_sends_bookmarks_with_the_current_version(cluster: SimulatedCluster) -> None:
    """A quiet watch sends BOOKMARK events carrying the newest resourceVersion."""
    config_maps = await resource(cluster, "", "ConfigMap")
    stream = cluster.watch(config_maps, resource_version=str(cluster.store.resource_version), timeout_seconds=30)
    events = await take(stream, 0, until_bookmark=True)
    assert events[-1]["type"] == "BOOKMARK"
    assert events[-1]["object"]["metadata"]["resourceVersion"] == str(cluster.store.resource_version)
    await stream.aclose()  # type: ignore[attr-defined]


async def test_watch_from_a_compacted_version_is_gone(cluster: SimulatedCluster) -> None:
    """After ``compact()``, a watch from an older resourceVersion yields one ERROR event with code 410."""
    config_maps = await resource(cluster, "", "ConfigMap")
    old = str(cluster.store.resource_version)
    await cluster.apply(config_maps, {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "c", "namespace": "shop"}}, field_manager="fleetdeck")
    cluster.compact()
    events = [e async for e in cluster.watch(config_maps, resource_version=old, timeout_seconds=30)]
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


async def test_watch_with_a_selector_sees_objects_leave(cluster: SimulatedCluster) -> None:
    """An object whose labels stop matching the watch's selector arrives as DELETED."""
    config_maps = await resource(cluster, "", "ConfigMap")
    key = ResourceKey("", "ConfigMap", "shop", "c")
    await cluster.apply(config_maps, {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "c", "namespace": "shop", "labels": {"owned": "yes"}}},
                        field_manager="fleetdeck")
    stream = cluster.watch(config_maps, resource_version="0", timeout_seconds=30, label_selector="owned=yes")
    assert [e["type"] for e in await take(stream, 1)] == ["ADDED"]
    cluster.update_as("kubectl-edit", key, {"metadata": {"labels": {"owned": None}}})
    assert [e["type"] for e in await take(stream, 1)] == ["DELETED"]
    await stream.aclose()  # type: ignore[attr-defined]


async def test_watch_ends_at_its_timeout() -> None:
    """A watch ends by itself after ``timeout_seconds`` (here on a cluster whose bookmarks are rare)."""
    sim = SimulatedCluster("t", timing=SimulationTiming(bookmark_interval=60), controllers=False)
    config_maps = await resource(sim, "", "ConfigMap")
    loop = asyncio.get_running_loop()
    started = loop.time()
    events = [e async for e in sim.watch(config_maps, resource_version="", timeout_seconds=0)]
    assert events == [] and loop.time() - started < 1


# ---------------------------------------------------------------------------------------------- controllers


async def test_controller_makes_a_deployment_available(cluster: SimulatedCluster) -> None:
    """A Deployment gets a ReplicaSet and Pods (ownerReferences) and an Available, complete status."""
    deployments = await resource(cluster, "apps", "Deployment")
    await cluster.apply(deployments, deployment(replicas=3), field_manager="fleetdeck")
    await cluster.settle()
    live = cluster.get_object(WEB)
    assert live is not None
    status = live["status"]
    assert status["observedGeneration"] == 1
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"], status["availableReplicas"]) == \
        (3, 3, 3, 3)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {"Available": ("True", "MinimumReplicasAvailable"),
                          "Progressing": ("True", "NewReplicaSetAvailable")}
    (replicaset,) = cluster.objects("apps", "ReplicaSet", "shop")
    assert replicaset["metadata"]["ownerReferences"][0]["uid"] == live["metadata"]["uid"]
    pods = cluster.objects("", "Pod", "shop")
    assert len(pods) == 3
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == replicaset["metadata"]["uid"] for p in pods)
    assert all(p["status"]["phase"] == "Running" for p in pods)


async def test_controller_rolls_out_a_new_template(cluster: SimulatedCluster) -> None:
    """A template change makes a second ReplicaSet; the old one is scaled to 0 once the new is available."""
    deployments = await resource(cluster, "apps", "Deployment")
    await cluster.apply(deployments, deployment(), field_manager="fleetdeck")
    await cluster.settle()
    await cluster.apply(deployments, deployment(image="registry.example.com/web:2.0"), field_manager="fleetdeck")
    await cluster.settle()
    replicas = sorted(rs["spec"]["replicas"] for rs in cluster.objects("apps", "ReplicaSet", "shop"))
    assert replicas == [0, 2]
    live = cluster.get_object(WEB)
    assert live is not None and live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert live["status"]["observedGeneration"] == 2 and live["status"]["updatedReplicas"] == 2


async def test_crashloop_image_degrades_the_deployment(cluster: SimulatedCluster) -> None:
    """An image containing ``crashloop`` gives CrashLoopBackOff pods and ProgressDeadlineExceeded."""
    deployments = await resource(cluster, "apps", "Deployment")
    await cluster.apply(deployments, deployment(image="registry.example.com/web:2.0-crashloop"),
                        field_manager="fleetdeck")
    await cluster.settle()
    live = cluster.get_object(WEB)
    assert live is not None
    progressing = next(c for c in live["status"]["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert "availableReplicas" not in live["status"]
    for pod in cluster.objects("", "Pod", "shop"):
        (state,) = pod["status"]["containerStatuses"]
        assert state["state"]["waiting"]["reason"] == "CrashLoopBackOff" and state["restartCount"] >= 1


async def test_other_workloads_get_status(cluster: SimulatedCluster) -> None:
    """StatefulSets, DaemonSets and Jobs get pods and a finished status; LoadBalancers get an address."""
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}
    selector = {"matchLabels": {"app": "x"}}
    manifests: list[dict[str, Any]] = [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "shop"},
         "spec": {"replicas": 2, "serviceName": "db", "selector": selector, "template": template}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "shop"},
         "spec": {"selector": selector, "template": template}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once", "namespace": "shop"},
         "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x:1"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb", "namespace": "shop"},
         "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
    ]
    for manifest in manifests:
        cluster.seed_apply(manifest)
    await cluster.settle()
    statefulset = cluster.get_object(ResourceKey("apps", "StatefulSet", "shop", "db"))
    daemonset = cluster.get_object(ResourceKey("apps", "DaemonSet", "shop", "agent"))
    job = cluster.get_object(ResourceKey("batch", "Job", "shop", "once"))
    service = cluster.get_object(ResourceKey("", "Service", "shop", "lb"))
    assert statefulset and daemonset and job and service
    assert statefulset["status"]["readyReplicas"] == 2
    assert statefulset["status"]["currentRevision"] == statefulset["status"]["updateRevision"]
    assert daemonset["status"]["numberAvailable"] == daemonset["status"]["desiredNumberScheduled"] == 3
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"])
    assert service["status"]["loadBalancer"]["ingress"][0]["ip"]


async def test_background_loop_runs_on_first_use_and_stops_on_close() -> None:
    """Without ``settle()``, the controller loop started by the first call makes a Deployment available."""
    sim = SimulatedCluster("bg", timing=SimulationTiming.instant())
    sim.ensure_namespace("shop")
    deployments = await resource(sim, "apps", "Deployment")
    await sim.apply(deployments, deployment(), field_manager="fleetdeck")
    for _ in range(200):
        live = sim.get_object(WEB)
        if live and live["status"].get("availableReplicas") == 2:
            break
        await asyncio.sleep(0)
    assert live is not None and live["status"].get("availableReplicas") == 2
    await sim.close()
    assert sim._task is None


# ---------------------------------------------------------------------------------------------- faults, access


async def test_unreachable_cluster_refuses_calls_and_ends_watches(cluster: SimulatedCluster) -> None:
    """``set_reachable(False)`` makes every call raise status None and ends open watches."""
    config_maps = await resource(cluster, "", "ConfigMap")
    stream = cluster.watch(config_maps, resource_version=str(cluster.store.resource_version), timeout_seconds=30)
    waiter = asyncio.ensure_future(take(stream, 1))
    await asyncio.sleep(0)
    cluster.set_reachable(False)
    assert await asyncio.wait_for(waiter, timeout=5) == []
    for call in (cluster.discover(), cluster.list(config_maps), cluster.get(config_maps, "x", "shop"), cluster.whoami()):
        with pytest.raises(ClusterError) as caught:
            await call
        assert caught.value.status is None and "connection refused" in caught.value.message
        assert caught.value.transient
    cluster.set_reachable(True)
    assert await cluster.list(config_maps)


async def test_read_only_user_cannot_write(cluster: SimulatedCluster) -> None:
    """A viewer may read but every write, dry runs included, is 403; ``can_i`` says so."""
    deployments = await resource(cluster, "apps", "Deployment")
    cluster.set_user(VIEWER)
    assert await cluster.whoami() == "viewer"
    assert await cluster.can_i("list", deployments) and not await cluster.can_i("patch", deployments)
    with pytest.raises(ClusterError) as caught:
        await cluster.apply(deployments, deployment(), field_manager="fleetdeck", dry_run=True)
    assert caught.value.forbidden and 'User "viewer" cannot patch' in caught.value.message
    assert (await cluster.list(deployments))["items"] == []
    cluster.set_user(SimulatedUser(name="ops", denied=frozenset({("apps", "Deployment")})))
    with pytest.raises(ClusterError) as caught:
        await cluster.list(deployments)
    assert caught.value.forbidden


async def test_latency_delays_calls(cluster: SimulatedCluster) -> None:
    """``set_latency`` makes calls wait (checked on loop time, with a tiny latency)."""
    cluster.set_latency(0.01)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await cluster.discover()
    assert loop.time() - started >= 0.01
    assert cluster.requests[-1] == ("discover", "/apis")
