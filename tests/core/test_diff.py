"""The local structural diff, the dry-run comparison and the drift CLI helper."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from deepdiff import DeepDiff

from core.model import FieldChange, ResourceState
from core.reconcile.diff import compare, compare_predicted
from core.reconcile.drift_report import drift_report
from core.reconcile.ignore import IgnoreRule
from core.reconcile.jsonpath import thaw

OBJECTS = Path(__file__).resolve().parents[1] / "fixtures" / "objects"
LIVE = json.loads((OBJECTS / "deployment-live.json").read_text())
DESIRED = yaml.safe_load((OBJECTS / "deployment-desired.yaml").read_text())
FLEETDECK_TIME = "2026-05-01T09:12:44Z"


def container(**fields: Any) -> dict[str, Any]:
    """A container named web."""
    return {"name": "web", "image": "web:1", **fields}


def deployment(
    *, containers: list[dict[str, Any]] | None = None, meta: Any = None, **spec: Any
) -> dict[str, Any]:
    """A small Deployment; ``meta`` merges into metadata."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", **(meta or {})},
        "spec": {"template": {"spec": {"containers": containers or [container()]}}, **spec},
    }


def live_of(obj: dict[str, Any], **extra_spec: Any) -> dict[str, Any]:
    """``obj`` as the API server would return it: server metadata, status and extra defaulted fields."""
    out = copy.deepcopy(obj)
    out["metadata"].update(
        uid="u-1", resourceVersion="7", generation=2, creationTimestamp="2026-05-01T09:00:00Z"
    )
    out["spec"].update(extra_spec)
    out["status"] = {"observedGeneration": 2}
    return out


def secret(**fields: Any) -> dict[str, Any]:
    """A Secret named s."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "shop"},
        "type": "Opaque",
        **fields,
    }


FALSE_POSITIVES = [
    pytest.param(
        deployment(containers=[container(resources={"limits": {"cpu": "1000m"}})]),
        live_of(deployment(containers=[container(resources={"limits": {"cpu": "1"}})])),
        id="cpu-1000m-vs-1",
    ),
    pytest.param(
        deployment(containers=[container(resources={"requests": {"cpu": 0.5}})]),
        live_of(deployment(containers=[container(resources={"requests": {"cpu": "500m"}})])),
        id="cpu-0.5-vs-500m",
    ),
    pytest.param(
        deployment(containers=[container(resources={"requests": {"cpu": 1}})]),
        live_of(deployment(containers=[container(resources={"requests": {"cpu": "1"}})])),
        id="cpu-int-1-vs-string",
    ),
    pytest.param(
        deployment(containers=[container(resources={"limits": {"memory": "1Gi"}})]),
        live_of(deployment(containers=[container(resources={"limits": {"memory": "1024Mi"}})])),
        id="memory-1Gi-vs-1024Mi",
    ),
    pytest.param(
        deployment(containers=[container(resources={"limits": {"memory": "1000M"}})]),
        live_of(deployment(containers=[container(resources={"limits": {"memory": "1G"}})])),
        id="memory-1000M-vs-1G",
    ),
    pytest.param(
        deployment(containers=[container(readinessProbe={"httpGet": {"port": 80}, "initialDelaySeconds": 0})]),
        live_of(deployment(containers=[container(readinessProbe={"httpGet": {"port": 80, "scheme": "HTTP"}, "timeoutSeconds": 1})])),
        id="initialDelaySeconds-0-vs-missing",
    ),
    pytest.param(
        deployment(containers=[container(resources={})]),
        live_of(deployment()),
        id="resources-empty-vs-missing",
    ),
    pytest.param(
        deployment(containers=[container(resources={"limits": {}})]),
        live_of(deployment(containers=[container(resources={})])),
        id="resources-nested-empty",
    ),
    pytest.param(
        deployment(containers=[container(ports=[{"containerPort": 80}])]),
        live_of(deployment(containers=[container(ports=[{"containerPort": 80, "protocol": "TCP"}])])),
        id="protocol-tcp-default",
    ),
    pytest.param(
        deployment(meta={"creationTimestamp": None},
                   template={"metadata": {"creationTimestamp": None}, "spec": {"containers": [container()]}}),
        live_of(deployment()),
        id="creationTimestamp-null",
    ),
    pytest.param(
        deployment(meta={"annotations": {}, "labels": None}),
        live_of(deployment()),
        id="empty-annotations-null-labels",
    ),
    pytest.param(
        deployment(containers=[container(tolerations=None)], paused=False),
        live_of(deployment()),
        id="null-and-false-vs-missing",
    ),
    pytest.param(
        deployment(replicas=3),
        live_of(deployment(replicas=3), revisionHistoryLimit=10, progressDeadlineSeconds=600,
                strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
        id="server-defaults-extra-in-live",
    ),
    pytest.param(
        deployment(replicas=3),
        live_of(deployment(replicas=3.0)),
        id="int-vs-float",
    ),
    pytest.param(
        deployment(containers=[container()]),
        live_of(deployment(containers=[container(), {"name": "istio-proxy", "image": "proxy:1"}])),
        id="injected-sidecar-keyed-extra",
    ),
    pytest.param(
        deployment(meta={"labels": {"app": "web"}}),
        live_of(deployment(meta={"labels": {"app": "web", "pod-template-hash": "x"},
                                 "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}})),
        id="live-extra-labels-and-last-applied",
    ),
    pytest.param(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop", "uid": "u"},
         "spec": {"clusterIP": "10.96.0.12", "clusterIPs": ["10.96.0.12"], "type": "ClusterIP", "sessionAffinity": "None",
                  "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}, "status": {"loadBalancer": {}}},
        id="service-defaults-and-namespace-defaulted",
    ),
    pytest.param(
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "shop"},
         "spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "shop"},
         "spec": {"volumeClaimTemplates": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                  "metadata": {"name": "data", "creationTimestamp": None},
                  "spec": {"volumeMode": "Filesystem", "resources": {"requests": {"storage": "1024Mi"}}}, "status": {"phase": "Pending"}}]}},
        id="statefulset-claim-templates",
    ),
    pytest.param(
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "view-ext"},
         "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "true"}}]}, "rules": []},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "view-ext"},
         "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "true"}}]}, "rules": [{"verbs": ["get"], "resources": ["pods"], "apiGroups": [""]}]},
        id="aggregated-clusterrole",
    ),
    pytest.param(
        {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "w.example.com"},
         "spec": {"group": "example.com", "preserveUnknownFields": False}},
        {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "w.example.com"},
         "spec": {"group": "example.com"}},
        id="crd-preserveUnknownFields-false",
    ),
    pytest.param(
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"metrics": [{"type": "Resource", "resource": {"name": "memory"}}, {"type": "Resource", "resource": {"name": "cpu"}}]}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"metrics": [{"type": "Resource", "resource": {"name": "cpu"}}, {"type": "Resource", "resource": {"name": "memory"}}]}},
        id="hpa-metrics-reordered",
    ),
    pytest.param(
        secret(stringData={"password": "hunter2"}),
        secret(data={"password": "aHVudGVyMg=="}),
        id="secret-stringData-vs-data",
    ),
    pytest.param(
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": "m"},
         "webhooks": [{"name": "a.example.com", "clientConfig": {"service": {"name": "s", "namespace": "x"}}}]},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": "m"},
         "webhooks": [{"name": "a.example.com", "clientConfig": {"caBundle": "LS0t", "service": {"name": "s", "namespace": "x", "port": 443}},
                       "timeoutSeconds": 10}]},
        id="webhook-caBundle-injected",
    ),
    pytest.param(
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "prod"}, "spec": {"size": 1}},
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}},
        id="kustomize-namespace-on-cluster-scoped-cr",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("desired", "live"), FALSE_POSITIVES)
def test_false_positive_catalog_is_synced(desired: dict[str, Any], live: dict[str, Any]) -> None:
    """Every known false positive of a naive comparison compares Synced by the local strategy."""
    scoped = True if desired["kind"] == "Widget" else None
    result = compare(desired, live, namespace_default="shop", cluster_scoped=scoped)
    assert result.state is ResourceState.SYNCED, result.changes
    assert result.changes == () and result.approximate and result.strategy == "local"


REAL_CHANGES = [
    pytest.param(
        deployment(containers=[container(image="web:2")]),
        live_of(deployment()),
        [("/spec/template/spec/containers/0/image", "replace", "web:2", "web:1")],
        id="image-changed",
    ),
    pytest.param(
        deployment(containers=[container(args=["--b", "--a"])]),
        live_of(deployment(containers=[container(args=["--a", "--b"])])),
        [("/spec/template/spec/containers/0/args/0", "replace", "--b", "--a"),
         ("/spec/template/spec/containers/0/args/1", "replace", "--a", "--b")],
        id="args-reordered-atomic",
    ),
    pytest.param(
        deployment(containers=[container(args=["--a"])]),
        live_of(deployment(containers=[container(args=["--a", "--debug"])])),
        [("/spec/template/spec/containers/0/args/1", "remove", None, "--debug")],
        id="atomic-list-extra-live-item",
    ),
    pytest.param(
        deployment(containers=[container(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])]),
        live_of(deployment(containers=[container(env=[{"name": "A", "value": "1"}])])),
        [("/spec/template/spec/containers/0/env/1", "add", {"name": "B", "value": "2"}, None)],
        id="env-added-in-git",
    ),
    pytest.param(
        deployment(containers=[container(env=[{"name": "B", "value": "3"}, {"name": "A", "value": "1"}])]),
        live_of(deployment(containers=[container(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])])),
        [("/spec/template/spec/containers/0/env", "replace", ("B", "A"), ("A", "B")),
         ("/spec/template/spec/containers/0/env/1/value", "replace", "3", "2")],
        id="env-value-changed-pointer-into-live",
    ),
    pytest.param(
        deployment(containers=[container(env=[{"name": "B", "value": "2"}, {"name": "A", "value": "1"}])]),
        live_of(deployment(containers=[container(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])])),
        [("/spec/template/spec/containers/0/env", "replace", ("B", "A"), ("A", "B"))],
        id="env-reordered-by-name-apply-reorders",
    ),
    pytest.param(
        deployment(containers=[container(resources={"limits": {"cpu": "2"}})]),
        live_of(deployment(containers=[container(resources={"limits": {"cpu": "1000m"}})])),
        [("/spec/template/spec/containers/0/resources/limits/cpu", "replace", "2", "1")],
        id="cpu-really-changed",
    ),
    pytest.param(
        deployment(replicas="3"),
        live_of(deployment(replicas=3)),
        [("/spec/replicas", "replace", "3", 3)],
        id="string-vs-int-not-coerced",
    ),
    pytest.param(
        deployment(paused=True),
        live_of(deployment(paused=1)),
        [("/spec/paused", "replace", True, 1)],
        id="bool-vs-int",
    ),
    pytest.param(
        deployment(replicas=0),
        live_of(deployment(replicas=2)),
        [("/spec/replicas", "replace", 0, 2)],
        id="zero-vs-present-value",
    ),
    pytest.param(
        deployment(meta={"labels": {"a/b": "x"}}),
        live_of(deployment(meta={"labels": {"a/b": "y"}})),
        [("/metadata/labels/a~1b", "replace", "x", "y")],
        id="pointer-escaping",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("desired", "live", "expected"), REAL_CHANGES)
def test_real_changes_are_out_of_sync(
    desired: dict[str, Any], live: dict[str, Any], expected: list[tuple[Any, ...]]
) -> None:
    """A real difference is OutOfSync with JSON-pointer paths, op and both values."""
    result = compare(desired, live, namespace_default="shop")
    assert result.state is ResourceState.OUT_OF_SYNC
    assert [(c.path, c.op, c.desired, c.live) for c in result.changes] == expected


def test_realistic_deployment_reports_only_the_kubectl_edit() -> None:
    """The hand-written apiserver Deployment differs from Git only in replicas, changed by kubectl-edit."""
    result = compare(DESIRED, LIVE, namespace_default="shop")
    assert result.state is ResourceState.OUT_OF_SYNC and result.message == "1 field differs"
    assert result.changes == (
        FieldChange(
            "/spec/replicas",
            "replace",
            desired=3,
            live=5,
            manager="kubectl-edit",
            time="2026-05-02T14:03:10Z",
        ),
    )
    assert result.live is not None and "managedFields" not in result.live["metadata"]
    assert result.desired is not None and result.desired["metadata"]["namespace"] == "shop"


def test_realistic_deployment_in_sync_after_git_catches_up() -> None:
    """With Git's replicas matching the edit, every server default and spelling difference is Synced."""
    desired = copy.deepcopy(DESIRED)
    desired["spec"]["replicas"] = 5
    result = compare(desired, LIVE, namespace_default="shop")
    assert (result.state, result.changes, result.warnings) == (ResourceState.SYNCED, (), ())


def test_field_removed_from_git_but_owned_by_fleetdeck_is_pending_removal() -> None:
    """A label and an env var deleted from Git but still owned by fleetdeck's Apply are removals."""
    desired = copy.deepcopy(DESIRED)
    desired["spec"]["replicas"] = 5
    del desired["metadata"]["labels"]["tier"]
    desired["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "PORT", "value": "8080"}]
    result = compare(desired, LIVE, namespace_default="shop")
    assert result.state is ResourceState.OUT_OF_SYNC
    assert result.changes == (
        FieldChange("/metadata/labels/tier", "remove", None, "frontend", "fleetdeck", FLEETDECK_TIME,
                    note="removed from Git"),
        FieldChange("/spec/template/spec/containers/0/env/0", "remove", None, {"name": "LOG_LEVEL", "value": "info"},
                    "fleetdeck", FLEETDECK_TIME, note="removed from Git"),
    )  # fmt: skip


def test_removed_container_reported_once() -> None:
    """A whole container dropped from Git is one removal, not one per field."""
    live = copy.deepcopy(LIVE)
    sidecar = {"name": "log", "image": "fluent-bit:3"}
    live["spec"]["template"]["spec"]["containers"].append(sidecar)
    fleetdeck = live["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"][
        "f:containers"
    ]
    fleetdeck['k:{"name":"log"}'] = {".": {}, "f:image": {}, "f:name": {}}
    desired = copy.deepcopy(DESIRED)
    desired["spec"]["replicas"] = 5
    result = compare(desired, live, namespace_default="shop")
    assert [(c.path, c.op, c.live) for c in result.changes] == [
        ("/spec/template/spec/containers/1", "remove", sidecar)
    ]


def test_field_not_owned_by_fleetdeck_is_not_a_removal() -> None:
    """A live-only field another manager wrote is left alone: SSA would not remove it either."""
    live = copy.deepcopy(LIVE)
    live["metadata"]["labels"]["team"] = "payments"
    live["metadata"]["managedFields"].append(
        {"manager": "kubectl-label", "operation": "Update", "time": "2026-05-03T08:00:00Z",
         "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}}}
    )  # fmt: skip
    desired = copy.deepcopy(DESIRED)
    desired["spec"]["replicas"] = 5
    assert compare(desired, live, namespace_default="shop").state is ResourceState.SYNCED


def test_stuck_field_warns() -> None:
    """A removed field also owned by another manager is reported with a StuckField warning."""
    live = copy.deepcopy(LIVE)
    live["metadata"]["managedFields"].append(
        {"manager": "kubectl-client-side-apply", "operation": "Update", "time": "2026-04-01T00:00:00Z",
         "fieldsV1": {"f:metadata": {"f:labels": {"f:tier": {}}}}}
    )  # fmt: skip
    desired = copy.deepcopy(DESIRED)
    desired["spec"]["replicas"] = 5
    del desired["metadata"]["labels"]["tier"]
    result = compare(desired, live, namespace_default="shop")
    assert [c.path for c in result.changes] == ["/metadata/labels/tier"]
    assert result.warnings == (
        "StuckField: /metadata/labels/tier is also owned by kubectl-client-side-apply; applying will not remove it",
    )


def test_ignore_rule_hides_replicas() -> None:
    """An ignore rule on /spec/replicas makes the kubectl-edit scale-up Synced."""
    rule = IgnoreRule(group="apps", kind="Deployment", json_pointers=("/spec/replicas",))
    assert compare(DESIRED, LIVE, namespace_default="shop", ignore_rules=[rule]).state is ResourceState.SYNCED


@pytest.mark.parametrize(
    ("desired", "live", "kwargs", "state"),
    [
        pytest.param(deployment(), None, {}, ResourceState.MISSING, id="missing"),
        pytest.param(None, live_of(deployment()), {}, ResourceState.EXTRANEOUS, id="extraneous"),
        pytest.param(
            None, live_of(deployment()), {"extraneous_ok": True}, ResourceState.SYNCED, id="extraneous-ok"
        ),
    ],
)
def test_one_sided(desired: Any, live: Any, kwargs: dict[str, Any], state: ResourceState) -> None:
    """Desired only is Missing, live only is Extraneous (or Synced when extraneous is allowed)."""
    result = compare(desired, live, **kwargs)
    assert result.state is state and result.changes == () and result.approximate
    assert (result.desired is None) is (desired is None) and (result.live is None) is (live is None)


def test_neither_side_is_an_error() -> None:
    """Comparing nothing with nothing is a programming error."""
    with pytest.raises(ValueError):
        compare(None, None)


def test_display_objects_are_read_only() -> None:
    """ResourceDiff.desired/live are deep read-only views."""
    result = compare(DESIRED, LIVE, namespace_default="shop")
    assert result.live is not None
    with pytest.raises(TypeError):
        result.live["spec"]["replicas"] = 1


def test_deepdiff_not_called_for_identical_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path: identical (after normalization) objects never reach deepdiff."""
    calls: list[int] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return DeepDiff(*args, **kwargs)

    monkeypatch.setattr("core.reconcile.diff.DeepDiff", spy)
    desired = copy.deepcopy(DESIRED)
    desired["spec"]["replicas"] = 5
    assert compare(desired, LIVE, namespace_default="shop").state is ResourceState.SYNCED
    assert compare_predicted(LIVE, LIVE).state is ResourceState.SYNCED
    assert calls == []
    # A changed scalar (the fixture's replicas) is explained without deepdiff (``_plain_op``); a changed
    # list still goes through it, once per comparison.
    drifted = compare(DESIRED, LIVE, namespace_default="shop")
    assert drifted.state is ResourceState.OUT_OF_SYNC
    assert [c.path for c in drifted.changes] == ["/spec/replicas"]
    assert calls == []
    desired, live = copy.deepcopy(DESIRED), copy.deepcopy(LIVE)
    desired["spec"]["template"]["spec"]["containers"][0]["args"] = ["--port", "8080"]
    live["spec"]["template"]["spec"]["containers"][0]["args"] = ["--port", "9090"]
    listed = compare(desired, live, namespace_default="shop")
    assert listed.state is ResourceState.OUT_OF_SYNC
    assert "/spec/template/spec/containers/0/args/1" in [c.path for c in listed.changes]
    assert calls == [1]


# ---------------------------------------------------------------------------------------------- dry-run strategy


def predicted_of(live: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """What a dry-run apply returns: live with fleetdeck's changes, a bumped generation and new managedFields."""
    out = copy.deepcopy(live)
    out["metadata"]["generation"] = out["metadata"].get("generation", 1) + 1
    out["metadata"]["managedFields"] = [
        {"manager": "fleetdeck", "operation": "Apply", "time": "2026-06-01T00:00:00Z"}
    ]
    out["spec"].update(spec)
    return out


def test_predicted_equal_to_live_is_synced() -> None:
    """Server noise (generation, managedFields) in the dry-run result is not drift."""
    result = compare_predicted(predicted_of(LIVE), LIVE)
    assert (result.state, result.approximate, result.strategy) == (ResourceState.SYNCED, False, "ssa-dry-run")


def test_predicted_change_is_out_of_sync_with_manager() -> None:
    """A predicted change shows the live value's writer (from live's managedFields, not predicted's)."""
    result = compare_predicted(predicted_of(LIVE, replicas=3), LIVE)
    assert result.state is ResourceState.OUT_OF_SYNC and not result.approximate
    assert result.changes == (
        FieldChange("/spec/replicas", "replace", 3, 5, "kubectl-edit", "2026-05-02T14:03:10Z"),
    )


def test_predicted_removal_and_extra_fields_are_drift() -> None:
    """The dry-run comparison is whole-object: a field the server would remove is a remove op."""
    predicted = predicted_of(LIVE)
    del predicted["metadata"]["labels"]["tier"]
    result = compare_predicted(predicted, LIVE)
    assert [(c.path, c.op, c.live, c.manager) for c in result.changes] == [
        ("/metadata/labels/tier", "remove", "frontend", "fleetdeck")
    ]


def test_predicted_without_live_is_missing() -> None:
    """A dry-run of an object that does not exist yet is Missing, not approximate."""
    result = compare_predicted(predicted_of(LIVE), None)
    assert result.state is ResourceState.MISSING and not result.approximate


def test_predicted_hpa_duplicates_dropped() -> None:
    """N15 on the dry-run result: duplicated metrics from the apiserver bug are not drift."""
    metric = {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
    }
    live: dict[str, Any] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"metrics": [metric]},
    }
    predicted = copy.deepcopy(live)
    predicted["spec"]["metrics"] = [metric, metric, {"type": ""}]
    assert compare_predicted(predicted, live).state is ResourceState.SYNCED


# ---------------------------------------------------------------------------------------------- fleetdeck drift


def test_drift_report_from_kubectl_output() -> None:
    """The drift helper reports the kubectl-edit change as JSON-ready data, namespace defaulting to default."""
    desired = copy.deepcopy(DESIRED)
    del desired["metadata"]["labels"]["fleetdeck.io/app"]
    del desired["metadata"]["annotations"]
    live = copy.deepcopy(LIVE)
    live["metadata"]["namespace"] = "default"
    report = drift_report(desired, live)
    assert report == {
        "in_sync": False,
        "approximate": True,
        "changes": [
            {
                "path": "/spec/replicas",
                "desired": 3,
                "live": 5,
                "manager": "kubectl-edit",
                "time": "2026-05-02T14:03:10Z",
            }
        ],
    }
    json.dumps(report)


def test_drift_report_in_sync_without_managed_fields() -> None:
    """Without --show-managed-fields the helper still compares; changes then carry no manager."""
    live = copy.deepcopy(LIVE)
    del live["metadata"]["managedFields"]
    live["metadata"]["namespace"] = "default"
    desired = copy.deepcopy(DESIRED)
    desired["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/web:1.5.0"
    desired["spec"]["replicas"] = 5
    report = drift_report(desired, live)
    assert report["in_sync"] is False
    assert report["changes"] == [{"path": "/spec/template/spec/containers/0/image", "desired": "ghcr.io/acme/web:1.5.0",
                                  "live": "ghcr.io/acme/web:1.4.2", "manager": None, "time": None}]  # fmt: skip


# ---------------------------------------------------------------------------------------------- the preview is the effect


def _owned_by(obj: dict[str, Any], owners: dict[str, dict[str, Any]]) -> dict[str, Any]:
    obj["metadata"]["managedFields"] = [
        {"manager": name, "operation": "Apply" if name == "fleetdeck" else "Update", "fieldsType": "FieldsV1",
         "time": FLEETDECK_TIME, "fieldsV1": fields}
        for name, fields in owners.items()
    ]
    return obj


def test_value_only_fleetdeck_wrote_is_changed_in_git() -> None:
    """Git moved on and live still holds what fleetdeck applied: the cause is Git, not a live edit."""
    live = _owned_by(live_of(deployment(replicas=2)), {"fleetdeck": {"f:spec": {"f:replicas": {}}}})
    result = compare(deployment(replicas=3), live, namespace_default="shop")
    (change,) = result.changes
    assert (change.op, change.note, change.cause) == ("replace", "changed in Git", "changed in Git")


def test_value_another_manager_wrote_names_that_manager() -> None:
    live = _owned_by(live_of(deployment(replicas=5)), {"fleetdeck": {"f:spec": {"f:template": {}}},
                                                      "kubectl-edit": {"f:spec": {"f:replicas": {}}}})
    (change,) = compare(deployment(replicas=3), live, namespace_default="shop").changes
    assert (change.note, change.manager, change.cause) == ("", "kubectl-edit", f"changed by kubectl-edit at {FLEETDECK_TIME}")


def test_field_missing_live_is_not_set_live_not_an_unknown_manager() -> None:
    live = _owned_by(live_of(deployment()), {"fleetdeck": {"f:spec": {"f:template": {}}}})
    (change,) = compare(deployment(paused=True), live, namespace_default="shop").changes
    assert (change.op, change.manager, change.cause) == ("add", None, "not set live")


def test_order_change_is_reported_by_the_dry_run_comparison_too() -> None:
    """The predicted object lists env in Git's order, live in another: the apply would reorder it."""
    env = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    live = live_of(deployment(containers=[container(env=env)]))
    predicted = live_of(deployment(containers=[container(env=env[::-1])]))
    result = compare_predicted(predicted, live)
    assert result.state is ResourceState.OUT_OF_SYNC
    assert result.message == "order differs: spec.template.spec.containers[0].env"
    assert [(c.path, c.desired, c.live, c.note) for c in result.changes] == [
        ("/spec/template/spec/containers/0/env", ("B", "A"), ("A", "B"), "order differs")]


def test_order_of_items_only_one_side_has_does_not_count() -> None:
    """A sidecar's env or an extra item another manager added does not make the shared order differ."""
    desired = deployment(containers=[container(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])])
    live = live_of(deployment(containers=[container(env=[{"name": "A", "value": "1"}, {"name": "X", "value": "0"},
                                                         {"name": "B", "value": "2"}])]))
    assert compare(desired, live, namespace_default="shop").state is ResourceState.SYNCED


def test_local_diff_shows_live_projected_onto_the_manifest() -> None:
    """Server defaults and fields only live has are left out of the displayed live object; pending
    removals (fields fleetdeck applied that Git dropped) stay, and keyed lists keep live's order."""
    live = _owned_by(live_of(deployment(containers=[container(env=[{"name": "B", "value": "2"},
                                                                   {"name": "A", "value": "1"}],
                                                              imagePullPolicy="IfNotPresent")],
                                        meta={"labels": {"tier": "web", "old": "x"}}),
                             revisionHistoryLimit=10, progressDeadlineSeconds=600),
                     {"fleetdeck": {"f:metadata": {"f:labels": {"f:old": {}, "f:tier": {}}}}})
    desired = deployment(containers=[container(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])],
                         meta={"labels": {"tier": "web"}})
    result = compare(desired, live, namespace_default="shop")
    assert result.live is not None
    shown = thaw(result.live)
    assert "revisionHistoryLimit" not in shown["spec"] and "progressDeadlineSeconds" not in shown["spec"]
    assert shown["metadata"]["labels"] == {"tier": "web", "old": "x"}
    (web,) = shown["spec"]["template"]["spec"]["containers"]
    assert "imagePullPolicy" not in web and [e["name"] for e in web["env"]] == ["B", "A"]
    assert {(c.path, c.note) for c in result.changes} == {
        ("/metadata/labels/old", "removed from Git"), ("/spec/template/spec/containers/0/env", "order differs")}


def test_diff_records_are_plain_data_with_readable_paths() -> None:
    from core.model import ResourceKey, ResourceStatus
    from core.reconcile.diff_report import resource_diff_record

    live = _owned_by(live_of(deployment(meta={"labels": {"app.kubernetes.io/name": "old"}})),
                     {"kubectl-label": {"f:metadata": {"f:labels": {"f:app.kubernetes.io/name": {}}}}})
    diff = compare(deployment(meta={"labels": {"app.kubernetes.io/name": "web"}}), live, namespace_default="shop")
    status = ResourceStatus(ResourceKey("apps", "Deployment", "shop", "web"), "apps/v1", diff.state, None, diff)
    record = resource_diff_record(status)
    assert json.loads(json.dumps(record)) == record
    assert record["key"] == "Deployment.apps/shop/web" and record["state"] == "OutOfSync"
    (change,) = record["changes"]
    assert change["display_path"] == 'metadata.labels["app.kubernetes.io/name"]'
    assert (change["live"], change["desired"], change["manager"]) == ("old", "web", "kubectl-label")
