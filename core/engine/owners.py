"""Which controller objects of the fleet deploy to each cluster (owner detection's input).

An Argo CD ``Application`` deploys to the cluster it lives in (destination ``in-cluster`` /
``https://kubernetes.default.svc``) or, from a hub, to the fleet cluster whose API server URL (from its
kubeconfig) or name its ``spec.destination`` gives; a Flux ``Kustomization``/``HelmRelease`` deploys to its
own cluster (one with ``spec.kubeConfig`` deploys elsewhere and is left out). docs/owners.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from core.model import AppStatus, ResourceKey
from core.reconcile.owners import (
    APPLICATION,
    CLAIMING_KINDS,
    OWNER_KINDS,
    Candidate,
    deploys_in_cluster,
    destination_of,
    tracked_keys,
)

if TYPE_CHECKING:
    from core.engine.clusters import ClusterRuntime


class OwnerCandidates:
    """Candidates per destination cluster, recomputed only when some cluster's cache changed."""

    def __init__(self, clusters: Mapping[str, ClusterRuntime]) -> None:
        self.clusters = clusters
        self._versions: tuple[int, ...] = ()
        self._by_cluster: dict[str, tuple[Candidate, ...]] = {}

    def for_cluster(self, cluster: str) -> tuple[Candidate, ...]:
        """The controller objects (of any cluster) that deploy to ``cluster``."""
        versions = tuple(r.cache.version for r in self.clusters.values())
        if versions != self._versions:
            self._by_cluster, self._versions = self._index(), versions
        return self._by_cluster.get(cluster, ())

    def _index(self) -> dict[str, tuple[Candidate, ...]]:
        servers = {r.api.server.rstrip("/"): name for name, r in self.clusters.items() if r.api.server}
        out: dict[str, list[Candidate]] = {}
        for name, runtime in self.clusters.items():
            for obj in runtime.view.controllers():
                dest = self._destination(name, obj, servers)
                if dest is not None:
                    out.setdefault(dest, []).append(Candidate(name, obj))
        return {k: tuple(v) for k, v in out.items()}

    def _destination(self, home: str, obj: Mapping[str, Any], servers: Mapping[str, str]) -> str | None:
        key_gk = (str(obj.get("apiVersion") or "").split("/")[0], str(obj.get("kind") or ""))
        if key_gk not in CLAIMING_KINDS:
            return None
        if key_gk != APPLICATION:
            return None if (obj.get("spec") or {}).get("kubeConfig") else home
        if deploys_in_cluster(obj):
            return home
        server, name = destination_of(obj)
        if name:
            return name if name in self.clusters else None
        return servers.get(server.rstrip("/"))


def touched_by_controllers(keys: Iterable[ResourceKey], cluster: str, *,
                           targets: Iterable[tuple[str, str]], rows: Mapping[tuple[str, str], AppStatus],
                           desired_keys: Callable[[tuple[str, str]], Iterable[ResourceKey]],
                           lookup: Callable[[ResourceKey], Mapping[str, Any] | None]) -> set[tuple[str, str]]:
    """The targets whose owner may change after watch events on controller objects of ``cluster``: those of
    an app with the object's name, those it owned at the last evaluation, and those whose objects it now
    tracks (an Application's status changes often: the rest of the fleet is left alone)."""
    changed = [k for k in keys if (k.group, k.kind) in OWNER_KINDS]
    if not changed:
        return set()
    names = {k.name for k in changed}
    tracked: set[ResourceKey] = set()
    for key in changed:
        obj = lookup(key)
        if obj is not None:
            tracked |= tracked_keys(obj)
    out = set()
    for tid in targets:
        row = rows.get(tid)
        owned = row is not None and row.controller is not None and row.controller.cluster == cluster \
            and row.controller.key in changed
        if tid[0] in names or owned or (tracked and not tracked.isdisjoint(desired_keys(tid))):
            out.add(tid)
    return out
