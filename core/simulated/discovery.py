"""The simulated API server's discovery: the kinds it serves, built-in and added by applied CRDs.

Role: the fixed table of built-in kinds (core, apps, batch, networking, autoscaling, rbac,
apiextensions, coordination) with scope and verbs, plus kinds registered when a CRD is written and
dropped when it is deleted; and how the server names kinds in its messages.

Constraint: one small mutable table, no I/O, no asyncio. Only ``core.simulated`` imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.live.api import APIResource

STANDARD_VERBS = frozenset({"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"})
_NAMESPACE_VERBS = STANDARD_VERBS - {"deletecollection"}

_BUILTIN: tuple[tuple[str, str, str, str, bool], ...] = (
    ("", "v1", "Namespace", "namespaces", False),
    ("", "v1", "ConfigMap", "configmaps", True),
    ("", "v1", "Secret", "secrets", True),
    ("", "v1", "Service", "services", True),
    ("", "v1", "ServiceAccount", "serviceaccounts", True),
    ("", "v1", "Pod", "pods", True),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True),
    ("", "v1", "Event", "events", True),
    ("apps", "v1", "Deployment", "deployments", True),
    ("apps", "v1", "StatefulSet", "statefulsets", True),
    ("apps", "v1", "DaemonSet", "daemonsets", True),
    ("apps", "v1", "ReplicaSet", "replicasets", True),
    ("batch", "v1", "Job", "jobs", True),
    ("batch", "v1", "CronJob", "cronjobs", True),
    ("networking.k8s.io", "v1", "Ingress", "ingresses", True),
    ("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False),
    ("coordination.k8s.io", "v1", "Lease", "leases", True),
)

CRD_GROUP_KIND = ("apiextensions.k8s.io", "CustomResourceDefinition")


class Discovery:
    """The kinds the simulated server serves: the built-in table plus applied CRDs."""

    def __init__(self) -> None:
        self._by_group_kind: dict[tuple[str, str], APIResource] = {}
        self._custom: set[tuple[str, str]] = set()
        for group, version, kind, plural, namespaced in _BUILTIN:
            verbs = _NAMESPACE_VERBS if kind == "Namespace" else STANDARD_VERBS
            self._by_group_kind[(group, kind)] = APIResource(group, version, kind, plural, namespaced, verbs)

    def resources(self) -> tuple[APIResource, ...]:
        """Every served kind, built-ins first."""
        return tuple(self._by_group_kind.values())

    def lookup(self, group: str, kind: str) -> APIResource | None:
        """The served kind ``(group, kind)``, if any."""
        return self._by_group_kind.get((group, kind))

    def for_api_version(self, api_version: str, kind: str) -> APIResource | None:
        """The served kind for an object's ``apiVersion`` and ``kind`` (the version must match)."""
        group, _, version = api_version.rpartition("/")
        resource = self.lookup(group, kind)
        return resource if resource is not None and resource.version == version else None

    def is_custom(self, group_kind: tuple[str, str]) -> bool:
        """Whether the kind was added by a CRD (no schema: every field is accepted)."""
        return group_kind in self._custom

    def add_crd(self, crd: Mapping[str, Any]) -> APIResource | None:
        """Serve the kind a CRD defines (its storage version); None when the CRD is incomplete."""
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        versions = [v for v in spec.get("versions") or () if v.get("served", True)]
        storage = next((v for v in versions if v.get("storage")), versions[0] if versions else None)
        if not (spec.get("group") and names.get("kind") and names.get("plural") and storage):
            return None
        resource = APIResource(
            group=str(spec["group"]), version=str(storage["name"]), kind=str(names["kind"]),
            plural=str(names["plural"]), namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            verbs=STANDARD_VERBS,
        )
        self._by_group_kind[resource.group_kind] = resource
        self._custom.add(resource.group_kind)
        return resource

    def remove_crd(self, crd: Mapping[str, Any]) -> tuple[str, str] | None:
        """Stop serving the kind of a deleted CRD; its ``(group, kind)``."""
        spec = crd.get("spec") or {}
        group_kind = (str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", "")))
        if group_kind not in self._custom:
            return None
        self._custom.discard(group_kind)
        del self._by_group_kind[group_kind]
        return group_kind


def kind_label(resource: APIResource) -> str:
    """``Deployment.apps`` or ``ConfigMap``: how the server names a kind in messages."""
    return f"{resource.kind}.{resource.group}" if resource.group else resource.kind


def plural_label(resource: APIResource) -> str:
    """``deployments.apps`` or ``configmaps``: how the server names a resource in messages."""
    return f"{resource.plural}.{resource.group}" if resource.group else resource.plural
