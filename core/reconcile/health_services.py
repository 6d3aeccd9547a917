"""Health rules for non-workload kinds: Service, Ingress, PVC, HPA, APIService, CRD.

Role: ports of gitops-engine's built-in checks for these kinds and of Argo CD's CRD Lua rule. The HPA rule
judges a failing condition Degraded wherever it sits in the list (Argo CD's failed-metric rule); custom
resources are judged in ``health_conventions``. Constraint: pure; each function reads one raw live object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from core.model import Health, HealthStatus
from core.reconcile.jsonpath import as_dict, as_list, get_in

Obj = Mapping[str, Any]

_HPA_DEGRADED = frozenset(
    {
        ("AbleToScale", "FailedGetScale"),
        ("AbleToScale", "FailedUpdateScale"),
        ("ScalingActive", "FailedGetResourceMetric"),
        ("ScalingActive", "FailedGetObjectMetric"),
        ("ScalingActive", "FailedGetPodsMetric"),
        ("ScalingActive", "FailedGetExternalMetric"),
        ("ScalingActive", "FailedComputeMetricsReplicas"),
        ("ScalingActive", "InvalidSelector"),
    }
)
_HPA_WAITING = Health(HealthStatus.PROGRESSING, "Waiting to Autoscale")
HPA_V1_CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"


def _conditions(obj: Obj) -> list[Mapping[str, Any]]:
    """``status.conditions`` as a list of dicts."""
    return [c for c in as_list(get_in(obj, "status", "conditions")) if isinstance(c, Mapping)]


def _true(conditions: list[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    """The condition of ``kind`` with status True, if any."""
    return next((c for c in conditions if c.get("type") == kind and c.get("status") == "True"), None)


def _has_ingress(obj: Obj) -> bool:
    """Whether ``status.loadBalancer.ingress`` is non-empty."""
    return bool(as_list(get_in(obj, "status", "loadBalancer", "ingress")))


def service_health(obj: Obj) -> Health:
    """Service: a LoadBalancer is Healthy once it has an ingress point; other types always are."""
    if get_in(obj, "spec", "type") == "LoadBalancer" and not _has_ingress(obj):
        return Health(HealthStatus.PROGRESSING)
    return Health(HealthStatus.HEALTHY)


def ingress_health(obj: Obj) -> Health:
    """Ingress: Healthy once the controller published a load-balancer address."""
    return Health(HealthStatus.HEALTHY if _has_ingress(obj) else HealthStatus.PROGRESSING)


def pvc_health(obj: Obj) -> Health:
    """PersistentVolumeClaim: by phase (Lost, Pending, Bound)."""
    phase = get_in(obj, "status", "phase")
    status = {
        "Lost": HealthStatus.DEGRADED,
        "Pending": HealthStatus.PROGRESSING,
        "Bound": HealthStatus.HEALTHY,
    }
    return Health(status.get(str(phase), HealthStatus.UNKNOWN))


def _hpa_failed(condition: Mapping[str, Any]) -> bool:
    """A failing HPA condition: a known failure reason, or AbleToScale/ScalingActive False for a ``Failed*`` or
    ``Invalid*`` reason (AbleToScale False for ``Backoff*`` is the normal stabilisation window, not a failure)."""
    kind, reason, status = condition.get("type"), str(condition.get("reason") or ""), condition.get("status")
    if (kind, reason) in _HPA_DEGRADED:
        return True
    failing = reason.startswith(("Failed", "Invalid"))
    return kind in ("AbleToScale", "ScalingActive") and status == "False" and failing


def _hpa_verdict(conditions: list[Mapping[str, Any]]) -> Health:
    """Any failing condition → Degraded (whatever its position); then AbleToScale/ScalingLimited True → Healthy."""
    if (failed := next((c for c in conditions if _hpa_failed(c)), None)) is not None:
        return Health(HealthStatus.DEGRADED, str(failed.get("message") or ""))
    for condition in conditions:
        if condition.get("type") in ("AbleToScale", "ScalingLimited") and condition.get("status") == "True":
            return Health(HealthStatus.HEALTHY, str(condition.get("message") or ""))
    return _HPA_WAITING


def hpa_health(obj: Obj) -> Health:
    """HorizontalPodAutoscaler: v2 status conditions, or v1's conditions annotation."""
    if obj.get("apiVersion") != "autoscaling/v1":
        return _hpa_verdict(_conditions(obj))
    raw = as_dict(get_in(obj, "metadata", "annotations")).get(HPA_V1_CONDITIONS)
    if raw is None:
        return _HPA_WAITING
    try:
        parsed = json.loads(str(raw))
    except ValueError as error:
        return Health(HealthStatus.UNKNOWN, f"failed to convert conditions annotation to typed: {error}")
    conditions = [c for c in as_list(parsed) if isinstance(c, Mapping)]
    return _hpa_verdict(conditions) if conditions else _HPA_WAITING


def apiservice_health(obj: Obj) -> Health:
    """APIService: the Available condition, with its reason and message."""
    for condition in _conditions(obj):
        if condition.get("type") == "Available":
            text = f"{condition.get('reason', '')}: {condition.get('message', '')}"
            healthy = condition.get("status") == "True"
            return Health(HealthStatus.HEALTHY if healthy else HealthStatus.PROGRESSING, text)
    return Health(HealthStatus.PROGRESSING, "Waiting to be processed")


def crd_health(obj: Obj) -> Health:
    """CustomResourceDefinition (Argo Lua rule): terminating, names accepted, established, structural."""
    conditions = _conditions(obj)
    if not conditions:
        return Health(HealthStatus.PROGRESSING, "Status conditions not found")
    if (terminating := _true(conditions, "Terminating")) is not None:
        return Health(HealthStatus.PROGRESSING, f"CRD is terminating: {terminating.get('message', '')}")
    names = next(
        (c for c in conditions if c.get("type") == "NamesAccepted" and c.get("status") == "False"), None
    )
    if names is not None:
        return Health(HealthStatus.DEGRADED, f"CRD names have not been accepted: {names.get('message', '')}")
    if _true(conditions, "Established") is None:
        established = next((c for c in conditions if c.get("type") == "Established"), {})
        if established.get("reason") == "Installing":
            return Health(
                HealthStatus.PROGRESSING, f"CRD is being installed: {established.get('message', '')}"
            )
        return Health(HealthStatus.DEGRADED, "CRD is not established")
    if (violation := _true(conditions, "NonStructuralSchema")) is not None:
        return Health(HealthStatus.DEGRADED, f"Schema violations found: {violation.get('message', '')}")
    return Health(HealthStatus.HEALTHY, "CRD is healthy")
