"""A real, local Kubernetes control plane for fleetdeck's tests and for trying fleetdeck by hand.

The package starts one shared etcd and N clusters (kube-apiserver, kube-controller-manager,
kube-scheduler and kwok as a fake kubelet) on 127.0.0.1, writes a self-contained kubeconfig and
stops exactly the processes it started, by PID and process group. It is development tooling:
it is not shipped in the wheel and must never be imported from ``core`` or ``tui``.

Typical use::

    from devcluster import ControlPlane, find_binaries

    plane = ControlPlane(state_dir, names=("fd-a", "fd-b"), binaries=find_binaries())
    plane.start()
    try:
        ...  # plane.clusters["fd-a"].kubeconfig, .admin_context, .viewer_context, .audit_log
    finally:
        plane.stop()
"""

from __future__ import annotations

from devcluster.audit import MUTATING_VERBS, audit_events, mutating_events, wait_for_audit_event
from devcluster.binaries import Binaries, BinariesNotFoundError, find_binaries
from devcluster.cluster import ControlPlane
from devcluster.handles import ClusterInfo, ControlPlaneError, default_names

__all__ = [
    "MUTATING_VERBS",
    "Binaries",
    "BinariesNotFoundError",
    "ClusterInfo",
    "ControlPlane",
    "ControlPlaneError",
    "audit_events",
    "default_names",
    "find_binaries",
    "mutating_events",
    "wait_for_audit_event",
]
