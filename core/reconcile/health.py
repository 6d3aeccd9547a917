"""Resource and app health: dispatch by (group, kind), then aggregate per app.

Role: the order gitops-engine's ``GetResourceHealth`` uses (pending deletion first, then the built-in
rule for the kind, which must support the object's API version), a kstatus-style fallback for custom
resources, and Argo CD's ``setApplicationHealth`` aggregation. Constraint: pure; reads live objects only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from core.model import Health, HealthStatus, ResourceKey, ResourceStatus
from core.reconcile.health_services import (
    apiservice_health,
    crd_health,
    hpa_health,
    ingress_health,
    kstatus_health,
    pvc_health,
    service_health,
)
from core.reconcile.health_workloads import (
    cronjob_health,
    daemonset_health,
    deployment_health,
    job_health,
    pod_health,
    replicaset_health,
    statefulset_health,
)
from core.reconcile.jsonpath import as_list, get_in

Rule = Callable[[Mapping[str, Any]], Health]

RULES: Mapping[tuple[str, str], tuple[Rule, frozenset[str]]] = {
    ("apps", "Deployment"): (deployment_health, frozenset({"v1", "v1beta1", "v1beta2"})),
    ("apps", "StatefulSet"): (statefulset_health, frozenset({"v1", "v1beta1", "v1beta2"})),
    ("apps", "DaemonSet"): (daemonset_health, frozenset({"v1", "v1beta2"})),
    ("apps", "ReplicaSet"): (replicaset_health, frozenset({"v1", "v1beta2"})),
    ("", "Pod"): (pod_health, frozenset({"v1"})),
    ("", "Service"): (service_health, frozenset({"v1"})),
    ("", "PersistentVolumeClaim"): (pvc_health, frozenset({"v1"})),
    ("networking.k8s.io", "Ingress"): (ingress_health, frozenset({"v1", "v1beta1"})),
    ("extensions", "Ingress"): (ingress_health, frozenset({"v1beta1"})),
    ("batch", "Job"): (job_health, frozenset({"v1"})),
    ("batch", "CronJob"): (cronjob_health, frozenset({"v1", "v1beta1"})),
    ("autoscaling", "HorizontalPodAutoscaler"): (hpa_health, frozenset({"v1", "v2", "v2beta1", "v2beta2"})),
    ("apiregistration.k8s.io", "APIService"): (apiservice_health, frozenset({"v1", "v1beta1"})),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (crd_health, frozenset({"v1", "v1beta1"})),
}
"""Built-in rules and the API versions each one understands."""

HOOK_FINALIZER = "argocd.argoproj.io/hook-finalizer"
_BUILTIN_GROUPS = frozenset(group for group, _ in RULES) | {
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
}


class ScriptedHealth(Protocol):
    """Custom health checks (health scripts) that take precedence over the built-in rule of their kind."""

    def check(self, obj: Mapping[str, Any]) -> Health | None:
        """The script's verdict for ``obj``, or None when no script covers its kind."""
        ...


def health_of(obj: Mapping[str, Any], scripts: ScriptedHealth | None = None) -> Health | None:
    """The health of one live object.

    Args:
        obj: the live object as the API returns it.
        scripts: custom health checks; a script for the object's kind overrides the built-in rule.

    Returns:
        The verdict, or None for kinds without a health rule (ConfigMap, Secret, custom resources that
        report no conditions): such resources do not take part in app health.
    """
    deleting = get_in(obj, "metadata", "deletionTimestamp") is not None
    if deleting and HOOK_FINALIZER not in as_list(get_in(obj, "metadata", "finalizers")):
        return Health(HealthStatus.PROGRESSING, "Pending deletion")
    if scripts is not None and (scripted := scripts.check(obj)) is not None:
        return scripted
    api_version = str(obj.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    kind = str(obj.get("kind") or "")
    rule = RULES.get((group, kind))
    if rule is not None:
        check, versions = rule
        if version not in versions:
            return Health(HealthStatus.UNKNOWN, f"unsupported {kind} version {api_version}")
        return check(obj)
    return None if group in _BUILTIN_GROUPS else kstatus_health(obj)


Entry = ResourceStatus | tuple[ResourceKey, Health | None]


def _entry(item: Entry) -> tuple[ResourceKey, Health | None]:
    """``(key, health)`` of a status row or a pair."""
    return (item.key, item.health) if isinstance(item, ResourceStatus) else item


def app_health(resources: Iterable[Entry]) -> Health:
    """The health of an app: the worst of its resources' (Argo ``setApplicationHealth``).

    Resources without a health verdict are skipped. Missing resources do not lower the app's health
    (OutOfSync already says so) unless none of the app's resources is live, which makes the app Missing.
    The message names the first cause in the given order: ``Caused by Deployment/ns/web and 2 more``.

    Args:
        resources: the app's own resources (not their children) as status rows or ``(key, health)``
            pairs; a missing resource has health Missing.
    """
    entries = [_entry(item) for item in resources]
    if entries and all(h is not None and h.status is HealthStatus.MISSING for _, h in entries):
        return Health(HealthStatus.MISSING, "No resources are live")
    judged = [(key, h) for key, h in entries if h is not None and h.status is not HealthStatus.MISSING]
    worst = HealthStatus.worst_of(h.status for _, h in judged)
    if worst is HealthStatus.HEALTHY:
        return Health(HealthStatus.HEALTHY)
    causes = [key for key, h in judged if h.status is worst]
    more = f" and {len(causes) - 1} more" if len(causes) > 1 else ""
    return Health(worst, f"Caused by {causes[0].short}{more}")
