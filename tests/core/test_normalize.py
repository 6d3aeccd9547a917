"""Normalization rules N1-N16, quantities (N6) and ignore rules (N18/N19)."""

from __future__ import annotations

import base64
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.model import ResourceKey
from core.reconcile.ignore import (
    DEFAULT_IGNORE_RULES,
    IgnoreRule,
    apply_ignore_rules,
    parse_jq_path,
    rules_from_mapping,
)
from core.reconcile.managed_fields import ManagedFields
from core.reconcile.normalize import normalize
from core.reconcile.quantity import QuantityFormat, canonical_quantity, parse_quantity

CERT = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        pytest.param("1000m", "1", id="millis-to-unit"),
        pytest.param("1", "1", id="unit"),
        pytest.param(1, "1", id="int"),
        pytest.param(0.5, "500m", id="float-half"),
        pytest.param("0.5", "500m", id="string-half"),
        pytest.param("1.5", "1500m", id="fraction"),
        pytest.param(0.1, "100m", id="float-str-first"),
        pytest.param("1Gi", "1Gi", id="binary"),
        pytest.param("1024Mi", "1Gi", id="binary-up"),
        pytest.param("1536Mi", "1536Mi", id="binary-not-divisible"),
        pytest.param("1.5Gi", "1536Mi", id="binary-fraction"),
        pytest.param("0.1Ki", "102400m", id="binary-small-goes-decimal"),
        pytest.param("1000M", "1G", id="decimal-up"),
        pytest.param("2000", "2k", id="plain-thousands"),
        pytest.param("1500", "1500", id="plain-not-multiple"),
        pytest.param("1e3", "1e3", id="exponent"),
        pytest.param("0", "0", id="zero"),
        pytest.param("0.0000000001", "1n", id="rounds-up-to-nano"),
        pytest.param("-2", "-2", id="negative"),
        pytest.param("+5", "5", id="plus-sign"),
        pytest.param(".5", "500m", id="leading-dot"),
        pytest.param("abc", "abc", id="not-a-quantity-unchanged"),
        pytest.param("1Gb", "1Gb", id="bad-suffix-unchanged"),
        pytest.param(True, True, id="bool-unchanged"),
    ],
)
def test_canonical_quantity(raw: Any, canonical: Any) -> None:
    """Quantities print in apimachinery's canonical form, keeping the suffix family."""
    assert canonical_quantity(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "value", "fmt"),
    [
        pytest.param("500m", Decimal("0.5"), QuantityFormat.DECIMAL_SI, id="milli"),
        pytest.param("1Ki", Decimal(1024), QuantityFormat.BINARY_SI, id="kibi"),
        pytest.param("2e2", Decimal(200), QuantityFormat.DECIMAL_EXPONENT, id="exponent"),
        pytest.param(0.1, Decimal("0.1"), QuantityFormat.DECIMAL_SI, id="float-exact"),
    ],
)
def test_parse_quantity_exact(raw: Any, value: Decimal, fmt: QuantityFormat) -> None:
    """Parsing yields the exact Decimal value and the suffix family."""
    assert parse_quantity(raw) == (value, fmt)


@pytest.mark.parametrize(
    "raw", [pytest.param(v, id=repr(v)) for v in ("", "m", "1..2", "1 Gi", None, [1], False)]
)
def test_parse_quantity_rejects(raw: Any) -> None:
    """Anything outside the quantity grammar raises ValueError."""
    with pytest.raises(ValueError):
        parse_quantity(raw)


def deployment(**spec: Any) -> dict[str, Any]:
    """A minimal Deployment manifest."""
    container = {"name": "web", "image": "web:1", **spec.pop("container", {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {"metadata": {}, "spec": {"containers": [container]}}, **spec},
    }


def test_server_metadata_and_status_are_stripped() -> None:
    """N1/N3: uid, resourceVersion, generation, timestamps, managedFields and status go, on both sides."""
    obj = deployment()
    obj["metadata"].update(
        uid="u", resourceVersion="1", generation=3, creationTimestamp="2026-01-01T00:00:00Z",
        selfLink="/x", managedFields=[{"manager": "m"}],
    )  # fmt: skip
    obj["spec"]["template"]["metadata"]["creationTimestamp"] = None
    obj["status"] = {"replicas": 1}
    for side in ("desired", "live"):
        out = normalize(obj, side=side)
        assert out["metadata"] == {"name": "web", "namespace": "shop"}
        assert "status" not in out and out["spec"]["template"]["metadata"] == {}


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        pytest.param({}, None, id="empty-dropped"),
        pytest.param(None, None, id="null-dropped"),
        pytest.param(
            {"kubectl.kubernetes.io/last-applied-configuration": "{}"}, None, id="only-last-applied"
        ),
        pytest.param(
            {"a": "1", "kubectl.kubernetes.io/last-applied-configuration": "{}"}, {"a": "1"}, id="kept"
        ),
    ],
)
def test_annotations_normalized(annotations: Any, expected: Any) -> None:
    """N2: last-applied is removed and empty or null annotations disappear."""
    obj = deployment()
    obj["metadata"]["annotations"] = annotations
    assert normalize(obj, side="live")["metadata"].get("annotations") == expected


@pytest.mark.parametrize(
    ("obj", "kwargs", "namespace"),
    [
        pytest.param(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
            {"namespace_default": "shop"},
            "shop",
            id="namespaced-defaulted",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "other"}},
            {"namespace_default": "shop"},
            "other",
            id="explicit-kept",
        ),
        pytest.param(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "r", "namespace": "x"},
            },
            {"namespace_default": "shop"},
            None,
            id="cluster-scoped-stripped",
        ),
        pytest.param(
            {
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "metadata": {"name": "w", "namespace": "prod"},
            },
            {"namespace_default": "shop", "cluster_scoped": True},
            None,
            id="discovery-cluster-scoped-cr",
        ),
        pytest.param(
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
            {"namespace_default": "shop"},
            None,
            id="unknown-scope-untouched",
        ),
        pytest.param(
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
            {"namespace_default": "shop", "cluster_scoped": False},
            "shop",
            id="discovery-namespaced-cr",
        ),
    ],
)
def test_namespace_resolution(obj: dict[str, Any], kwargs: dict[str, Any], namespace: str | None) -> None:
    """N4: desired namespaces are defaulted for namespaced kinds and removed for cluster-scoped ones."""
    assert normalize(obj, side="desired", **kwargs)["metadata"].get("namespace") == namespace


def test_namespace_rule_is_desired_only() -> None:
    """N4 never rewrites a live object."""
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "namespace": "odd"}}
    assert normalize(obj, side="live", namespace_default="shop")["metadata"]["namespace"] == "odd"


def test_secret_string_data_merged() -> None:
    """N5: stringData becomes base64 data (over data) and null data values become empty strings."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"a": base64.b64encode(b"old").decode(), "n": None},
        "stringData": {"a": "new", "b": "x"},
    }
    out = normalize(secret, side="desired")
    assert out["data"] == {"a": base64.b64encode(b"new").decode(), "n": "", "b": "eA=="}
    assert "stringData" not in out


def test_container_quantities_and_ports() -> None:
    """N6/N9: quantities in every container list are canonical and container ports default to TCP."""
    obj = deployment(
        container={
            "resources": {"limits": {"cpu": "1000m", "memory": "1024Mi"}},
            "ports": [{"containerPort": 80}],
        }
    )
    obj["spec"]["template"]["spec"]["initContainers"] = [
        {"name": "i", "resources": {"requests": {"cpu": 0.25}}}
    ]
    spec = normalize(obj, side="desired")["spec"]["template"]["spec"]
    assert spec["containers"][0]["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert spec["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert spec["initContainers"][0]["resources"]["requests"] == {"cpu": "250m"}


@pytest.mark.parametrize(
    ("obj", "path", "expected"),
    [
        pytest.param(
            {"apiVersion": "v1", "kind": "ResourceQuota", "spec": {"hard": {"requests.cpu": "2000m", "pods": 10}}},
            ("spec", "hard"),
            {"requests.cpu": "2", "pods": "10"},
            id="resource-quota",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "LimitRange", "spec": {"limits": [{"type": "Container", "max": {"memory": "2048Mi"}}]}},
            ("spec", "limits", 0, "max"),
            {"memory": "2Gi"},
            id="limit-range",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "spec": {"resources": {"requests": {"storage": "10240Mi"}}}},
            ("spec", "resources", "requests"),
            {"storage": "10Gi"},
            id="pvc",
        ),
        pytest.param(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "spec": {"metrics": [{"type": "Pods", "pods": {"metric": {"name": "q"}, "target": {"averageValue": "1000m"}}}]},
            },
            ("spec", "metrics", 0, "pods", "target"),
            {"averageValue": "1"},
            id="hpa-target",
        ),
        pytest.param(
            {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
             "spec": {"template": {"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "100m"}}}]}}}},
            ("spec", "template", "spec", "containers", 0, "resources", "limits"),
            {"cpu": "100m"},
            id="rollout-known-type",
        ),
        pytest.param(
            {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
             "spec": {"template": {"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": 0.1}}}]}}}},
            ("spec", "template", "spec", "containers", 0, "resources", "limits"),
            {"cpu": "100m"},
            id="rollout-float-cpu",
        ),
    ],
)  # fmt: skip
def test_quantity_fields_canonical(obj: dict[str, Any], path: tuple[Any, ...], expected: Any) -> None:
    """N6/N7: every known quantity field, including embedded pod specs in CRs, is canonical."""
    node: Any = normalize(obj, side="live")
    for step in path:
        node = node[step]
    assert node == expected


def test_app_declared_known_types() -> None:
    """N7: paths the app declares as core/Quantity or core/v1/PodSpec are normalized in a CR."""
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Worker",
        "spec": {
            "budget": "1000m",
            "pods": [{"containers": [{"name": "a", "ports": [{"containerPort": 1}]}]}],
        },
    }
    out = normalize(
        obj, side="live", known_types={"spec.budget": "core/Quantity", "spec.pods.*": "core/v1/PodSpec"}
    )
    assert out["spec"]["budget"] == "1"
    assert out["spec"]["pods"][0]["containers"][0]["ports"][0]["protocol"] == "TCP"


def test_unknown_known_type_rejected() -> None:
    """An unknown type name in known_type_fields is a configuration error, not silently ignored."""
    with pytest.raises(ValueError, match="unknown known type"):
        normalize({"kind": "X"}, side="live", known_types={"spec": "core/v1/Nope"})


def test_numbers_compare_numerically_but_strings_stay() -> None:
    """N8: integral floats become ints; numeric strings are never coerced."""
    obj = {"apiVersion": "v1", "kind": "X", "spec": {"a": 3.0, "b": 1.5, "c": "3", "d": [2.0], "e": True}}
    assert normalize(obj, side="live")["spec"] == {"a": 3, "b": 1.5, "c": "3", "d": [2], "e": True}


def test_service_and_endpoints_protocols_and_order() -> None:
    """N9/N10: Service and Endpoints ports default to TCP; Endpoints subsets sort stably."""
    svc = {"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80}]}}
    assert normalize(svc, side="desired")["spec"]["ports"] == [{"port": 80, "protocol": "TCP"}]
    ep = {"apiVersion": "v1", "kind": "Endpoints",
          "subsets": [{"addresses": [{"ip": "10.0.0.2"}, {"ip": "10.0.0.1"}], "ports": [{"port": 80}]}, {"addresses": [{"ip": "10.0.0.0"}]}]}  # fmt: skip
    flipped = {**ep, "subsets": list(reversed(ep["subsets"]))}
    assert normalize(ep, side="live") == normalize(flipped, side="live")
    assert normalize(ep, side="live")["subsets"][1]["addresses"][0] == {"ip": "10.0.0.1"}


@pytest.mark.parametrize(
    ("role", "has_rules"),
    [
        pytest.param({"kind": "Role", "rules": []}, False, id="empty-rules"),
        pytest.param({"kind": "Role", "rules": None}, False, id="null-rules"),
        pytest.param({"kind": "ClusterRole", "aggregationRule": {"clusterRoleSelectors": [{}]}, "rules": [{"verbs": ["get"]}]}, False, id="aggregated"),
        pytest.param({"kind": "ClusterRole", "rules": [{"verbs": ["get"]}]}, True, id="plain-kept"),
    ],
)  # fmt: skip
def test_role_rules(role: dict[str, Any], has_rules: bool) -> None:
    """N12: empty rules equal no rules, and aggregated ClusterRoles' rules are ignored."""
    obj = {"apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "r"}, **role}
    assert ("rules" in normalize(obj, side="live")) is has_rules


def test_statefulset_claim_templates() -> None:
    """N14: server-added apiVersion/kind/status/volumeMode Filesystem vanish from claim templates."""
    obj = {"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {"volumeClaimTemplates": [{
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "d", "creationTimestamp": None},
        "spec": {"volumeMode": "Filesystem", "resources": {"requests": {"storage": "1024Mi"}}}, "status": {"phase": "Pending"}}]}}  # fmt: skip
    template = normalize(obj, side="live")["spec"]["volumeClaimTemplates"][0]
    assert template == {"metadata": {"name": "d"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}


def test_hpa_metrics_unordered_deduped() -> None:
    """N15: HPA metrics sort by (type, name), duplicates and untyped entries are dropped."""
    cpu = {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
    }
    mem = {
        "type": "Resource",
        "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 70}},
    }
    obj = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "spec": {"metrics": [mem, cpu, cpu, {"type": ""}]},
    }
    assert normalize(obj, side="live")["spec"]["metrics"] == [cpu, mem]


@pytest.mark.parametrize(
    ("ca_bundle", "kept"),
    [
        pytest.param("Cg==", False, id="placeholder-removed"),
        pytest.param("not base64!", False, id="garbage-removed"),
        pytest.param(CERT, True, id="valid-kept"),
    ],
)
def test_crd_desired_fixes(ca_bundle: str, kept: bool) -> None:
    """N16: preserveUnknownFields false and invalid conversion caBundles are dropped from desired."""
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "w.example.com"},
           "spec": {"preserveUnknownFields": False, "conversion": {"strategy": "Webhook", "webhook": {"clientConfig": {"caBundle": ca_bundle}}}}}  # fmt: skip
    spec = normalize(crd, side="desired")["spec"]
    assert "preserveUnknownFields" not in spec
    assert ("caBundle" in spec["conversion"]["webhook"]["clientConfig"]) is kept


def test_input_never_mutated_and_read_only_input_accepted() -> None:
    """normalize works on a deep copy and accepts read-only mappings."""
    obj = deployment(container={"resources": {"limits": {"cpu": "1000m"}}})
    obj["metadata"]["uid"] = "u"
    frozen = MappingProxyType({**obj, "metadata": MappingProxyType(dict(obj["metadata"]))})
    out = normalize(frozen, side="live")
    assert (
        obj["metadata"]["uid"] == "u"
        and obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "1000m"
    )
    assert "uid" not in out["metadata"]


# ---------------------------------------------------------------------------------------------- ignore rules


def webhook(ca: str) -> dict[str, Any]:
    """A ValidatingWebhookConfiguration with one webhook."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "v"},
        "webhooks": [{"name": "a.example.com", "clientConfig": {"caBundle": ca, "service": {"name": "s"}}}],
    }


@pytest.mark.parametrize(
    ("expression", "tokens"),
    [
        pytest.param(
            ".webhooks[]?.clientConfig.caBundle", ("webhooks", "*", "clientConfig", "caBundle"), id="iterate"
        ),
        pytest.param('.metadata.annotations."a/b"', ("metadata", "annotations", "a/b"), id="quoted"),
        pytest.param('.spec["x.y"][0]', ("spec", "x.y", "0"), id="bracketed-index"),
    ],
)
def test_jq_subset(expression: str, tokens: tuple[str, ...]) -> None:
    """The supported jq subset maps onto path tokens."""
    assert parse_jq_path(expression) == tokens


@pytest.mark.parametrize("expression", [".a | .b", "del(.a)", ".a[1:2]", ""])
def test_jq_outside_subset_refused(expression: str) -> None:
    """Expressions outside the subset are refused when the rule is built."""
    with pytest.raises(ValueError):
        IgnoreRule(jq_paths=(expression,))


def test_bad_pointer_refused() -> None:
    """A JSON pointer not starting with / is refused when the rule is built."""
    with pytest.raises(ValueError):
        IgnoreRule(json_pointers=("spec/replicas",))


@pytest.mark.parametrize(
    ("rule", "key", "matches"),
    [
        pytest.param(IgnoreRule(group="apps", kind="Deployment"), ResourceKey("apps", "Deployment", "ns", "web"), True, id="exact"),
        pytest.param(IgnoreRule(kind="*WebhookConfiguration"), ResourceKey("x", "MutatingWebhookConfiguration", "", "m"), True, id="glob"),
        pytest.param(IgnoreRule(name="web-*"), ResourceKey("", "Service", "ns", "api"), False, id="name-glob-miss"),
        pytest.param(IgnoreRule(namespace="prod"), ResourceKey("", "Service", "dev", "a"), False, id="namespace-miss"),
    ],
)  # fmt: skip
def test_rule_matching(rule: IgnoreRule, key: ResourceKey, matches: bool) -> None:
    """Rules select resources by group/kind/name/namespace globs."""
    assert rule.matches(key) is matches


def test_json_pointer_removed_from_both_sides() -> None:
    """A JSON pointer rule removes the field from desired and live; inputs stay untouched."""
    desired, live = deployment(replicas=3), deployment(replicas=5)
    rule = IgnoreRule(
        group="apps", kind="Deployment", json_pointers=("/spec/replicas", "/spec/missing~1field")
    )
    new_desired, new_live = apply_ignore_rules(desired, live, rules=[rule])
    assert new_desired is not None and new_live is not None
    assert "replicas" not in new_desired["spec"] and "replicas" not in new_live["spec"]
    assert desired["spec"]["replicas"] == 3 and live["spec"]["replicas"] == 5


def test_default_rules_ignore_injected_ca_bundles() -> None:
    """N19: webhook and APIService caBundles are ignored by default; defaults can be turned off."""
    desired, live = webhook("Cg=="), webhook(CERT)
    new_desired, new_live = apply_ignore_rules(desired, live)
    assert new_desired is not None and new_live is not None
    assert "caBundle" not in new_live["webhooks"][0]["clientConfig"]
    assert new_live["webhooks"][0]["clientConfig"]["service"] == {"name": "s"}
    assert apply_ignore_rules(desired, live, defaults=False) == (desired, live)
    assert len(DEFAULT_IGNORE_RULES) == 2


@pytest.mark.parametrize(
    ("desired_ca", "ignored"),
    [pytest.param(None, True, id="desired-none"), pytest.param(CERT, False, id="desired-valid")],
)
def test_crd_ca_bundle_ignored_only_without_valid_desired(desired_ca: str | None, ignored: bool) -> None:
    """N19: a CRD conversion caBundle is ignored only when desired does not set a valid one."""

    def crd(ca: str | None) -> dict[str, Any]:
        config = {"caBundle": ca} if ca else {}
        return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "w"},
                "spec": {"conversion": {"webhook": {"clientConfig": config}}}}  # fmt: skip

    _, live = apply_ignore_rules(crd(desired_ca), crd(CERT))
    assert live is not None
    assert ("caBundle" not in live["spec"]["conversion"]["webhook"]["clientConfig"]) is ignored


def test_managed_fields_managers_drop_only_differing_owned_fields() -> None:
    """A trusted manager's differing fields go from both sides; its equal fields and others' stay."""
    desired = deployment(replicas=3, paused=False)
    live = deployment(replicas=7, paused=False)
    live["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "proxy:1"})
    live["metadata"]["managedFields"] = [{
        "manager": "hpa-controller", "operation": "Update",
        "fieldsV1": {"f:spec": {"f:replicas": {}, "f:paused": {}, "f:template": {"f:spec": {"f:containers": {
            'k:{"name":"sidecar"}': {".": {}, "f:image": {}, "f:name": {}}}}}}},
    }]  # fmt: skip
    rule = IgnoreRule(managed_fields_managers=("hpa-controller",))
    new_desired, new_live = apply_ignore_rules(
        desired, live, rules=[rule], managed_fields=ManagedFields.of(live)
    )
    assert new_desired is not None and new_live is not None
    assert "replicas" not in new_desired["spec"] and "replicas" not in new_live["spec"]
    assert new_live["spec"]["paused"] is False and new_desired["spec"]["paused"] is False
    assert [c["name"] for c in new_live["spec"]["template"]["spec"]["containers"]] == ["web"]


def test_rules_from_argo_spelling() -> None:
    """Rules can be read from Argo's ignoreDifferences spelling."""
    (rule,) = rules_from_mapping([{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"],
                                   "managedFieldsManagers": ["kube-controller-manager"]}])  # fmt: skip
    assert rule == IgnoreRule(group="apps", kind="Deployment", json_pointers=("/spec/replicas",),
                              managed_fields_managers=("kube-controller-manager",))  # fmt: skip


# ---------------------------------------------------------------------------------------------- properties

_SUFFIXES = st.sampled_from(["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "n", "u", "e3", "E-2"])
_NUMBERS = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False)


@given(number=_NUMBERS, suffix=_SUFFIXES)
def test_canonical_quantity_keeps_value_and_is_idempotent(number: Decimal, suffix: str) -> None:
    """Canonicalizing never changes a quantity's value, and canonical forms are fixed points."""
    raw = f"{number}{suffix}"
    canonical = canonical_quantity(raw)
    assert parse_quantity(canonical)[0] == parse_quantity(raw)[0]
    assert canonical_quantity(canonical) == canonical


@given(
    cpu=st.sampled_from(["1000m", "1", 1, 0.5, "500m", "250m", 2.0]),
    replicas=st.integers(0, 50) | st.floats(0, 50),
)
def test_normalize_is_idempotent(cpu: Any, replicas: Any) -> None:
    """Normalizing a normalized object changes nothing."""
    obj = deployment(
        replicas=replicas, container={"resources": {"limits": {"cpu": cpu}}, "ports": [{"containerPort": 80}]}
    )
    once = normalize(obj, side="desired", namespace_default="shop")
    assert normalize(once, side="desired", namespace_default="shop") == once
