"""Resource and app health: dispatch by (group, kind), then aggregate per app.

Role: the order gitops-engine's ``GetResourceHealth`` uses (pending deletion first, then custom health
scripts, then the built-in rule for the kind, which must support the object's API version), the
conventions fallback for other custom resources (``health_conventions``), and Argo CD's
``setApplicationHealth`` aggregation. Every verdict names its source (``built-in: Deployment``,
``built-in: Rollout (argoproj.io)``, ``kstatus conditions``, ``status.phase``); the rules are listed in
``docs/health.md``. Constraint: pure; reads live objects only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from core.model import Health, HealthStatus, ResourceKey, ResourceStatus
from core.reconcile.health_conventions import convention_health
from core.reconcile.health_gitops import (
    analysisrun_health,
    application_health,
    canary_health,
    certificate_health,
    certificaterequest_health,
    flux_health,
    issuer_health,
    rollout_health,
    sealedsecret_health,
)
from core.reconcile.health_services import (
    apiservice_health,
    crd_health,
    hpa_health,
    ingress_health,
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
_FLUX_V1 = frozenset({"v1", "v1beta1", "v1beta2"})
_CERT_MANAGER = frozenset({"v1", "v1beta1", "v1alpha2", "v1alpha3"})

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
    ("argoproj.io", "Rollout"): (rollout_health, frozenset({"v1alpha1"})),
    ("argoproj.io", "AnalysisRun"): (analysisrun_health, frozenset({"v1alpha1"})),
    ("argoproj.io", "Application"): (application_health, frozenset({"v1alpha1"})),
    ("kustomize.toolkit.fluxcd.io", "Kustomization"): (flux_health, _FLUX_V1),
    ("helm.toolkit.fluxcd.io", "HelmRelease"): (flux_health, frozenset({"v2", "v2beta1", "v2beta2"})),
    ("source.toolkit.fluxcd.io", "GitRepository"): (flux_health, _FLUX_V1),
    ("source.toolkit.fluxcd.io", "HelmRepository"): (flux_health, _FLUX_V1),
    ("source.toolkit.fluxcd.io", "OCIRepository"): (flux_health, _FLUX_V1),
    ("image.toolkit.fluxcd.io", "ImagePolicy"): (flux_health, _FLUX_V1),
    ("image.toolkit.fluxcd.io", "ImageRepository"): (flux_health, _FLUX_V1),
    ("bitnami.com", "SealedSecret"): (sealedsecret_health, frozenset({"v1alpha1"})),
    ("cert-manager.io", "Certificate"): (certificate_health, _CERT_MANAGER),
    ("cert-manager.io", "CertificateRequest"): (certificaterequest_health, _CERT_MANAGER),
    ("cert-manager.io", "Issuer"): (issuer_health, _CERT_MANAGER),
    ("cert-manager.io", "ClusterIssuer"): (issuer_health, _CERT_MANAGER),
    ("flagger.app", "Canary"): (canary_health, frozenset({"v1beta1", "v1alpha3"})),
}
"""Built-in rules and the API versions each one understands."""

HOOK_FINALIZER = "argocd.argoproj.io/hook-finalizer"
_KUBERNETES_GROUPS = frozenset(
    {"", "apps", "batch", "autoscaling", "networking.k8s.io", "extensions", "apiregistration.k8s.io",
     "apiextensions.k8s.io", "policy", "rbac.authorization.k8s.io", "storage.k8s.io"}
)  # fmt: skip
"""Kubernetes' own groups: their kinds without a rule have no health (not judged by conventions)."""
PENDING_DELETION = "metadata.deletionTimestamp"


def without_health(group: str, kind: str) -> bool:
    """Whether ``health_of`` says None for every object of the kind whatever its status (unless it is being
    deleted or a health script covers the kind): a Kubernetes kind without a built-in rule (ConfigMap, Secret,
    ServiceAccount, Role, RoleBinding, Namespace…). Custom resources are judged by their conditions, so they
    are not such kinds."""
    return group in _KUBERNETES_GROUPS and (group, kind) not in RULES


def rule_source(group: str, kind: str) -> str:
    """The source of a built-in rule's verdict: ``built-in: Deployment``, ``built-in: Rollout (argoproj.io)``."""
    return f"built-in: {kind}" if group in _KUBERNETES_GROUPS else f"built-in: {kind} ({group})"


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
        The verdict with its source, or None for kinds without a health rule (ConfigMap, Secret, custom
        resources that report neither conditions nor a phase): such resources do not take part in app health.
    """
    deleting = get_in(obj, "metadata", "deletionTimestamp") is not None
    if deleting and HOOK_FINALIZER not in as_list(get_in(obj, "metadata", "finalizers")):
        return Health(HealthStatus.PROGRESSING, "Pending deletion", PENDING_DELETION)
    if scripts is not None and (scripted := scripts.check(obj)) is not None:
        return scripted
    api_version = str(obj.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    kind = str(obj.get("kind") or "")
    rule = RULES.get((group, kind))
    if rule is None:
        return None if group in _KUBERNETES_GROUPS else convention_health(obj)
    check, versions = rule
    source = rule_source(group, kind)
    if version not in versions:
        return Health(HealthStatus.UNKNOWN, f"unsupported {kind} version {api_version}", source)
    verdict = check(obj)
    return verdict if verdict.source else replace(verdict, source=source)


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
