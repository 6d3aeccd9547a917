"""Where Kubernetes types sit inside objects: pod specs, quantity fields, port lists (rules N6, N7, N9).

Role: the tables and per-type normalizers the pipeline in ``normalize.py`` runs, including embedded
types in custom resources (Argo Rollout's pod template, and paths an app declares in
``known_type_fields``). Constraint: pure, in-place on the caller's private copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from core.reconcile.jsonpath import Json, dotted, iter_slots
from core.reconcile.quantity import canonical_quantity

GroupKind = tuple[str, str]

POD_SPEC_PATHS: Mapping[GroupKind, str] = {
    ("", "Pod"): "spec",
    ("", "PodTemplate"): "template.spec",
    ("", "ReplicationController"): "spec.template.spec",
    ("apps", "Deployment"): "spec.template.spec",
    ("apps", "StatefulSet"): "spec.template.spec",
    ("apps", "DaemonSet"): "spec.template.spec",
    ("apps", "ReplicaSet"): "spec.template.spec",
    ("batch", "Job"): "spec.template.spec",
    ("batch", "CronJob"): "spec.jobTemplate.spec.template.spec",
    ("argoproj.io", "Rollout"): "spec.template.spec",
}
"""Where each workload kind embeds a ``core/v1/PodSpec`` (Rollout is the N7 default known type)."""

QUANTITY_PATHS: Mapping[GroupKind, tuple[str, ...]] = {
    ("", "ResourceQuota"): ("spec.hard.*",),
    ("", "LimitRange"): tuple(
        f"spec.limits.*.{field}.*"
        for field in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")
    ),
    ("", "PersistentVolumeClaim"): ("spec.resources.requests.*", "spec.resources.limits.*"),
    ("", "PersistentVolume"): ("spec.capacity.*",),
    ("apps", "StatefulSet"): (
        "spec.volumeClaimTemplates.*.spec.resources.requests.*",
        "spec.volumeClaimTemplates.*.spec.resources.limits.*",
    ),
    ("autoscaling", "HorizontalPodAutoscaler"): tuple(
        f"spec.metrics.*.{source}.target.{field}"
        for source in ("resource", "containerResource", "pods", "object", "external")
        for field in ("value", "averageValue")
    ),
}
"""Quantity fields outside pod specs (N6)."""

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_POD_QUANTITIES = (
    *(f"{lst}.*.resources.{part}.*" for lst in _CONTAINER_LISTS for part in ("requests", "limits")),
    "overhead.*",
    "resources.requests.*",
    "resources.limits.*",
    "volumes.*.emptyDir.sizeLimit",
    "volumes.*.ephemeral.volumeClaimTemplate.spec.resources.requests.*",
)


def canonicalize_quantities(obj: Json, path: str) -> None:
    """Rewrite every quantity at the dotted glob ``path`` to its canonical form."""
    for container, key in iter_slots(obj, dotted(path)):
        container[key] = canonical_quantity(container[key])


def default_protocol(obj: Json, path: str) -> None:
    """Set ``protocol: TCP`` on every port dict at ``path`` that has none (N9)."""
    for container, key in iter_slots(obj, dotted(path)):
        port = container[key]
        if isinstance(port, dict) and "protocol" not in port:
            port["protocol"] = "TCP"


def normalize_pod_spec(spec: Json) -> None:
    """Canonical quantities and default container-port protocols in one pod spec."""
    if not isinstance(spec, dict):
        return
    for path in _POD_QUANTITIES:
        canonicalize_quantities(spec, path)
    for lst in _CONTAINER_LISTS:
        default_protocol(spec, f"{lst}.*.ports.*")


def _at(obj: Json, path: str, apply: Callable[[Json], None]) -> None:
    """Run ``apply`` on every value at the dotted glob ``path``."""
    for container, key in iter_slots(obj, dotted(path)):
        apply(container[key])


def _pod_template(template: Json) -> None:
    """Normalize the pod spec inside a ``PodTemplateSpec``."""
    if isinstance(template, dict):
        normalize_pod_spec(template.get("spec"))


QUANTITY_TYPE = "core/Quantity"

KNOWN_TYPES: Mapping[str, Callable[[Json], None]] = {
    "core/v1/PodSpec": normalize_pod_spec,
    "core/v1/PodTemplateSpec": _pod_template,
}
"""Structured type names accepted in ``known_type_fields`` (Argo's ``knownTypes`` vocabulary), besides
``core/Quantity``, which rewrites the value at the path itself."""


def apply_known_types(obj: Json, fields: Mapping[str, str]) -> None:
    """Normalize app-declared embedded types: ``{dotted path: type name}`` (N7).

    Raises:
        ValueError: for a type name not in ``KNOWN_TYPES``.
    """
    for path, type_name in fields.items():
        if type_name == QUANTITY_TYPE:
            canonicalize_quantities(obj, path)
        elif type_name in KNOWN_TYPES:
            _at(obj, path, KNOWN_TYPES[type_name])
        else:
            names = sorted([*KNOWN_TYPES, QUANTITY_TYPE])
            raise ValueError(f"unknown known type {type_name!r} for {path!r}; use one of {names}")


def normalize_builtin_types(obj: Json, group_kind: GroupKind) -> None:
    """Pod specs, quantities and port protocols for a built-in (or default known) kind."""
    pod_path = POD_SPEC_PATHS.get(group_kind)
    if pod_path:
        _at(obj, pod_path, normalize_pod_spec)
    for path in QUANTITY_PATHS.get(group_kind, ()):
        canonicalize_quantities(obj, path)
    if group_kind in (("", "Service"), ("", "Endpoints")):
        default_protocol(obj, "spec.ports.*" if group_kind[1] == "Service" else "subsets.*.ports.*")


def object_group_kind(obj: Mapping[str, Any]) -> GroupKind:
    """``(group, kind)`` of a raw object from its ``apiVersion`` and ``kind``."""
    api_version = str(obj.get("apiVersion") or "")
    return (api_version.rpartition("/")[0], str(obj.get("kind") or ""))
