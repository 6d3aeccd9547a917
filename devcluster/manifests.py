"""Static configuration the clusters need: audit policy, scheduler config, fake Node, viewer RBAC.

Objects are plain dicts applied with server-side apply by :mod:`devcluster.cluster`; files are
JSON (a subset of YAML), so no YAML library is needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devcluster.pki import VIEWER_USER

SYSTEM_NAMESPACE = "fleetdeck-system"
VIEWER_CLUSTER_ROLE = "fleetdeck-viewer-cluster"
VIEWER_LEASES_ROLE = "fleetdeck-viewer-leases"
NODE_PREFIX = "kwok-node-"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"

#: kwok stage files (relative to the stages directory); the set kwok's kustomize/stage/fast uses.
KWOK_STAGE_FILES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)

AUDIT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    # One event per request (ResponseComplete, or ResponseStarted for watches) keeps the log
    # small and makes "count the requests" assertions exact.
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as JSON (valid YAML) and return ``path``."""
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def scheduler_config(kubeconfig: Path) -> dict[str, Any]:
    """KubeSchedulerConfiguration: our kubeconfig, no leader election."""
    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "leaderElection": {"leaderElect": False},
    }


def fake_node(name: str) -> dict[str, Any]:
    """A Node that kwok manages (by annotation), without taints, with room for many pods."""
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {"allocatable": resources, "capacity": resources},
    }


def viewer_objects() -> list[tuple[str, dict[str, Any]]]:
    """(URL, object) pairs granting the viewer read-only access, never to Secrets.

    ``view`` (aggregated by kube-controller-manager) covers namespaced workloads, configmaps and
    namespaces; the extra ClusterRole adds cluster-scoped kinds a fleet console lists, and a Role
    in ``fleetdeck-system`` adds leases there (fleetdeck's own lock objects).
    """
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    read = ["get", "list", "watch"]
    cluster_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": VIEWER_CLUSTER_ROLE},
        "rules": [
            {"apiGroups": [""], "resources": ["nodes", "namespaces", "persistentvolumes"], "verbs": read},
            {
                "apiGroups": ["apiextensions.k8s.io"],
                "resources": ["customresourcedefinitions"],
                "verbs": read,
            },
            {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": read},
        ],
    }
    leases_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": VIEWER_LEASES_ROLE, "namespace": SYSTEM_NAMESPACE},
        "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": read}],
    }
    ns_rbac = f"{rbac}/namespaces/{SYSTEM_NAMESPACE}"
    return [
        (f"{rbac}/clusterroles/{VIEWER_CLUSTER_ROLE}", cluster_role),
        (f"{rbac}/clusterrolebindings/fleetdeck-viewer-view", _binding("fleetdeck-viewer-view", "view")),
        (
            f"{rbac}/clusterrolebindings/{VIEWER_CLUSTER_ROLE}",
            _binding(VIEWER_CLUSTER_ROLE, VIEWER_CLUSTER_ROLE),
        ),
        (f"/api/v1/namespaces/{SYSTEM_NAMESPACE}", namespace(SYSTEM_NAMESPACE)),
        (f"{ns_rbac}/roles/{VIEWER_LEASES_ROLE}", leases_role),
        (
            f"{ns_rbac}/rolebindings/{VIEWER_LEASES_ROLE}",
            _binding(VIEWER_LEASES_ROLE, VIEWER_LEASES_ROLE, kind="Role"),
        ),
    ]


def _binding(name: str, role: str, *, kind: str = "ClusterRole") -> dict[str, Any]:
    metadata = {"name": name} if kind == "ClusterRole" else {"name": name, "namespace": SYSTEM_NAMESPACE}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": f"{kind}Binding",
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": VIEWER_USER}],
    }


def namespace(name: str) -> dict[str, Any]:
    """A Namespace object."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
