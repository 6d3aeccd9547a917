"""The normalization pipeline shared by both drift strategies (rules N1-N16, listed below).

Role: turn a desired manifest or a live object into the form both sides are compared in, so that what
the API server adds, drops or rewrites (timestamps, defaults, quantity spelling, list order) is not
reported as drift. Constraint: pure and side-effect free; every call works on a deep copy. Zero-value
handling (N11) and list keys (N13) belong to the local diff; ignore rules (N18/N19) to ``ignore.py``;
secret masking (N20) to ``secrets.py``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Literal

from core.reconcile.canonical import canonical_bytes
from core.reconcile.jsonpath import SCALARS, Json, as_dict, as_list, get_in
from core.reconcile.known_types import (
    GroupKind,
    apply_known_types,
    normalize_builtin_types,
    object_group_kind,
)

Side = Literal["desired", "live"]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "selfLink", "managedFields")

CLUSTER_SCOPED: frozenset[GroupKind] = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "ComponentStatus"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("networking.k8s.io", "IngressClass"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    }
)
"""Built-in cluster-scoped kinds, used when discovery did not say (``cluster_scoped=None``)."""

_BUILTIN_GROUPS = frozenset(
    {"", "apps", "batch", "autoscaling", "policy", "networking.k8s.io", "rbac.authorization.k8s.io"}
)
_CRD = ("apiextensions.k8s.io", "CustomResourceDefinition")


def normalize(
    obj: Mapping[str, Any],
    *,
    side: Side,
    namespace_default: str | None = None,
    cluster_scoped: bool | None = None,
    known_types: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Normalize one object for comparison (N1-N6, N8-N10, N12, N14-N16, and N7 for known types).

    Args:
        obj: a desired manifest, a live object or a dry-run result; it is not modified.
        side: ``desired`` also applies the Git-only rules (namespace defaulting N4, CRD fixes N16).
        namespace_default: the app's destination namespace, for namespaced kinds without one.
        cluster_scoped: the kind's scope from discovery; None falls back to the built-in table.
        known_types: app-declared embedded types, ``{dotted path: "core/v1/PodSpec" | "core/Quantity" …}``.

    Returns:
        A new, plain dict.
    """
    out = _copy_object(obj)
    group_kind = object_group_kind(out)
    _strip_server_metadata(out)
    _strip_empty_metadata(out)
    if side == "desired":
        _resolve_namespace(
            out, group_kind, namespace_default=namespace_default, cluster_scoped=cluster_scoped
        )
        if group_kind == _CRD:
            _normalize_desired_crd(out)
    _normalize_kind(out, group_kind)
    if known_types:
        apply_known_types(out, known_types)
    return out


def _normalize_kind(out: dict[str, Any], group_kind: GroupKind) -> None:
    """The per-kind rules: secrets, embedded types, endpoints, roles, claim templates, HPA metrics."""
    if group_kind == ("", "Secret"):
        normalize_secret(out)
    normalize_builtin_types(out, group_kind)
    if group_kind == ("", "Endpoints"):
        _sort_endpoints(out)
    if group_kind[0] == "rbac.authorization.k8s.io" and group_kind[1] in ("Role", "ClusterRole"):
        _normalize_role(out)
    if group_kind == ("apps", "StatefulSet"):
        _normalize_claim_templates(out)
    if group_kind == ("autoscaling", "HorizontalPodAutoscaler"):
        _normalize_hpa_metrics(out)


def _strip_server_metadata(out: dict[str, Any]) -> None:
    """N1: server-owned metadata (if still there), and ``creationTimestamp`` in embedded templates."""
    meta = as_dict(out.get("metadata"))
    for field in SERVER_METADATA:
        meta.pop(field, None)
    for path in (("spec", "template"), ("spec", "jobTemplate"), ("spec", "jobTemplate", "spec", "template")):
        as_dict(get_in(out, *path, "metadata")).pop("creationTimestamp", None)
    for template in as_list(get_in(out, "spec", "volumeClaimTemplates")):
        as_dict(as_dict(template).get("metadata")).pop("creationTimestamp", None)


def _strip_empty_metadata(out: dict[str, Any]) -> None:
    """N2: drop the last-applied annotation, then empty or null ``annotations`` and ``labels``."""
    meta = as_dict(out.get("metadata"))
    as_dict(meta.get("annotations")).pop(LAST_APPLIED, None)
    for field in ("annotations", "labels"):
        if field in meta and not meta[field]:
            del meta[field]


def _resolve_namespace(
    out: dict[str, Any], group_kind: GroupKind, *, namespace_default: str | None, cluster_scoped: bool | None
) -> None:
    """N4: strip the namespace of cluster-scoped kinds; default it for namespaced ones."""
    meta = out.setdefault("metadata", {})
    if not isinstance(meta, dict):
        return
    scoped = cluster_scoped if cluster_scoped is not None else _builtin_scope(group_kind)
    if scoped is True:
        meta.pop("namespace", None)
    elif scoped is False and not meta.get("namespace") and namespace_default:
        meta["namespace"] = namespace_default


def _builtin_scope(group_kind: GroupKind) -> bool | None:
    """True/False for built-in kinds, None for kinds (custom resources) the table cannot decide."""
    if group_kind in CLUSTER_SCOPED:
        return True
    return False if group_kind[0] in _BUILTIN_GROUPS else None


def normalize_secret(out: dict[str, Any]) -> None:
    """N5: merge ``stringData`` into ``data`` (base64) and turn null data values into ``""``."""
    data = out.get("data")
    data = {key: "" if value is None else value for key, value in as_dict(data).items()}
    for key, value in as_dict(out.pop("stringData", None)).items():
        data[key] = base64.b64encode(str(value if value is not None else "").encode()).decode()
    if data or "data" in out:
        out["data"] = data


def _sort_endpoints(out: dict[str, Any]) -> None:
    """N10: Endpoints subsets, addresses and ports in a stable order."""
    subsets = as_list(out.get("subsets"))
    for subset in subsets:
        for field in ("addresses", "notReadyAddresses", "ports"):
            if isinstance(as_dict(subset).get(field), list):
                subset[field].sort(key=canonical_bytes)
    subsets.sort(key=canonical_bytes)


def _normalize_role(out: dict[str, Any]) -> None:
    """N12: ``rules: []`` equals no rules; aggregated ClusterRoles' rules belong to the aggregator."""
    if not out.get("rules") or out.get("aggregationRule"):
        out.pop("rules", None)


def _normalize_claim_templates(out: dict[str, Any]) -> None:
    """N14: what the API server adds to ``volumeClaimTemplates`` items (and the default volume mode)."""
    for template in as_list(get_in(out, "spec", "volumeClaimTemplates")):
        if not isinstance(template, dict):
            continue
        for field in ("apiVersion", "kind", "status"):
            template.pop(field, None)
        spec = as_dict(template.get("spec"))
        if spec.get("volumeMode") == "Filesystem":
            del spec["volumeMode"]


def _metric_key(metric: Any) -> tuple[str, str]:
    """Sort key of one HPA metric: its type and the metric or resource name."""
    kind = str(as_dict(metric).get("type") or "")
    source = as_dict(as_dict(metric).get(kind[:1].lower() + kind[1:]))
    name = source.get("name") or as_dict(source.get("metric")).get("name") or ""
    return kind, str(name)


def _normalize_hpa_metrics(out: dict[str, Any]) -> None:
    """N15: HPA metrics unordered; duplicates and entries without ``type`` dropped."""
    spec = as_dict(out.get("spec"))
    if not isinstance(spec.get("metrics"), list):
        return
    unique: dict[bytes, Any] = {}
    for metric in spec["metrics"]:
        if as_dict(metric).get("type"):
            unique.setdefault(canonical_bytes(metric), metric)
    spec["metrics"] = sorted(unique.values(), key=lambda m: (_metric_key(m), canonical_bytes(m)))


def _normalize_desired_crd(out: dict[str, Any]) -> None:
    """N16: drop ``preserveUnknownFields: false`` and a placeholder conversion ``caBundle``."""
    spec = as_dict(out.get("spec"))
    if spec.get("preserveUnknownFields") is False:
        del spec["preserveUnknownFields"]
    client_config = as_dict(get_in(spec, "conversion", "webhook", "clientConfig"))
    if "caBundle" in client_config and not valid_ca_bundle(client_config["caBundle"]):
        del client_config["caBundle"]


def valid_ca_bundle(value: Any) -> bool:
    """Whether ``value`` is base64 of at least one PEM certificate (not a placeholder like ``Cg==``)."""
    if not isinstance(value, str) or not value:
        return False
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return b"-----BEGIN CERTIFICATE-----" in decoded and b"-----END CERTIFICATE-----" in decoded


def _copy_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A normalized copy of the object without what N1/N3 drop anyway (status, server metadata)."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "metadata" and isinstance(value, Mapping):
            out[key] = {name: _copy(item) for name, item in value.items() if name not in SERVER_METADATA}
        elif key != "status":
            out[str(key)] = _copy(value)
    return out


def _copy(value: Json) -> Json:
    """A deep plain copy in which integral floats become ints (N8: ``1`` and ``1.0`` compare equal)."""
    kind = type(value)
    if kind is dict:
        return {str(key): _copy(item) for key, item in value.items()}
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is list:
        return [_copy(item) for item in value]
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, SCALARS):
        return value
    if isinstance(value, dict | Mapping):
        return {str(key): _copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(item) for item in value]
    return value
