"""What the simulated API server knows about kinds' fields: strict validation, defaults, immutability.

Role: the declared fields that strict field validation checks (``.spec.replicass: field not declared
in schema``), the defaults the server adds on every write (Deployment strategy, container
``terminationMessagePath``, Service ``clusterIP``…) and the immutable fields that make an update
``422 Invalid … field is immutable``.

Constraint: pure functions over JSON values; no I/O, no asyncio. Only the other
``core.simulated`` modules import it.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from core.live.api import JSON
from core.simulated.fields import describe_path
from core.simulated.jsoncopy import json_copy

# ---------------------------------------------------------------------------------------------- validation

_META = frozenset(
    {
        "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
        "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
        "ownerReferences", "finalizers", "managedFields",
    }
)
_SPEC_STATUS = frozenset({"spec", "status"})
_TOP: dict[str, frozenset[str]] = {
    "ConfigMap": frozenset({"data", "binaryData", "immutable"}),
    "Secret": frozenset({"data", "stringData", "type", "immutable"}),
    "ServiceAccount": frozenset({"secrets", "imagePullSecrets", "automountServiceAccountToken"}),
    "Role": frozenset({"rules"}),
    "ClusterRole": frozenset({"rules", "aggregationRule"}),
    "RoleBinding": frozenset({"subjects", "roleRef"}),
    "ClusterRoleBinding": frozenset({"subjects", "roleRef"}),
    "Event": frozenset(
        {
            "involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp", "count",
            "type", "eventTime", "series", "action", "related", "reportingComponent", "reportingInstance",
        }
    ),
    "Lease": frozenset({"spec"}),
}
_POD_TEMPLATE = frozenset({"metadata", "spec"})
_SPEC: dict[str, frozenset[str]] = {
    "Deployment": frozenset(
        {"replicas", "selector", "template", "strategy", "minReadySeconds", "revisionHistoryLimit", "paused",
         "progressDeadlineSeconds"}
    ),
    "StatefulSet": frozenset(
        {"replicas", "selector", "template", "volumeClaimTemplates", "serviceName", "podManagementPolicy",
         "updateStrategy", "revisionHistoryLimit", "minReadySeconds", "persistentVolumeClaimRetentionPolicy",
         "ordinals"}
    ),
    "DaemonSet": frozenset({"selector", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit"}),
    "ReplicaSet": frozenset({"replicas", "minReadySeconds", "selector", "template"}),
    "Job": frozenset(
        {"parallelism", "completions", "activeDeadlineSeconds", "podFailurePolicy", "successPolicy",
         "backoffLimit", "backoffLimitPerIndex", "maxFailedIndexes", "selector", "manualSelector", "template",
         "ttlSecondsAfterFinished", "completionMode", "suspend", "podReplacementPolicy", "managedBy"}
    ),
    "CronJob": frozenset(
        {"schedule", "timeZone", "startingDeadlineSeconds", "concurrencyPolicy", "suspend", "jobTemplate",
         "successfulJobsHistoryLimit", "failedJobsHistoryLimit"}
    ),
    "Service": frozenset(
        {"ports", "selector", "clusterIP", "clusterIPs", "type", "externalIPs", "sessionAffinity",
         "loadBalancerIP", "loadBalancerSourceRanges", "externalName", "externalTrafficPolicy",
         "healthCheckNodePort", "publishNotReadyAddresses", "sessionAffinityConfig", "ipFamilies",
         "ipFamilyPolicy", "allocateLoadBalancerNodePorts", "loadBalancerClass", "internalTrafficPolicy",
         "trafficDistribution"}
    ),
    "PersistentVolumeClaim": frozenset(
        {"accessModes", "selector", "resources", "volumeName", "storageClassName", "volumeMode", "dataSource",
         "dataSourceRef", "volumeAttributesClassName"}
    ),
    "Ingress": frozenset({"ingressClassName", "defaultBackend", "tls", "rules"}),
    "HorizontalPodAutoscaler": frozenset({"scaleTargetRef", "minReplicas", "maxReplicas", "metrics", "behavior"}),
    "Namespace": frozenset({"finalizers"}),
    "Lease": frozenset(
        {"holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime", "leaseTransitions", "strategy",
         "preferredHolder"}
    ),
    "CustomResourceDefinition": frozenset({"group", "names", "scope", "versions", "conversion",
                                           "preserveUnknownFields"}),
}
_CONTAINER = frozenset(
    {
        "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources", "resizePolicy",
        "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe",
        "lifecycle", "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "securityContext",
        "stdin", "stdinOnce", "tty",
    }
)
_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def undeclared_fields(obj: Mapping[str, Any], *, kind: str, custom: bool) -> list[str]:
    """Fields strict validation rejects, as the server prints them (``.spec.replicass``).

    Args:
        obj: the object as sent.
        kind: its kind.
        custom: a CRD-defined kind, which this simulation does not validate.
    """
    if custom:
        return []
    found: list[str] = []
    top = _TOP.get(kind, _SPEC_STATUS) | {"apiVersion", "kind", "metadata"}
    found += [f".{name}" for name in obj if name not in top]
    found += [f".metadata.{name}" for name in (obj.get("metadata") or {}) if name not in _META]
    spec = obj.get("spec")
    if kind in _SPEC and isinstance(spec, Mapping):
        found += [f".spec.{name}" for name in spec if name not in _SPEC[kind]]
    if kind in _TEMPLATE_PATHS:
        found += _undeclared_in_template(obj, _TEMPLATE_PATHS[kind])
    return found


def _undeclared_in_template(obj: Mapping[str, Any], path: tuple[str, ...]) -> list[str]:
    template = _dig(obj, path)
    if not isinstance(template, Mapping):
        return []
    where = "." + ".".join(path)
    found = [f"{where}.{name}" for name in template if name not in _POD_TEMPLATE]
    for list_name in ("containers", "initContainers"):
        for container in _dig(template, ("spec", list_name)) or ():
            if not isinstance(container, Mapping):
                continue
            label = describe_path((f"f:{list_name}", "k:" + json.dumps({"name": container.get("name")})))
            found += [f"{where}.spec{label}.{name}" for name in container if name not in _CONTAINER]
    return found


def _dig(obj: Any, path: Iterable[str]) -> Any:
    for name in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(name)
    return obj


# ---------------------------------------------------------------------------------------------- defaults

_STATUS_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Service", "Pod",
     "PersistentVolumeClaim", "Ingress", "HorizontalPodAutoscaler", "Namespace", "CustomResourceDefinition"}
)
GENERATION_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Ingress", "HorizontalPodAutoscaler",
     "CustomResourceDefinition", "Pod"}
)
"""Kinds whose ``metadata.generation`` counts spec changes (every CRD-defined kind does too)."""


def apply_defaults(obj: JSON, *, kind: str, next_ip: Callable[[], str]) -> JSON:
    """``obj`` with the server's defaults filled in (a copy; absent fields only).

    Args:
        obj: the object about to be stored.
        kind: its kind.
        next_ip: allocates a Service cluster IP.
    """
    out = json_copy(obj)
    spec = out.setdefault("spec", {}) if kind in _DEFAULTERS else out.get("spec")
    if kind in _STATUS_KINDS:
        out.setdefault("status", {})
    defaulter = _DEFAULTERS.get(kind)
    if defaulter is not None and isinstance(spec, dict):
        defaulter(spec, out, next_ip)
    if kind == "Secret":
        _default_secret(out)
    if kind == "Namespace":
        _default_namespace(out)
    return out


def _default_deployment(spec: JSON, obj: JSON, next_ip: Callable[[], str]) -> None:
    spec.setdefault("replicas", 1)
    spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_template(spec.get("template"), restart_policy="Always")


def _default_statefulset(spec: JSON, obj: JSON, next_ip: Callable[[], str]) -> None:
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    _default_template(spec.get("template"), restart_policy="Always")


def _default_daemonset(spec: JSON, obj: JSON, next_ip: Callable[[], str]) -> None:
    spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec.get("template"), restart_policy="Always")


def _default_replicaset(spec: JSON, obj: JSON, next_ip: Callable[[], str]) -> None:
    spec.setdefault("replicas", 1)
    _default_template(spec.get("template"), restart_policy="Always")


def _default_job(spec: JSON, obj: JSON, next_ip: Callable[[], str]) -> None:
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    _default_template(spec.get("template"), restart_policy="Never")


def _default_cronjob(spec: JSON, obj: JSON, next_ip: Callable[[], str]) -> None:
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_spec = _dig(spec, ("jobTemplate", "spec"))
    if isinstance(job_spec, dict):
        _default_job(job_spec, obj, next_ip)


def _default_pod(spec: JSON, obj: JSON, next_ip: Callable[[], str]) -> None:
    _default_pod_spec(spec, restart_policy="Always")


def _default_service(spec: JSON, obj: JSON, next_ip: Callable[[], str]) -> None:
    spec.setdefault("type", "ClusterIP")
    if spec["type"] != "ExternalName":
        if not spec.get("clusterIP"):
            spec["clusterIP"] = next_ip()
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    for index, port in enumerate(spec.get("ports") or ()):
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer"):
                port.setdefault("nodePort", 30000 + (zlib.crc32(obj["metadata"]["name"].encode()) + index) % 2000)


def _default_pvc(spec: JSON, obj: JSON, next_ip: Callable[[], str]) -> None:
    spec.setdefault("volumeMode", "Filesystem")
    spec.setdefault("storageClassName", "standard")


def _default_template(template: Any, *, restart_policy: str) -> None:
    if isinstance(template, dict):
        template.setdefault("metadata", {})
        spec = template.setdefault("spec", {})
        if isinstance(spec, dict):
            _default_pod_spec(spec, restart_policy=restart_policy)


def _default_pod_spec(spec: JSON, *, restart_policy: str) -> None:
    spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for list_name in ("initContainers", "containers"):
        for container in spec.get(list_name) or ():
            if isinstance(container, dict):
                _default_container(container)


def _default_container(container: JSON) -> None:
    image = str(container.get("image", ""))
    tag = image.rpartition("/")[2]
    latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or ():
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def _default_secret(obj: JSON) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, Mapping):
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _default_namespace(obj: JSON) -> None:
    name = obj["metadata"]["name"]
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {})["phase"] = "Active"


_DEFAULTERS: dict[str, Callable[[JSON, JSON, Callable[[], str]], None]] = {
    "Deployment": _default_deployment,
    "StatefulSet": _default_statefulset,
    "DaemonSet": _default_daemonset,
    "ReplicaSet": _default_replicaset,
    "Job": _default_job,
    "CronJob": _default_cronjob,
    "Pod": _default_pod,
    "Service": _default_service,
    "PersistentVolumeClaim": _default_pvc,
}


# ---------------------------------------------------------------------------------------------- immutability

_SELECTOR_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})
_STATEFULSET_MUTABLE = frozenset(
    {"replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy", "minReadySeconds"}
)


def immutable_violations(old: Mapping[str, Any], new: Mapping[str, Any], *, kind: str) -> list[str]:
    """Why the update from ``old`` to ``new`` is invalid, as ``field: Invalid value: …: reason`` lines."""
    problems: list[str] = []
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if kind in _SELECTOR_KINDS and old_spec.get("selector") != new_spec.get("selector"):
        problems.append(_invalid("spec.selector", new_spec.get("selector"), "field is immutable"))
    if kind == "Job" and old_spec.get("template") != new_spec.get("template"):
        problems.append(_invalid("spec.template", new_spec.get("template"), "field is immutable"))
    if kind == "StatefulSet":
        changed = sorted(k for k in set(old_spec) | set(new_spec)
                         if k not in _STATEFULSET_MUTABLE and k != "selector" and old_spec.get(k) != new_spec.get(k))
        if changed:
            allowed = ", ".join(f"'{k}'" for k in sorted(_STATEFULSET_MUTABLE))
            problems.append(f"spec: Forbidden: updates to statefulset spec for fields other than {allowed} are "
                            "forbidden")
    if kind == "Service" and old_spec.get("clusterIP") not in (None, "", new_spec.get("clusterIP")):
        problems.append(_invalid("spec.clusterIP", new_spec.get("clusterIP"), "field is immutable"))
    if kind in ("ConfigMap", "Secret") and old.get("immutable") is True:
        for name in ("data", "binaryData", "immutable"):
            if old.get(name) != new.get(name):
                problems.append(f"{name}: Forbidden: field is immutable when `immutable` is set")
    if kind in ("RoleBinding", "ClusterRoleBinding") and old.get("roleRef") != new.get("roleRef"):
        problems.append(_invalid("roleRef", new.get("roleRef"), "cannot change roleRef"))
    return problems


def _invalid(path: str, value: Any, reason: str) -> str:
    return f"{path}: Invalid value: {json.dumps(value, sort_keys=True)}: {reason}"
